"""The Mixture-of-Skills sampler: each batch's dataset is drawn from p_psi, and every S steps the scorer
takes one REINFORCE step with rewards measured on the model being trained.

The rule itself (scorer, rewards, EMA, schedule) is `workers.algorithms.mos.MixtureOfSkills`; this module
feeds it: COSSIM from mean last-layer hidden states (the encoder's for seq2seq) of one probe mini-batch
per dataset, DIFF from per-example perplexities under the current model and the frozen base (for LoRA
the same model with its adapters disabled). Its state (scorer, EMA, draw generator, cursors) goes into
every checkpoint, so a resumed run draws what the undisturbed one would have.

Where it starts: with `tau` or `weights` in the method params, p_psi starts at the temperature distribution
q_tau(i) proportional to (m_i / sum m)^(1/tau) with m_i = weight_i * (training rows of dataset i), a null
weight counting 1 (so weights up- or down-weight a dataset against its size, and tau = "inf" is uniform).
The scorer is set to it exactly: its output layer is solved by least squares so that its logits are
log q_tau (up to a constant, which softmax ignores); the REINFORCE updates go on from there. Without either
key it starts uniform, as the scorer is built.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import torch

from workers.algorithms.mos import MixtureOfSkills, MoSConfig, ScorerMLP, mean_pool, temperature_probabilities
from workers.training.data import Example, collate
from workers.training.losses import forward, per_example_loss, token_losses
from workers.training.spec import SpecError


class MoSSampler:
    def __init__(self, examples: list[Example], units: list[list[int]], params: dict, *, seed: int, batch_size: int):
        present = sorted({examples[unit[0]].dataset for unit in units})
        names = list(params.get("datasets") or present)
        missing = sorted(set(present) - set(names))
        if missing or len(names) < 2:
            raise SpecError(
                [
                    (
                        "method_params.datasets",
                        f"mos needs >= 2 datasets covering the data; rows name {present}, unlisted: {missing}",
                    )
                ]
            )
        self.names = names
        self.units = [[u for u in units if examples[u[0]].dataset == name] for name in names]
        empty = [name for name, members in zip(names, self.units, strict=True) if not members]
        if empty:
            raise SpecError([("method_params.datasets", f"no training rows for dataset(s) {empty}")])
        fields = {k: v for k, v in params.items() if k not in ("datasets", "tau", "weights")}
        if isinstance(fields.get("target"), str):
            if fields["target"] not in names:
                raise SpecError([("method_params.target", f"{fields['target']!r} is not one of {names}")])
            fields["target"] = names.index(fields["target"])
        fields.setdefault("seed", seed)
        self.mixture = MixtureOfSkills(len(names), MoSConfig.from_dict(fields))
        start = start_distribution([len(members) for members in self.units], params.get("weights"), params.get("tau"))
        if start is not None:
            warm_start(self.mixture.scorer, start)
        self.start_p = self.mixture.probabilities()
        self.seed, self.batch_size = seed, batch_size
        self.rng = np.random.default_rng([seed, 11])
        self.cycles = [0] * len(names)
        self.positions = [0] * len(names)

    def _order(self, dataset: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 13, dataset, self.cycles[dataset]]).permutation(
            len(self.units[dataset])
        )

    def next_batch(self) -> tuple[int, list[int]]:
        """(dataset index, example indices): a batch of one dataset drawn from p_psi, cycling through it."""
        dataset = int(self.mixture.sample(self.rng, 1)[0])
        chosen = []
        while len(chosen) < min(self.batch_size, len(self.units[dataset])):
            order = self._order(dataset)
            chosen.append(int(order[self.positions[dataset]]))
            self.positions[dataset] += 1
            if self.positions[dataset] == len(order):
                self.cycles[dataset] += 1
                self.positions[dataset] = 0
        return dataset, [index for unit in chosen for index in self.units[dataset][unit]]

    def probe(self, step: int, dataset: int) -> list[int]:
        """A reward probe batch, a pure function of (seed, step, dataset): it leaves the draws alone."""
        members = self.units[dataset]
        picks = np.random.default_rng([self.seed, 17, step, dataset]).choice(
            len(members), size=min(self.batch_size, len(members)), replace=False
        )
        return [index for pick in sorted(picks.tolist()) for index in members[pick]]

    def state(self) -> dict[str, Any]:
        smoothed = self.mixture.smoothed
        return {
            "names": self.names,
            "scorer": self.mixture.scorer.state(),
            "smoothed": None if smoothed is None else smoothed.tolist(),
            "updates": self.mixture.updates,
            "rng": self.rng.bit_generator.state,
            "cycles": self.cycles,
            "positions": self.positions,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.mixture.scorer = ScorerMLP.from_state(state["scorer"])
        self.mixture.smoothed = None if state["smoothed"] is None else np.asarray(state["smoothed"])
        self.mixture.updates = state["updates"]
        self.rng.bit_generator.state = state["rng"]
        self.cycles, self.positions = list(state["cycles"]), list(state["positions"])


def start_distribution(sizes: list[int], weights: list | None, tau: float | str | None) -> np.ndarray | None:
    """q_tau over the datasets from their sizes and weights; None when neither tau nor weights is given."""
    if tau is None and weights is None:
        return None
    if weights is not None and len(weights) != len(sizes):
        raise SpecError([("method_params.weights", f"{len(weights)} weights for {len(sizes)} datasets")])
    factors = [1.0 if w is None else float(w) for w in (weights or [None] * len(sizes))]
    masses = [size * factor for size, factor in zip(sizes, factors, strict=True)]
    temperature = 1.0 if tau is None else (math.inf if tau == "inf" else float(tau))
    return temperature_probabilities(masses, temperature)


def warm_start(scorer: ScorerMLP, target: np.ndarray) -> None:
    """Set the scorer's output layer so that p_psi = target: logits = log target + c. Exact whenever the
    hidden width is at least the number of datasets (the tanh features are then independent); otherwise the
    closest logits in least squares."""
    features = np.tanh(scorer.w1 + scorer.b1[:, None]).T  # (datasets, hidden): row i is h_i
    design = np.hstack([features, np.ones((features.shape[0], 1))])  # the last column: the shift c (b2)
    solution, *_ = np.linalg.lstsq(design, np.log(np.asarray(target, dtype=np.float64)), rcond=None)
    scorer.w2, scorer.b2 = solution[:-1], solution[-1:]


@torch.no_grad()
def measure_rewards(
    sampler: MoSSampler,
    model: torch.nn.Module,
    examples: list[Example],
    step: int,
    *,
    seq2seq: bool,
    pad_id: int,
    device: torch.device,
    frozen_base: torch.nn.Module | None,
) -> np.ndarray:
    """This update's raw reward per dataset, measured on one probe batch each."""
    was_training = model.training
    model.eval()
    embeddings, ppl_now, ppl_base = [], [], []
    try:
        for dataset in range(len(sampler.names)):
            batch = collate(
                [examples[i] for i in sampler.probe(step, dataset)], seq2seq=seq2seq, padding_free=False, pad_id=pad_id
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            if sampler.mixture.config.reward == "cossim":
                out = forward(model, batch, seq2seq=seq2seq, output_hidden_states=True)
                hidden = out.encoder_last_hidden_state if seq2seq else out.hidden_states[-1]
                embeddings.append(mean_pool(hidden.float().cpu().numpy(), batch["attention_mask"].cpu().numpy()))
            else:
                ppl_now.append(_perplexities(model, batch, seq2seq))
                with _base_of(model, frozen_base) as base:
                    ppl_base.append(_perplexities(base, batch, seq2seq))
    finally:
        model.train(was_training)
    if embeddings:
        return sampler.mixture.rewards(embeddings=np.stack(embeddings))
    return sampler.mixture.rewards(ppl_current=ppl_now, ppl_base=ppl_base)


def _perplexities(model: torch.nn.Module, batch: dict, seq2seq: bool) -> list[float]:
    logits = forward(model, batch, seq2seq=seq2seq).logits
    losses, index = token_losses(logits, batch, seq2seq=seq2seq)
    per_example = per_example_loss(losses, index, batch["input_ids"].shape[0])
    return [math.exp(min(float(value), 80.0)) for value in per_example]


@contextlib.contextmanager
def _base_of(model: torch.nn.Module, frozen_base: torch.nn.Module | None):
    """The frozen base model: a LoRA model with its adapters off, else the kept copy of the base."""
    if frozen_base is not None:
        yield frozen_base
    elif hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield model
    else:
        raise RuntimeError("DIFF needs the frozen base: a LoRA model or a kept copy")
