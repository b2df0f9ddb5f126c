"""The entry point as G runs it: a subprocess, killed or stopped, resumed, with its exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workers.training.trainer import train

from .conftest import REPO_ROOT


def start(spec_path: Path, log: Path) -> subprocess.Popen:
    handle = log.open("ab")  # a file, never a pipe, as the GPU task does
    return subprocess.Popen(
        [sys.executable, "-m", "workers.training.run", "--spec", str(spec_path)],
        cwd=REPO_ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def wait_for(predicate, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the trainer ended before the test could stop it"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def write_spec(spec, path: Path) -> Path:
    spec.save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_sigkill_then_restart_resumes_to_the_undisturbed_weights(make_spec, tmp_path, finetune):
    # LoRA with dropout: the restored RNG must give the undisturbed run's dropout masks.
    settings = {"max_steps": 120, "save_every": 10, "finetune": finetune, "learning_rate": 1e-3, "warmup_ratio": 0.1}
    if finetune == "lora":
        settings.update(lora_dropout=0.1, learning_rate=1e-2)
    weights = "adapter_model.safetensors" if finetune == "lora" else "model.safetensors"
    undisturbed = train(make_spec(output_dir=str(tmp_path / "a"), **settings))

    spec = make_spec(output_dir=str(tmp_path / "b"), **settings)
    spec_path = write_spec(spec, tmp_path / "job.json")
    log = tmp_path / "train.log"
    process = start(spec_path, log)
    last = Path(spec.output_dir) / "checkpoints" / "last"
    wait_for(last.exists, process)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert not (Path(spec.output_dir) / "result.json").exists()
    killed_at = json.loads((last / "state.json").read_text())["step"]
    assert 10 <= killed_at < 120

    restarted = start(spec_path, log)
    assert restarted.wait(timeout=180) == 0, log.read_text()[-3000:]
    result = json.loads((Path(spec.output_dir) / "result.json").read_text())
    assert result["status"] == "succeeded"
    assert result["resumed_from"] >= killed_at and result["steps"] == undisturbed["steps"] == 120
    assert result["train_loss"] == pytest.approx(undisturbed["train_loss"], rel=1e-5)
    ours = load_file(Path(result["final_dir"]) / weights)
    theirs = load_file(Path(undisturbed["final_dir"]) / weights)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6), name
    steps = [json.loads(line)["step"] for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert set(steps) == set(range(1, 121))  # steps after the checkpoint were logged again by the restart


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_3(make_spec, tmp_path):
    spec = make_spec(output_dir=str(tmp_path / "out"), max_steps=100000, save_every=100000)
    spec_path = write_spec(spec, tmp_path / "job.json")
    metrics = Path(spec.output_dir) / "metrics.jsonl"
    process = start(spec_path, tmp_path / "train.log")
    wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 3, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 3
    result = json.loads((Path(spec.output_dir) / "result.json").read_text())
    state = json.loads((Path(spec.output_dir) / "checkpoints" / "last" / "state.json").read_text())
    last_logged = json.loads(metrics.read_text().splitlines()[-1])["step"]
    assert result["status"] == "cancelled" and result["steps"] == state["step"] == last_logged >= 3
    assert (Path(spec.output_dir) / "checkpoints" / "last" / "weights.safetensors").is_file()


def test_a_bad_spec_exits_2_and_names_every_field(tmp_path):
    spec_path = tmp_path / "job.json"
    spec_path.write_text(
        json.dumps(
            {
                "job_id": 1,
                "base_model": "builtin:tiny",
                "data_path": str(tmp_path / "none.jsonl"),
                "output_dir": str(tmp_path),
                "finetune": "half",
                "batch_size": 0,
                "colour": "red",
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "workers.training.run", "--spec", str(spec_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
    )
    assert done.returncode == 2
    assert "finetune: expected one of lora, full, got 'half'" in done.stderr
    assert "batch_size: expected an integer in [1, 65536], got 0" in done.stderr
    assert "colour: unknown field" in done.stderr


def test_a_missing_data_file_is_a_bad_spec(tmp_path):
    from workers.training.run import main

    spec_path = tmp_path / "job.json"
    spec_path.write_text(
        json.dumps(
            {
                "job_id": 1,
                "base_model": "builtin:tiny",
                "data_path": str(tmp_path / "none.jsonl"),
                "output_dir": str(tmp_path),
            }
        )
    )
    assert main(["--spec", str(spec_path)]) == 2
