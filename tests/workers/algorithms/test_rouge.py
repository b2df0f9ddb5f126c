import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_tokenize

from workers.algorithms.rouge import TokenCodec, f_measure, rouge_l, tokenize

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def reference(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def real_instructions(shared_data) -> list[str]:
    alpaca = json.loads((shared_data / "LLaMA-Factory_alpaca_en_demo.json").read_text())
    texts = [row["instruction"] for row in alpaca]
    outputs = json.loads((shared_data / "alpaca_eval_results_gpt4_model_outputs.json").read_text())
    texts += [row["instruction"] for row in outputs]
    with (shared_data / "self-instruct_seed_tasks.jsonl").open() as handle:
        texts += [json.loads(line)["instruction"] for line in handle]
    return texts


def test_rouge_l_equals_rouge_score_on_12000_real_pairs(shared_data):
    texts = real_instructions(shared_data)
    rng = random.Random(7)
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(9000)]
    # Near copies too, so that high scores (the ones the 0.7 threshold cares about) are well covered.
    for _ in range(3000):
        words = rng.choice(texts).split()
        edited = [w for w in words if rng.random() > 0.2] + rng.sample(words, k=min(2, len(words)))
        pairs.append((" ".join(words), " ".join(edited)))
    expected = [reference(a, b) for a, b in pairs]
    got = [rouge_l(a, b) for a, b in pairs]
    mismatches = [pair for pair, x, y in zip(pairs, got, expected, strict=True) if abs(x - y) > 1e-9]
    assert len(pairs) == 12000
    assert mismatches == []
    assert sum(want > 0.7 for want in expected) > 500


WORDS = st.sampled_from(
    ["the", "The", "cat", "CAT!", "sat", "on", "mat.", "a", "1", "2x", "İs", "\u212a", "naïve", "--"]
)
TEXT = st.one_of(
    st.lists(WORDS, max_size=25).map(" ".join),
    st.text(max_size=60),
    st.text(alphabet="abAB c1 ,.-\n\tİK", max_size=40),
)


@settings(max_examples=600, deadline=None)
@given(TEXT, TEXT)
def test_rouge_l_equals_rouge_score_on_generated_strings(a, b):
    assert abs(rouge_l(a, b) - reference(a, b)) <= 1e-9
    assert rouge_l(a, b) == rouge_l(b, a)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_tokenize_equals_rouge_score_tokenizer(text):
    assert tokenize(text) == rouge_tokenize.tokenize(text, None)


def test_empty_and_tokenless_texts_score_zero():
    assert rouge_l("", "") == 0.0
    assert rouge_l("hello", "") == 0.0
    assert rouge_l("?!...", "?!...") == 0.0
    assert rouge_l("Hello, world", "hello WORLD!") == 1.0


def test_f_measure_matches_hand_computation():
    # "a b c d" vs "a c e": LCS 2 ("a c"), P = 2/3, R = 2/4, F = 2PR/(P+R) = 4/7.
    assert abs(rouge_l("a b c d", "a c e") - 4 / 7) < 1e-15
    assert f_measure(0, 3, 4) == 0.0


def test_codec_gives_distinct_tokens_distinct_characters_past_the_surrogates():
    codec = TokenCodec()
    encoded = [codec.encode([f"t{i}"]) for i in range(0xD800 + 10)]
    assert len(set(encoded)) == len(encoded)
    assert all(not 0xD800 <= ord(char) <= 0xDFFF for char in encoded)
