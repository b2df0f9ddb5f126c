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
