"""MoS rewards: transferability (COSSIM), difficulty (DIFF), their EMA, and MoSpec's target variants.

- COSSIM: R(i) = (1/N) sum_n cos(z_i, z_n), with z_i the mean hidden-state embedding of a mini-batch of
  dataset i. The sum runs over all N datasets, i included (cos(z_i, z_i) = 1), as the formula reads.
- DIFF: R(i) = mean over dataset i's batch of PPL_theta(y|x) / PPL_theta0(y|x), the fine-tuned model's
  perplexity over the base model's: a ratio near 1 means the model has not learnt that data yet.
- EMA: R = beta * R_now + (1 - beta) * R_prev, beta = 0.9, where R_prev is the previous *smoothed* reward
  (a running average over all updates), and the first update uses R_now as it is.
- MoSpec, for a target dataset t: COSSIM against the target alone, R(i) = cos(z_i, z_t); DIFF with the
  target's reward doubled.

A zero embedding has no direction; its cosine with anything counts as 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_pool(hidden: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """One dataset's embedding z: hidden states (batch, tokens, dim) averaged over real tokens, then
    over the batch."""
    hidden = np.asarray(hidden, dtype=np.float64)
    if hidden.ndim != 3:
        raise ValueError("hidden must have shape (batch, tokens, dim)")
    weights = np.ones(hidden.shape[:2]) if mask is None else np.asarray(mask, dtype=np.float64)
    counts = weights.sum(axis=1, keepdims=True)
    if np.any(counts == 0):
        raise ValueError("every example needs at least one unmasked token")
    per_example = (hidden * weights[..., None]).sum(axis=1) / counts
    return per_example.mean(axis=0)


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError("embeddings must have shape (datasets, dim)")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)


def cossim_rewards(embeddings: np.ndarray) -> np.ndarray:
    """Transferability: each dataset's mean cosine similarity to all datasets (itself included)."""
    unit = _unit_rows(embeddings)
    return (unit @ unit.T).mean(axis=1)


def cossim_target_rewards(embeddings: np.ndarray, target: int) -> np.ndarray:
    """MoSpec's COSSIM: each dataset's cosine similarity to the target dataset."""
    unit = _unit_rows(embeddings)
    return unit @ unit[target]


def diff_rewards(ppl_current: Sequence[Sequence[float]], ppl_base: Sequence[Sequence[float]]) -> np.ndarray:
    """Difficulty: per dataset, the batch mean of PPL_theta / PPL_theta0 (one value per example)."""
    if len(ppl_current) != len(ppl_base):
        raise ValueError("need the same datasets for the current and the base model")
    rewards = []
    for current, base in zip(ppl_current, ppl_base, strict=True):
        current_array = np.asarray(current, dtype=np.float64)
        base_array = np.asarray(base, dtype=np.float64)
        if current_array.shape != base_array.shape or current_array.size == 0:
            raise ValueError("each dataset needs the same non-empty batch scored by both models")
        if np.any(base_array <= 0) or np.any(current_array <= 0):
            raise ValueError("perplexities must be positive")
        rewards.append(float(np.mean(current_array / base_array)))
    return np.asarray(rewards)


def mospec_diff_rewards(rewards: np.ndarray, target: int) -> np.ndarray:
    """MoSpec's DIFF: the target dataset's reward doubled."""
    out = np.array(rewards, dtype=np.float64)
    out[target] *= 2.0
    return out


def ema(now: np.ndarray, previous: np.ndarray | None, beta: float = 0.9) -> np.ndarray:
    """Exponential moving average of rewards; `previous` is the last smoothed value (None at first)."""
    now = np.asarray(now, dtype=np.float64)
    if previous is None:
        return now.copy()
    return beta * now + (1.0 - beta) * np.asarray(previous, dtype=np.float64)
