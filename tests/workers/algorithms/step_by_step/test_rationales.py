import json

import pytest

from workers.algorithms.step_by_step import (
    StepByStepConfig,
    build_examples,
    build_pairs,
    cqa_input,
    gold_example,
    labels_agree,
    multitask_loss,
    nli_input,
    parse_rationale,
    svamp_input,
)


def test_input_formats_of_the_reference_code():
    assert cqa_input("Where do beavers get wood?", ["zoo", "wooded area", "pay debts", "body of water", "bank"]) == (
        "Where do beavers get wood?\nAnswer Choices:\n(a) zoo\n(b) wooded area\n(c) pay debts\n"
        "(d) body of water\n(e) bank"
    )
    assert nli_input("A man sleeps.", "A person rests.") == "A man sleeps.</s>A person rests."
    assert svamp_input("Paige has 10 seeds.", "How many?") == "Paige has 10 seeds.\nHow many?"


def test_pairs_for_seq2seq_and_causal_students():
    predict, explain = build_pairs("2 + 2?", "4", "Two and two make four.")
    assert (predict.task, predict.source, predict.target) == ("predict", "predict: 2 + 2?", "4")
    assert (explain.task, explain.source, explain.target) == (
        "explain",
        "explain: 2 + 2?",
        "Two and two make four.",
    )
    causal = build_pairs("2 + 2?", "4", "r", style="causal")
    assert causal[0].source == "predict: 2 + 2?\n"
    assert multitask_loss(2.0, 4.0) == 3.0


def test_cqa_completion_cut_at_the_next_exemplar():
    completion = (
        "The answer must be a place with trees. So the answer is (c) wooded area.\n\n"
        "Q: What is the best way?\n"
        "Answer Choices:\n(a) x\nA: So the answer is (a) x."
    )
    parsed = parse_rationale("cqa", completion)
    assert parsed.ok
    assert (parsed.rationale, parsed.choice, parsed.label) == (
        "The answer must be a place with trees.",
        "c",
        "wooded area",
    )
    assert parse_rationale("cqa", "Either works. So the answer is either (a) pond or (e) lake.").problem == (
        "ambiguous answer"
    )


def test_svamp_keeps_the_whole_equation_and_rejects_truncated_ones():
    parsed = parse_rationale("svamp", "16 boxes of 17, four times. The answer is (16 * 17) * 4.\n\nQ: There are")
    assert (parsed.rationale, parsed.label) == ("16 boxes of 17, four times.", "(16 * 17) * 4")
    assert parse_rationale("svamp", "So 2. The answer is (2").problem == "unparsable equation"
    assert parse_rationale("svamp", "Some apples. The answer is (some - 5).").problem == "unparsable equation"


def test_nli_answers():
    anli = parse_rationale("anli", "It was filmed in 1971, so the answer is entailment.\n\nPremise: x\nHypothesis: y")
    assert (anli.rationale, anli.label) == ("It was filmed in 1971", "entailment")
    esnli = parse_rationale("esnli", "A choir is singing.\nAnswer: neutral\n\nPremise: A choir\nHypothesis: b")
    assert (esnli.rationale, esnli.label) == ("A choir is singing.", "neutral")
    assert parse_rationale("esnli", "A toddler is a child. A child is a person").problem == "no answer"
    assert parse_rationale("anli", "So the answer is maybe.").problem is not None
    assert parse_rationale("generic", "Because x. So the answer is Paris.").label == "Paris"


def test_label_checks():
    assert labels_agree("svamp", "(10 * 45)", "( 10.0 * 45.0 )")
    assert labels_agree("svamp", "(10 / 3)", "( 10.0 / 3.0 )")
    assert not labels_agree("svamp", "(10 - 45)", "( 10.0 * 45.0 )")
    assert not labels_agree("svamp", "__import__('os')", "( 1.0 )")
    assert labels_agree("cqa", "Wooded  Area.", "wooded area")
    assert not labels_agree("esnli", None, "neutral")


def test_svamp_inputs_from_the_raw_file_match_the_reference_splits(shared_data, palm):
    raw = json.loads((shared_data / "distilling_step_by_step" / "svamp" / "SVAMP.json").read_text())
    built = {gold_example("svamp", record).input for record in raw}
    split_inputs = {record["input"] for record in palm["svamp"][0]}
    assert split_inputs <= built and len(built) >= 990


# Parse rate and label agreement measured on every PaLM completion (bench/rationales.py, docs/algorithms.md);
# each must stay at or above its measured figure less one point.
MEASURED = {
    "cqa": (0.9718, 0.7793),
    "svamp": (0.9590, 0.7810),
    "anli": (0.9995, 0.6698),
    "esnli": (0.9998, 0.7310),
}
POINT = 0.01


@pytest.mark.parametrize("dataset", sorted(MEASURED))
def test_every_real_palm_completion(dataset, palm):
    records, completions = palm[dataset]
    examples, report = build_examples(dataset, records, completions)
    parse_rate, agreement = MEASURED[dataset]
    print(f"\n{dataset}: parse rate {report.parse_rate:.2%}, agreement {report.agreement:.2%}")
    assert report.total == len(completions) > 900
    assert report.parse_rate >= parse_rate - POINT
    assert report.agreement >= agreement - POINT
    marker = "Q:" if dataset in ("cqa", "svamp") else "Premise:"
    assert not any(marker in example.rationale for example in examples)
    assert all(example.pairs[1].target == example.rationale for example in examples)
    strict, strict_report = build_examples(dataset, records, completions, StepByStepConfig(drop_mismatched=True))
    assert len(strict) == strict_report.agreed < len(examples)
    assert all(example.agrees for example in strict)
    teacher = build_examples(dataset, records, completions, StepByStepConfig(label_source="teacher"))[0]
    assert all(example.label == example.teacher_label for example in teacher)
