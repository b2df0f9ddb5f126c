"""Step-by-step's multitask loss: alpha * L_label + (1 - alpha) * L_rationale, computed by hand."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from workers.algorithms.step_by_step import build_pairs
from workers.training.data import collate, encode_rows
from workers.training.losses import forward, step_by_step_loss, token_losses
from workers.training.model import load_base, load_tokenizer
from workers.training.students import resolve_student
from workers.training.trainer import train

from .conftest import write_jsonl

QUESTIONS = [
    (
        "Tom has 3 apples and buys 2 more. How many apples does he have?",
        "3 + 2",
        "He starts with 3 and adds 2, so 3 + 2.",
    ),
    ("A box holds 4 pens; Ann takes 1. How many are left?", "4 - 1", "One of the 4 pens is taken away, so 4 - 1."),
    ("There are 2 cats with 4 legs each. How many legs?", "2 * 4", "Each of the 2 cats has 4 legs, so 2 * 4."),
    ("Split 8 sweets between 2 children. How many each?", "8 / 2", "8 sweets shared by 2 gives 8 / 2 each."),
]


def step_by_step_rows() -> list[dict]:
    rows = []
    for question, label, rationale in QUESTIONS:
        for pair in build_pairs(question, label, rationale, style="causal"):
            rows.append({"prompt": pair.source, "target": pair.target, "kind": pair.task})
    return rows


def test_the_loss_equals_the_hand_computed_weighted_sum():
    path = resolve_student("builtin:tiny")
    model, tokenizer = load_base(path, seq2seq=False).eval(), load_tokenizer(path)
    rows = step_by_step_rows()
    examples = encode_rows(rows, tokenizer, seq2seq=False, max_length=128)
    kinds = [row["kind"] for row in rows]

    sums = {"predict": 0.0, "explain": 0.0}
    counts = {"predict": 0, "explain": 0}
    with torch.no_grad():
        for example, kind in zip(examples, kinds, strict=True):
            ids = torch.tensor([example.input_ids])
            logits = model(input_ids=ids).logits[0, :-1]
            labels = torch.tensor(example.labels[1:])
            sums[kind] += float(F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum"))
            counts[kind] += int((labels != -100).sum())
        label_loss = sums["predict"] / counts["predict"]
        rationale_loss = sums["explain"] / counts["explain"]

        batch = collate(examples, seq2seq=False, padding_free=True, pad_id=tokenizer.pad_token_id)
        losses, index = token_losses(forward(model, batch, seq2seq=False).logits, batch, seq2seq=False)
        loss, parts = step_by_step_loss(losses, index, kinds, alpha=0.3)

    assert parts["loss_label"] == pytest.approx(label_loss, rel=1e-5)
    assert parts["loss_rationale"] == pytest.approx(rationale_loss, rel=1e-5)
    assert float(loss) == pytest.approx(0.3 * label_loss + 0.7 * rationale_loss, rel=1e-5)
    assert abs(float(loss) - 0.5 * (label_loss + rationale_loss)) > 1e-4  # alpha matters beyond the tolerance


def test_a_batch_with_one_task_trains_on_it_alone():
    losses = torch.tensor([1.0, 3.0, 5.0])
    loss, parts = step_by_step_loss(losses, torch.tensor([0, 0, 1]), ["explain", "explain"], alpha=0.5)
    assert float(loss) == 3.0 and parts == {"loss_label": None, "loss_rationale": 3.0}


def test_a_step_by_step_run_logs_both_parts(make_spec, tmp_path):
    data = write_jsonl(tmp_path / "sbs.jsonl", step_by_step_rows())
    spec = make_spec(
        data_path=str(data), method="step_by_step", method_params={"alpha": 0.5}, batch_size=2, max_steps=3
    )
    result = train(spec)
    lines = [json.loads(line) for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert result["steps"] == 3
    for line in lines:  # each batch holds two whole pairs, so both parts are there
        assert line["loss"] == pytest.approx(0.5 * line["loss_label"] + 0.5 * line["loss_rationale"], rel=1e-6)


def test_step_by_step_refuses_rows_of_another_kind(make_spec, tmp_path):
    from workers.training.data import DataError

    data = write_jsonl(tmp_path / "mixed.jsonl", [*step_by_step_rows(), {"prompt": "x", "target": "y", "kind": "sft"}])
    with pytest.raises(DataError, match="kind predict or explain"):
        train(make_spec(data_path=str(data), method="step_by_step"))
