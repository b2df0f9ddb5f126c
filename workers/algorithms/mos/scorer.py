"""The MoS scorer: a two-layer MLP over dataset indicators that sets the sampling distribution p_psi.

Dataset i enters as its one-hot indicator e_i; h_i = tanh(W1 e_i + b1) and logit_i = w2 . h_i + b2, and
p_psi = softmax(logits). w2 and b2 start at zero, so p_psi starts exactly uniform. Every S steps
(default 100) the scorer takes one REINFORCE step,

    psi <- psi + gamma * sum_i R(i) * grad_psi log p_psi(i),   gamma = 1e-4,

with the gradient written out by hand (d sum_i R_i log p_i / d logit_k = R_k - p_k sum_i R_i, then through
the tanh layer). Plain gradient ascent, as the formula says; no optimiser state. The hidden width (64) and
tanh are our choices.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from workers.algorithms.config import AlgorithmConfig, ConfigError, check_int, check_range
from workers.algorithms.mos.rewards import (
    cossim_rewards,
    cossim_target_rewards,
    diff_rewards,
    ema,
    mospec_diff_rewards,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MoSConfig(AlgorithmConfig):
    """reward: cossim or diff; smooth: EMA of it; target: MoSpec's target dataset index (None = MoS)."""

    reward: Literal["cossim", "diff"] = "cossim"
    smooth: bool = False
    beta: float = 0.9
    update_every: int = 100
    learning_rate: float = 1e-4
    hidden: int = 64
    target: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reward not in ("cossim", "diff"):
            raise ConfigError(f"MoSConfig.reward must be 'cossim' or 'diff', got {self.reward!r}")
        check_range(self, "beta", self.beta, 0.0, 1.0)
        check_int(self, "update_every", self.update_every, 1)
        check_range(self, "learning_rate", self.learning_rate, 0.0, 1e6)
        check_int(self, "hidden", self.hidden, 1)
        if self.target is not None:
            check_int(self, "target", self.target, 0)
        check_int(self, "seed", self.seed, 0)


class ScorerMLP:
    """p_psi over n datasets from a one-hot-input MLP; parameters in plain numpy arrays."""

    def __init__(self, n_datasets: int, hidden: int = 64, seed: int = 0) -> None:
        if n_datasets < 1:
            raise ValueError("need at least one dataset")
        rng = np.random.default_rng(seed)
        self.w1 = rng.normal(0.0, 1.0 / np.sqrt(n_datasets), size=(hidden, n_datasets))
        self.b1 = np.zeros(hidden)
        self.w2 = np.zeros(hidden)
        self.b2 = np.zeros(1)

    def _forward(self) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.tanh(self.w1 + self.b1[:, None])  # column i is h_i, since W1 e_i = W1[:, i]
        logits = self.w2 @ hidden + self.b2[0]
        return hidden, logits

    def probabilities(self) -> np.ndarray:
        _, logits = self._forward()
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()

    def objective(self, rewards: np.ndarray) -> float:
        """sum_i R(i) log p_psi(i): what the REINFORCE step climbs."""
        _, logits = self._forward()
        log_p = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        return float(np.asarray(rewards, dtype=np.float64) @ log_p)

    def gradient(self, rewards: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of the objective with respect to every parameter, by hand."""
        rewards = np.asarray(rewards, dtype=np.float64)
        hidden, _ = self._forward()
        p = self.probabilities()
        d_logits = rewards - p * rewards.sum()
        d_hidden = np.outer(self.w2, d_logits)  # (hidden, datasets)
        d_pre = d_hidden * (1.0 - hidden**2)
        return {
            "w1": d_pre,
            "b1": d_pre.sum(axis=1),
            "w2": hidden @ d_logits,
            "b2": np.array([d_logits.sum()]),
        }

    def reinforce(self, rewards: np.ndarray, learning_rate: float) -> None:
        """psi <- psi + gamma * sum_i R(i) grad log p_psi(i)."""
        for name, grad in self.gradient(rewards).items():
            setattr(self, name, getattr(self, name) + learning_rate * grad)

    def state(self) -> dict[str, list[Any]]:
        return {name: getattr(self, name).tolist() for name in ("w1", "b1", "w2", "b2")}

    @classmethod
    def from_state(cls, state: dict[str, list[Any]]) -> ScorerMLP:
        w1 = np.asarray(state["w1"], dtype=np.float64)
        scorer = cls(w1.shape[1], w1.shape[0])
        for name in ("w1", "b1", "w2", "b2"):
            setattr(scorer, name, np.asarray(state[name], dtype=np.float64))
        return scorer


class MixtureOfSkills:
    """The MoS loop's bookkeeping: when to update, which reward, the EMA state, and sampling."""

    def __init__(self, n_datasets: int, config: MoSConfig | None = None) -> None:
        self.config = config or MoSConfig()
        if self.config.target is not None and self.config.target >= n_datasets:
            raise ConfigError(f"MoSConfig.target {self.config.target} is not one of {n_datasets} datasets")
        self.scorer = ScorerMLP(n_datasets, self.config.hidden, self.config.seed)
        self.smoothed: np.ndarray | None = None
        self.updates = 0

    def probabilities(self) -> np.ndarray:
        return self.scorer.probabilities()

    def should_update(self, step: int) -> bool:
        """True at steps S, 2S, ... (1-based training steps)."""
        return step > 0 and step % self.config.update_every == 0

    def rewards(
        self,
        *,
        embeddings: np.ndarray | None = None,
        ppl_current: list[list[float]] | None = None,
        ppl_base: list[list[float]] | None = None,
    ) -> np.ndarray:
        """This update's raw reward per dataset, by the configured kind (and MoSpec target)."""
        target = self.config.target
        if self.config.reward == "cossim":
            if embeddings is None:
                raise ValueError("COSSIM needs one mean embedding per dataset")
            return cossim_rewards(embeddings) if target is None else cossim_target_rewards(embeddings, target)
        if ppl_current is None or ppl_base is None:
            raise ValueError("DIFF needs perplexities under the current and the base model")
        rewards = diff_rewards(ppl_current, ppl_base)
        return rewards if target is None else mospec_diff_rewards(rewards, target)

    def update(self, rewards: np.ndarray) -> np.ndarray:
        """Smooth the rewards if configured, take one REINFORCE step, return the new distribution."""
        if self.config.smooth:
            self.smoothed = ema(rewards, self.smoothed, self.config.beta)
            rewards = self.smoothed
        self.scorer.reinforce(rewards, self.config.learning_rate)
        self.updates += 1
        return self.probabilities()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Dataset index for each of `size` draws from p_psi."""
        return rng.choice(len(self.probabilities()), size=size, p=self.probabilities())
