"""The demo experiment configs shipped in configs/demo/, offered one click away on the new-experiment form."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

DEMO_DIR = Path(settings.BASE_DIR) / "configs" / "demo"
LABELS = {
    "lion": "Lion",
    "tapir": "TAPIR",
    "step_by_step": "Step-by-step",
    "mos": "Mixture-of-Skills",
}


@dataclass(frozen=True)
class DemoConfig:
    key: str  # the file's stem: lion, tapir, step_by_step, mos
    label: str
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def demo_configs() -> list[DemoConfig]:
    """The demo files, in the order of LABELS and then by name."""
    found = {path.stem: path for path in DEMO_DIR.glob("*.yaml") if path.is_file()}
    order = [key for key in LABELS if key in found] + sorted(key for key in found if key not in LABELS)
    return [DemoConfig(key, LABELS.get(key, key), found[key]) for key in order]


def demo_config(key: str) -> DemoConfig | None:
    """The demo named `key` (a file stem from the list, never a path), or None."""
    return next((demo for demo in demo_configs() if demo.key == key), None)
