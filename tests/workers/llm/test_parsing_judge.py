"""The judge parser on hand-written replies: what real referees write, and what must be refused."""

import pytest

from workers.llm.parsing import ParseError, parse_judge

VALID = [
    ("Assistant 1 is clearer.\nScore of Assistant 1: 8\nScore of Assistant 2: 6", 8, 6),
    ("score of assistant 1: 7\nscore of assistant 2: 9", 7, 9),
    ("SCORE OF ASSISTANT 1: 3\nSCORE OF ASSISTANT 2: 4", 3, 4),
    ("**Score of Assistant 1:** 9\n**Score of Assistant 2:** 5", 9, 5),
    ("**Score of Assistant 1: 9**\n**Score of Assistant 2: 5**", 9, 5),
    ("__Score of Assistant 1__: 2\n__Score of Assistant 2__: 10", 2, 10),
    ("Score of Assistant 1:   6  \n   Score of Assistant 2:7", 6, 7),
    ("Score  of  Assistant  1 : 6\nScore of Assistant 2 : 6", 6, 6),
    ("Score of Assistant 1: 7/10\nScore of Assistant 2: 4/10", 7, 4),
    ("Score of Assistant 1: 7 / 10\nScore of Assistant 2: 4 /10", 7, 4),
    ("Score of Assistant 1: 7 out of 10\nScore of Assistant 2: 5 out of 10", 7, 5),
    ("Score of Assistant 1: 7.5\nScore of Assistant 2: 6.25", 7.5, 6.25),
    ("Score of Assistant 1: 8.\nScore of Assistant 2: 3.", 8, 3),
    ("Reasoning...\n\n\nScore of Assistant 1: 8\n\nScore of Assistant 2: 2\n\n", 8, 2),
    ("- Score of Assistant 1: 5\n- Score of Assistant 2: 8", 5, 8),
    ("* Score of Assistant 1: 5\n* Score of Assistant 2: 8", 5, 8),
    ("> Score of Assistant 1: 5\n> Score of Assistant 2: 8", 5, 8),
    ("### Score of Assistant 1: 1\n### Score of Assistant 2: 1", 1, 1),
    ("Score of Assistant 2: 4\nScore of Assistant 1: 9", 9, 4),
    ("Score for Assistant 1: 6\nScore for Assistant 2: 3", 6, 3),
    ("Score of Assistant #1: 6\nScore of Assistant #2: 3", 6, 3),
    ("Score of Assistant 1 = 6\nScore of Assistant 2 = 3", 6, 3),
    ("Score of Assistant 1 - 6\nScore of Assistant 2 - 3", 6, 3),
    ("Score of Assistant 1：6\nScore of Assistant 2：3", 6, 3),  # full-width colon
    ("Score of Assistant1: 6\nScore of Assistant2: 3", 6, 3),
    ("Score of Assistant 1: `7`\nScore of Assistant 2: `2`", 7, 2),
    ("*Score of Assistant 1: 7*\n*Score of Assistant 2: 2*", 7, 2),
    ("Score of Assistant 1: 0\nScore of Assistant 2: 10", 0, 10),
    ("Score of Assistant 1: 10/10\r\nScore of Assistant 2: 9/10\r\n", 10, 9),
    ("1. Score of Assistant 1: 4\n2. Score of Assistant 2: 6", 4, 6),
    ("Score of Assistant 1: 4!\nScore of Assistant 2: 6", 4, 6),
]

INVALID = [
    ("", "judge_missing_scores"),
    ("Both answers are fine.", "judge_missing_scores"),
    ("Score of Assistant 1: 8", "judge_missing_scores"),
    ("Score of Assistant 1: 8\nScore of Assistant 2: 6\nI hope this helps!", "judge_missing_scores"),
    ("8 6\nAssistant 1 is better.", "judge_missing_scores"),
    ("Score of Assistant 1: 8\nScore of Assistant 1: 6", "judge_missing_scores"),
    ("Score of Assistant 1: eight\nScore of Assistant 2: six", "judge_missing_scores"),
    ("Score of Assistant 1: 4/5\nScore of Assistant 2: 3/5", "judge_bad_scale"),
    ("Score of Assistant 1: 11\nScore of Assistant 2: 3", "judge_out_of_range"),
    ("Score of Assistant 1: -2\nScore of Assistant 2: 3", "judge_out_of_range"),
    ("Score of Assistant 3: 4\nScore of Assistant 2: 3", "judge_missing_scores"),
    ("Score of Assistant 1: 7 because it is longer\nScore of Assistant 2: 3", "judge_missing_scores"),
    ("Scores: Assistant 1: 7, Assistant 2: 3", "judge_missing_scores"),
]


def test_the_suite_has_at_least_thirty_variants():
    assert len(VALID) + len(INVALID) >= 30


@pytest.mark.parametrize(("reply", "first", "second"), VALID)
def test_valid_judge_replies_parse(reply, first, second):
    scores = parse_judge(reply)
    assert (scores.assistant_1, scores.assistant_2) == (first, second)


@pytest.mark.parametrize(("reply", "code"), INVALID)
def test_broken_judge_replies_are_refused_not_scored(reply, code):
    with pytest.raises(ParseError) as info:
        parse_judge(reply)
    assert info.value.code == code
