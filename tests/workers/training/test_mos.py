"""The Mixture-of-Skills sampler inside a real run: p_psi moves toward the dataset with the larger
reward, is logged every step, and its state survives a checkpoint."""

import json
from pathlib import Path

import numpy as np
import pytest

from workers.training.data import Example
from workers.training.mos import MoSSampler
from workers.training.trainer import train

from .conftest import PAIRS, write_jsonl


def rows_for(names: list[str]) -> list[dict]:
    rows = []
    for number, name in enumerate(names):
        for prompt, target in PAIRS:
            if name == "repeat":  # one row over and over: learnt at once, so its perplexity ratio falls
                prompt, target = PAIRS[0]
            rows.append({"prompt": f"{prompt} ({number})", "target": target, "dataset": name})
    return rows


@pytest.mark.parametrize(
    ("reward", "finetune", "names"),
    [
        ("diff", "lora", ["repeat", "varied"]),
        ("diff", "full", ["varied", "repeat"]),
        ("cossim", "full", ["a", "b", "repeat"]),
    ],
)
def test_probabilities_move_toward_the_dataset_with_the_larger_reward(make_spec, tmp_path, reward, finetune, names):
    data = write_jsonl(tmp_path / "mos.jsonl", rows_for(names))
    params = {"reward": reward, "update_every": 3, "learning_rate": 1.0, "datasets": names}
    spec = make_spec(
        data_path=str(data), method="mos", method_params=params, finetune=finetune, max_steps=6, learning_rate=1e-2
    )

    result = train(spec)

    lines = [json.loads(line) for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert all(len(line["mos_p"]) == len(names) for line in lines)
    assert lines[0]["mos_p"] == pytest.approx([1 / len(names)] * len(names))  # the scorer starts uniform
    updates = [line for line in lines if "mos_rewards" in line]
    assert [line["step"] for line in updates] == [3, 6]
    # From uniform, the REINFORCE step raises the dataset with the largest reward (sum_i R_i log p_i peaks
    # at p proportional to R, so later steps head there rather than to the top dataset alone).
    first = updates[0]
    after, rewards = np.asarray(first["mos_p"]), np.asarray(first["mos_rewards"])
    best = int(np.argmax(rewards))
    assert rewards[best] > np.sort(rewards)[-2] + 5e-4  # a real gap between the datasets
    assert after[best] > 1 / len(names) + 0.005
    assert int(np.argmax(after)) == best
    assert lines[first["step"]]["mos_p"] == pytest.approx(first["mos_p"])  # p holds until the next update
    assert result["mos_datasets"] == names and result["mos_p"] == pytest.approx(lines[-1]["mos_p"])


def test_the_sampler_resumes_its_draws_from_its_state():
    examples = [Example([1, 2], [1, 2], "sft", name) for name in ("x", "y") for _ in range(5)]
    units = [[i] for i in range(len(examples))]
    first = MoSSampler(examples, units, {"datasets": ["x", "y"]}, seed=4, batch_size=2)
    first.mixture.update(np.array([1.0, 0.0]))
    for _ in range(7):
        first.next_batch()
    state = json.loads(json.dumps(first.state()))  # what the checkpoint stores
    ahead = [first.next_batch() for _ in range(10)]

    again = MoSSampler(examples, units, {"datasets": ["x", "y"]}, seed=4, batch_size=2)
    again.load_state(state)
    assert [again.next_batch() for _ in range(10)] == ahead
    assert np.allclose(again.mixture.probabilities(), first.mixture.probabilities())


def test_mos_refuses_data_outside_its_datasets(make_spec, tmp_path):
    from workers.training.spec import SpecError

    data = write_jsonl(tmp_path / "mos.jsonl", rows_for(["a", "b", "c"]))
    with pytest.raises(SpecError, match=r"method_params.datasets: .*unlisted: \['c'\]"):
        train(make_spec(data_path=str(data), method="mos", method_params={"datasets": ["a", "b"]}))


def _sized(sizes: dict[str, int]) -> tuple[list[Example], list[list[int]]]:
    examples = [Example([1, 2], [1, 2], "sft", name) for name, n in sizes.items() for _ in range(n)]
    return examples, [[i] for i in range(len(examples))]


@pytest.mark.parametrize(
    ("tau", "weights", "expected"),
    [
        (1.0, None, [1 / 3, 2 / 3]),  # in proportion to size (8 and 16 rows)
        (1.0, [3.0, None], [0.6, 0.4]),  # a weight multiplies its dataset's size: 24 against 16
        (2.0, None, [1 / (1 + 2**0.5), 2**0.5 / (1 + 2**0.5)]),  # tau flattens: (m_i / M)^(1/2)
        (0.5, [None, 0.25], [0.8, 0.2]),  # 8 against 4, sharpened: 64 : 16
        ("inf", [5.0, 1.0], [0.5, 0.5]),  # tau = inf is uniform whatever the weights
    ],
)
def test_p_psi_starts_at_the_configured_temperature_and_weights(tau, weights, expected):
    examples, units = _sized({"x": 8, "y": 16})
    params = {"datasets": ["x", "y"], "tau": tau, "weights": weights}
    sampler = MoSSampler(examples, units, params, seed=3, batch_size=2)
    assert sampler.mixture.probabilities() == pytest.approx(expected, abs=1e-9)
    assert sampler.start_p == pytest.approx(expected, abs=1e-9)
    # The draws follow it: 20,000 batches' datasets, within four standard errors.
    drawn = np.bincount([sampler.next_batch()[0] for _ in range(20_000)], minlength=2) / 20_000
    assert drawn == pytest.approx(expected, abs=4 * (0.25 / 20_000) ** 0.5)


def test_without_tau_or_weights_p_psi_starts_uniform_as_before():
    examples, units = _sized({"x": 8, "y": 16, "z": 2})
    sampler = MoSSampler(examples, units, {"datasets": ["x", "y", "z"]}, seed=3, batch_size=2)
    assert sampler.mixture.probabilities() == pytest.approx([1 / 3] * 3, abs=1e-12)


def test_a_run_logs_the_configured_start_and_learns_on_from_it(make_spec, tmp_path):
    rows = rows_for(["a"]) + rows_for(["b", "b"])  # 8 rows of a, 16 of b
    data = write_jsonl(tmp_path / "mos.jsonl", rows)
    params = {"update_every": 2, "learning_rate": 1.0, "datasets": ["a", "b"], "tau": 1.0, "weights": [3.0, None]}
    spec = make_spec(data_path=str(data), method="mos", method_params=params, max_steps=2)

    result = train(spec)

    lines = [json.loads(line) for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["mos_p"] == pytest.approx([0.6, 0.4], abs=1e-9)  # before any update: q_tau itself
    assert result["mos_start_p"] == pytest.approx([0.6, 0.4], abs=1e-9)
    assert "mos_rewards" in lines[1] and lines[1]["mos_p"] != pytest.approx([0.6, 0.4], abs=1e-6)
