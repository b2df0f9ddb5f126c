"""The experiments app's models: the engine's rows (core) and what experiments make (data)."""

from apps.experiments.exports.models import ExportJob
from apps.experiments.models.core import Experiment, ExperimentDataset, Round, StageRun
from apps.experiments.models.data import Lineage, PoolMember, SeedSelection, Snapshot, SnapshotItem, TaskLabel
from apps.experiments.models.evaluation import Evaluation, EvaluationCategory

__all__ = [
    "Evaluation",
    "EvaluationCategory",
    "Experiment",
    "ExperimentDataset",
    "ExportJob",
    "Lineage",
    "PoolMember",
    "Round",
    "SeedSelection",
    "Snapshot",
    "SnapshotItem",
    "StageRun",
    "TaskLabel",
]
