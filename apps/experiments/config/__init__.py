"""Experiment configs: `parse_config` validates a YAML/JSON/dict config into a frozen ExperimentConfig
(pure), `resolve_config` checks what it names against the database. See docs/experiment-config.md."""

from apps.experiments.config.endpoints import LOCAL_CLASSIFIER, ROLES, EndpointRef
from apps.experiments.config.errors import ConfigError
from apps.experiments.config.params import PARAMS
from apps.experiments.config.schema import GATES, RECIPES, DatasetRef, ExperimentConfig, parse_config
from apps.experiments.config.student import STUDENT, student_defaults


def resolve_config(config: ExperimentConfig):
    """See apps.experiments.config.resolve; imported on call so parsing never needs the models loaded."""
    from apps.experiments.config.resolve import resolve_config as resolve

    return resolve(config)


__all__ = [
    "GATES",
    "LOCAL_CLASSIFIER",
    "PARAMS",
    "RECIPES",
    "ROLES",
    "STUDENT",
    "ConfigError",
    "DatasetRef",
    "EndpointRef",
    "ExperimentConfig",
    "ResolvedConfig",
    "ResolvedEndpoint",
    "parse_config",
    "resolve_config",
    "student_defaults",
]


def __getattr__(name: str):
    # ResolvedConfig / ResolvedEndpoint live beside the models they hold; loaded on first use.
    if name in ("ResolvedConfig", "ResolvedEndpoint"):
        from apps.experiments.config import resolve

        return getattr(resolve, name)
    raise AttributeError(name)
