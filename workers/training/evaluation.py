"""Held-out loss and perplexity of a student on prompt/target rows (target tokens only)."""

from __future__ import annotations

import torch

from workers.training.data import Example, collate
from workers.training.losses import forward, token_losses


@torch.no_grad()
def mean_loss(
    model: torch.nn.Module, examples: list[Example], *, batch_size: int, seq2seq: bool, pad_id: int, device
) -> float:
    """Token-mean cross-entropy over every example's target tokens (exp of it is the perplexity)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], seq2seq=seq2seq, padding_free=False, pad_id=pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            losses, _ = token_losses(forward(model, batch, seq2seq=seq2seq).logits, batch, seq2seq=seq2seq)
            total += float(losses.sum())
            count += losses.numel()
    finally:
        model.train(was_training)
    return total / max(1, count)
