"""Losses on target tokens: per token, per example, and the methods' batch objectives.

The cross-entropy is taken only at label positions (gathered before the softmax, so prompt and padding
positions cost no memory), in float32 whatever the autocast dtype. A batch's SFT loss is the mean over
its target tokens, as transformers' own loss is. Step-by-step's objective is
`workers.algorithms.step_by_step.multitask_loss` of the token-mean losses of its predict and explain rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workers.algorithms.step_by_step import multitask_loss
from workers.training.data import IGNORE

LABEL_KIND = "predict"
RATIONALE_KIND = "explain"


def model_inputs(batch: dict) -> dict:
    """What the model's forward takes (the labels stay out: the loss is ours)."""
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}


def forward(model: torch.nn.Module, batch: dict, *, seq2seq: bool, **kwargs):
    """The model's forward on a batch; a seq2seq model also takes the labels, from which it builds its
    decoder inputs (shifted right, -100 read as padding). No KV cache: transformers only reads packed
    examples from restarting position ids when no cache is passed, so with one the examples would leak."""
    inputs = model_inputs(batch)
    kwargs.setdefault("use_cache", False)
    if seq2seq:
        inputs["labels"] = batch["labels"]
    return model(**inputs, **kwargs)


def token_losses(logits: torch.Tensor, batch: dict, *, seq2seq: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy per target token, that token's example position in the batch)."""
    labels, index = batch["labels"], batch["example_index"]
    if not seq2seq:  # token t predicts token t + 1
        logits, labels, index = logits[:, :-1], labels[:, 1:], index[:, 1:]
    mask = labels != IGNORE
    picked = logits[mask].float()
    return F.cross_entropy(picked, labels[mask], reduction="none"), index[mask]


def per_example_loss(losses: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """Mean target-token loss of each of the batch's `count` examples."""
    sums = torch.zeros(count, dtype=losses.dtype, device=losses.device).scatter_add(0, index, losses)
    tokens = torch.zeros(count, dtype=losses.dtype, device=losses.device).scatter_add(0, index, torch.ones_like(losses))
    return sums / tokens.clamp(min=1)


def sft_loss(losses: torch.Tensor) -> torch.Tensor:
    return losses.mean()


def step_by_step_loss(
    losses: torch.Tensor, index: torch.Tensor, kinds: list[str], alpha: float
) -> tuple[torch.Tensor, dict[str, float | None]]:
    """alpha * L_label + (1 - alpha) * L_rationale over one batch; a batch holding one task only (an
    unpaired row) trains on that task's loss and logs the other part as None."""
    is_label = torch.tensor([kind == LABEL_KIND for kind in kinds], device=losses.device)[index]
    is_rationale = torch.tensor([kind == RATIONALE_KIND for kind in kinds], device=losses.device)[index]
    label = losses[is_label].mean() if bool(is_label.any()) else None
    rationale = losses[is_rationale].mean() if bool(is_rationale.any()) else None
    if label is not None and rationale is not None:
        loss = multitask_loss(label, rationale, alpha)
    else:
        loss = label if label is not None else rationale
    parts = {
        "loss_label": None if label is None else float(label.detach()),
        "loss_rationale": None if rationale is None else float(rationale.detach()),
    }
    return loss, parts
