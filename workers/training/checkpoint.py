"""Checkpoints that resume a run exactly: trainable weights, optimizer, scheduler, every RNG, the loop's
own state and the spec.

    output_dir/checkpoints/step-000050/   weights.safetensors  optimizer.pt  scheduler.pt  rng-0.pt
                                          state.json  spec.json
    output_dir/checkpoints/last -> step-000050

A checkpoint is written into a hidden folder and renamed into place, then `last` is swapped atomically
(a new symlink renamed over the old one), so a run killed at any moment leaves `last` pointing at a
complete checkpoint. Only the newest `keep` checkpoints stay.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from workers.training.spec import TrainSpec

LAST = "last"
PREFIX = "step-"


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def find_resume_point(spec: TrainSpec) -> Path | None:
    """The run's own last checkpoint wins (a crash after resuming from elsewhere); then `resume_from`."""
    own = checkpoints_dir(spec.output_dir) / LAST
    if own.exists():
        return own.resolve()
    if spec.resume_from:
        return Path(spec.resume_from)
    return None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    spec: TrainSpec,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    rank: int = 0,
    main: bool = True,
) -> Path:
    """Write step-N (RNG per rank; the rest from the main process) and point `last` at it."""
    root = checkpoints_dir(spec.output_dir)
    name = f"{PREFIX}{state['step']:06d}"
    final = root / name
    work = root / f".{name}.tmp"
    if main:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        weights = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(weights, str(work / "weights.safetensors"))
        torch.save(optimizer.state_dict(), work / "optimizer.pt")
        torch.save(scheduler.state_dict(), work / "scheduler.pt")
        (work / "state.json").write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        spec.save(work / "spec.json")
    _barrier()  # ranks share one machine's disk: each adds its own RNG state to the folder
    torch.save(rng_state(), work / f"rng-{rank}.pt")
    _barrier()
    if main:
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
        link = root / f".{LAST}.tmp"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(name)
        os.replace(link, root / LAST)
        _prune(root, keep=spec.keep_checkpoints, current=name)
    _barrier()
    return final


def _prune(root: Path, *, keep: int, current: str) -> None:
    steps = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name.startswith(PREFIX))
    for old in steps[:-keep]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, rank: int = 0
) -> dict[str, Any]:
    """Restore everything save_checkpoint wrote; return the loop state."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    weights = load_file(str(path / "weights.safetensors"))
    if set(weights) != set(params):
        missing, extra = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
        raise RuntimeError(f"checkpoint {path} does not fit this model (missing {missing[:3]}, extra {extra[:3]})")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng_file = path / f"rng-{rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
