"""Rationale and label from a chain-of-thought reply: the one rationale parser of the project.

It reads both kinds of reply a teacher gives. A few-shot completion does not stop at its answer but runs on
into the next exemplar ("\n\nQ: ...", "\nPremise: ..."); a chat model's reply may reason over several
paragraphs before its answer. So the reply is cut where a next exemplar starts (a line opening with "Q:",
"Question:", "Premise:", "Input:" or "Example "), never at a mere blank line, and the last answer clause
of what is left splits it into rationale and label; the label is the rest of that clause's line:

- cqa:   "... So the answer is (d) math problem."   -> choice d, label "math problem"
- svamp: "... The answer is (84.0 / 2.0)."           -> label "(84.0 / 2.0)" (must be arithmetic)
- anli:  "... So the answer is neutral."             -> label "neutral"
- esnli: "...\nAnswer: entailment"                   -> label "entailment"
- generic: the project's own rationale prompts, "... So the answer is <label>." -> label "<label>"

Answer clauses: "[so] the [final] answer is [:]" anywhere, and "Answer:" at the start of a line. `choices`
(the options of a multiple-choice question, in order (a), (b), ...) makes the label the chosen option's text;
`labels` (the allowed answers) makes any other answer unparsed. NLI datasets allow the three NLI labels.

Unlike the reference code, an answer that names two choices ("either (a) pond or (e) lake"), an SVAMP
equation that is truncated or not arithmetic, or a label outside the allowed ones counts as unparsed (with
the reason) instead of yielding a wrong label. The SVAMP equation is the whole rest of the line after "The
answer is", so "(16 * 17) * 4" keeps its last factor.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Literal

from workers.algorithms.step_by_step.arithmetic import ArithmeticSyntaxError, evaluate
from workers.algorithms.step_by_step.inputs import NLI_LABELS

Dataset = Literal["cqa", "svamp", "anli", "esnli", "generic"]
DATASETS: tuple[Dataset, ...] = ("cqa", "svamp", "anli", "esnli", "generic")

# Problems, each with a stable code that reply contracts report.
NO_ANSWER, EMPTY_RATIONALE, AMBIGUOUS, BAD_EQUATION, UNKNOWN_LABEL = (
    "no answer", "empty rationale", "ambiguous answer", "unparsable equation", "unknown label",
)  # fmt: skip
PROBLEM_CODES = {
    NO_ANSWER: "rationale_no_answer",
    EMPTY_RATIONALE: "rationale_empty",
    AMBIGUOUS: "rationale_ambiguous",
    BAD_EQUATION: "rationale_bad_equation",
    UNKNOWN_LABEL: "rationale_unknown_label",
}

_NEXT_EXEMPLAR = re.compile(r"\n[ \t]*(?:Q:|Question:|Premise:|Input:|Example\s)")
# The answer clause, with what introduces it ("So", ", so") kept out of the rationale.
_ANSWER_CLAUSE = re.compile(
    r"(?:,?\s*\bso,?\s+)?\bthe\s+(?:final\s+)?answer\s+is\b[ \t]*:?|(?:^|\n)[ \t]*answer[ \t]*:", re.IGNORECASE
)
_CHOICE = re.compile(r"\(([a-z])\)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class ParsedRationale:
    rationale: str | None
    label: str | None  # choice text (cqa), equation (svamp), class name (nli) or the answer (generic)
    choice: str | None = None  # the option letter the teacher picked, when it named one
    problem: str | None = None  # why it did not parse; None when it did

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def code(self) -> str | None:
        return PROBLEM_CODES[self.problem] if self.problem else None


def _failed(problem: str, rationale: str | None = None) -> ParsedRationale:
    return ParsedRationale(rationale, None, None, problem)


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip().strip(".").strip().lower()


def cut_completion(completion: str) -> str:
    """The reply up to where a next few-shot exemplar begins."""
    found = _NEXT_EXEMPLAR.search(completion or "")
    return (completion[: found.start()] if found else completion or "").strip()


def parse_rationale(
    dataset: Dataset,
    completion: str,
    *,
    labels: Sequence[str] | None = None,
    choices: Sequence[str] | None = None,
    require_rationale: bool = True,
) -> ParsedRationale:
    """Split one chain-of-thought reply into rationale and label (see the module docstring)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    text = cut_completion(completion)
    clauses = list(_ANSWER_CLAUSE.finditer(text))
    if not clauses:
        return _failed(NO_ANSWER)
    clause = clauses[-1]  # an earlier "the answer is 71" is a step of the reasoning
    rationale = text[: clause.start()].strip().rstrip(",").strip()
    answer = text[clause.end() :].split("\n", 1)[0].strip().rstrip(".").strip()
    if require_rationale and not rationale:
        return _failed(EMPTY_RATIONALE)
    if not answer:
        return _failed(NO_ANSWER, rationale)
    if dataset == "svamp":
        try:
            evaluate(answer)
        except ArithmeticSyntaxError:
            return _failed(BAD_EQUATION, rationale)
        return ParsedRationale(rationale, answer)
    if labels is None and dataset in ("anli", "esnli"):
        labels = NLI_LABELS
    if labels is not None:
        allowed = {_norm(label): label for label in labels}
        label = allowed.get(_norm(answer))
        return ParsedRationale(rationale, label) if label is not None else _failed(UNKNOWN_LABEL, rationale)
    return _choice_label(rationale, answer, choices)


def _choice_label(rationale: str, answer: str, choices: Sequence[str] | None) -> ParsedRationale:
    """The answer of a multiple-choice question: one letter at most, and, given the choices, one of them."""
    letters = [letter.lower() for letter in _CHOICE.findall(answer)]
    if len(set(letters)) > 1:
        return _failed(AMBIGUOUS, rationale)
    letter = letters[0] if letters else None
    text = _CHOICE.split(answer, maxsplit=1)[2].strip().rstrip(".").strip() if letter else answer
    if not choices:
        return ParsedRationale(rationale, text or None, letter) if text or letter else _failed(NO_ANSWER, rationale)
    by_text = {_norm(choice): choice for choice in choices}
    if _norm(text) in by_text:  # the option's text decides; a letter that names another option is a slip
        return ParsedRationale(rationale, by_text[_norm(text)], letter)
    if letter is not None and ord(letter) - ord("a") < len(choices):
        return ParsedRationale(rationale, choices[ord(letter) - ord("a")], letter)
    return _failed(UNKNOWN_LABEL, rationale)
