"""Mixture-of-Skills (Wu et al., EMNLP 2024): the sampling arithmetic, the scorer and its rewards.

The trainer (a later issue) supplies mean hidden-state embeddings and perplexities; everything here is
numpy, so the rule can be tested without a model.
"""

from workers.algorithms.mos.rewards import (
    cossim_rewards,
    cossim_target_rewards,
    diff_rewards,
    ema,
    mean_pool,
    mospec_diff_rewards,
)
from workers.algorithms.mos.sampling import temperature_probabilities
from workers.algorithms.mos.scorer import MixtureOfSkills, MoSConfig, ScorerMLP

__all__ = [
    "MixtureOfSkills",
    "MoSConfig",
    "ScorerMLP",
    "cossim_rewards",
    "cossim_target_rewards",
    "diff_rewards",
    "ema",
    "mean_pool",
    "mospec_diff_rewards",
    "temperature_probabilities",
]
