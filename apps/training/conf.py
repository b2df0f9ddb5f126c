"""Training settings, each overridable in Django settings or the environment (settings win), with defaults
that suit one GPU worker per machine."""

import os
import shlex
import sys
from pathlib import Path

from django.conf import settings


def _value(name: str, default):
    if hasattr(settings, name):
        return getattr(settings, name)
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return type(default)(raw) if not isinstance(default, Path) else Path(raw)


def trainer_module() -> str:
    """The module run as `python -m <module> --spec spec.json`; tests point it at a stand-in trainer."""
    return _value("RETORT_TRAINER_MODULE", "workers.training.run")


def trainer_launcher() -> list[str]:
    """What runs the trainer module: this Python by default; for several GPUs of one machine e.g.
    "accelerate launch --num_processes 4" or "torchrun --nproc_per_node 4" (both take `-m module`)."""
    launcher = _value("RETORT_TRAINER_LAUNCHER", "")
    return shlex.split(launcher) if launcher else [sys.executable]


def generator_module() -> str:
    return _value("RETORT_GENERATOR_MODULE", "workers.training.generate")


def merger_module() -> str:
    """The module that folds a LoRA adapter into its base (`python -m <module> --spec spec.json`)."""
    return _value("RETORT_MERGER_MODULE", "workers.training.merge")


def training_root() -> Path:
    """Where jobs write their spec, log, metrics, checkpoints and final weights. With workers on several
    machines it must be shared storage: the web server streams artifact downloads from it."""
    return Path(_value("RETORT_TRAINING_ROOT", Path(settings.MEDIA_ROOT) / "training"))


def heartbeat_s() -> float:
    """How often a running job stores its new metrics, beats and reads its cancel flag."""
    return float(_value("RETORT_TRAINING_HEARTBEAT_S", 5.0))


def stale_after_s() -> float:
    """A running job whose heartbeat is older than this has lost its worker and may be claimed again."""
    return float(_value("RETORT_TRAINING_STALE_AFTER_S", float(settings.RETORT_STALE_AFTER_S)))


def cancel_grace_s() -> float:
    """Time a SIGTERMed trainer gets to save its checkpoint before it is killed."""
    return float(_value("RETORT_TRAINING_CANCEL_GRACE_S", 120.0))


def max_attempts() -> int:
    """Starts allowed for a job that keeps losing its trainer to signals (OOM killer, a dead worker)."""
    return int(_value("RETORT_TRAINING_MAX_ATTEMPTS", 3))
