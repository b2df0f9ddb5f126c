"""What a recipe lists: its stages, each a name, a kind and the kind's parameters."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: str
    params: dict = field(default_factory=dict)
