"""Training rows (prompt/target JSONL) -> token ids with the loss on target tokens only -> batches.

A batch is `batch_size` units (one row, or for step-by-step the predict/explain pair of one input), in
one of three layouts:

- padding-free (causal students): the batch's examples concatenated into one row with position ids that
  restart at every example and no attention mask (transformers' DataCollatorWithFlattening). transformers
  turns restarting position ids into a block-diagonal causal mask (sdpa, eager, flex) or variable-length
  kernels (flash attention), so no token attends across examples;
- length-grouped (seq2seq, or packing where the kernel cannot do it): padded batches whose examples were
  sorted by length within shuffled mega-batches, so little is padding;
- padded: right-padded batches in shuffled order (packing off).

The same examples make the same batch in every layout, so their losses agree (tests check this).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from workers.algorithms.step_by_step.inputs import EXPLAIN_PREFIX, PREDICT_PREFIX
from workers.training.formats import encode_prompt, encode_target
from workers.training.spec import SpecError

IGNORE = -100
MEGABATCH = 50  # length grouping sorts within this many batches


class DataError(SpecError):
    """The training data is unreadable or holds a bad row (exit code 2, like a bad spec)."""


@dataclasses.dataclass
class Example:
    input_ids: list[int]  # causal: prompt + target; seq2seq: the encoder input
    labels: list[int]  # causal: IGNORE over the prompt, then the target; seq2seq: the target
    kind: str
    dataset: str
    seq2seq: bool = False

    @property
    def length(self) -> int:
        """Tokens the model processes for this example (encoder and decoder for seq2seq)."""
        return len(self.input_ids) + (len(self.labels) if self.seq2seq else 0)


def read_rows(path: str | Path, *, field: str = "data_path") -> list[dict]:
    rows = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise DataError([(field, f"cannot read {path}: {error.strerror or error}")]) from error
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError([(field, f"line {number}: not JSON ({error.msg})")]) from error
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("prompt"), str)
            or not isinstance(row.get("target"), str)
        ):
            raise DataError([(field, f"line {number}: needs string fields 'prompt' and 'target'")])
        rows.append(row)
    if not rows:
        raise DataError([(field, f"{path} holds no rows")])
    return rows


def encode_rows(rows: list[dict], tokenizer, *, seq2seq: bool, max_length: int) -> list[Example]:
    """Tokenise every row; the prompt keeps its end and the target its start when a row is too long."""
    examples = []
    for row in rows:
        prompt_ids = encode_prompt(tokenizer, row["prompt"], seq2seq=seq2seq)
        target_ids = encode_target(tokenizer, row["prompt"], row["target"], seq2seq=seq2seq)
        kind, dataset = str(row.get("kind") or "sft"), str(row.get("dataset") or "")
        if seq2seq:
            examples.append(Example(prompt_ids[:max_length], target_ids[:max_length], kind, dataset, seq2seq=True))
            continue
        target_ids = target_ids[: max(max_length - len(prompt_ids), max_length // 2)]
        prompt_ids = prompt_ids[-(max_length - len(target_ids)) :]  # > 0 kept unless the prompt is empty
        examples.append(Example(prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids, kind, dataset))
    return examples


def units_of(examples: list[Example], rows: list[dict], *, pair: bool) -> list[list[int]]:
    """Indices grouped into units: pairs that share an input (step-by-step) or single rows."""
    if not pair:
        return [[index] for index in range(len(examples))]
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        prompt = row["prompt"]
        for prefix in (PREDICT_PREFIX, EXPLAIN_PREFIX):
            if prompt.startswith(prefix):
                prompt = prompt[len(prefix) :]
                break
        groups.setdefault(prompt, []).append(index)
    return list(groups.values())


def plan_epoch(
    units: list[list[int]], lengths: list[int], *, batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """The epoch's batches (example indices), a pure function of (seed, epoch): resuming needs no state."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(units)).tolist()
    if group_by_length:
        size = batch_size * MEGABATCH
        grouped = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            grouped.extend(sorted(chunk, key=lambda u: -sum(lengths[i] for i in units[u])))
        order = grouped
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return [[index for unit in batch for index in units[unit]] for batch in batches]


def collate(examples: list[Example], *, seq2seq: bool, padding_free: bool, pad_id: int) -> dict:
    """Tensors for one batch, plus `example_index` (batch position of every label token's example)."""
    import torch

    if padding_free and not seq2seq:
        from transformers import DataCollatorWithFlattening

        flat = DataCollatorWithFlattening(return_position_ids=True, return_seq_idx=True, separator_id=IGNORE)
        batch = flat([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
        batch["example_index"] = batch.pop("seq_idx").long()
        return batch
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    label_width = max(len(e.labels) for e in examples) if seq2seq else width
    labels = torch.full((len(examples), label_width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        attention[row, : len(example.input_ids)] = 1
        labels[row, : len(example.labels)] = torch.tensor(example.labels)
    index = torch.arange(len(examples)).unsqueeze(1).expand(-1, label_width).contiguous()
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "example_index": index}


def target_token_count(batch: dict) -> int:
    return int((batch["labels"] != IGNORE).sum())


def real_token_count(batch: dict, *, seq2seq: bool) -> int:
    """Tokens the model really processes (no padding): the throughput figure counts these."""
    inputs = int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())
    return inputs + (target_token_count(batch) if seq2seq else 0)
