"""Distilling step-by-step (Hsieh et al., 2023): the teacher explains each labelled example by few-shot
chain of thought; the student learns both the label and the rationale (multitask).

One pass (`rounds: 1`): `rationales` (rationale: the teacher's rationale and label for each labelled item of
the seed pool, parsed; label disagreements dropped with `drop_mismatched`) → `gate_rationales` (review:
rationales) → `train` (predict/explain pairs, TrainSpec method step_by_step with `alpha`). A round after the
first has no stages: the method has nothing to repeat.
"""

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, ExperimentDataset, PoolMember
from apps.experiments.recipes.spec import StageSpec
from apps.experiments.snapshot_items import step_by_step_config


def stages(config: dict, round_index: int) -> list[StageSpec]:
    if round_index > 1:
        return []
    alpha = step_by_step_config(config).alpha
    return [
        StageSpec("rationales", "rationale", {"pool": "train"}),
        StageSpec("gate_rationales", "review_gate", {"gate": "rationales", "review_kind": "rationale"}),
        StageSpec(
            "train",
            "train",
            {
                "snapshot": {"source": "rationales"},
                "training": {"method": "step_by_step", "method_params": {"alpha": alpha}},
            },
        ),
    ]


def setup(experiment: Experiment) -> None:
    """The seed dataset's labelled items (capped at params.max_items, lowest ids first) are the train pool."""
    if PoolMember.objects.filter(experiment=experiment).exists():
        return
    seed = ExperimentDataset.objects.filter(experiment=experiment, role="seed").order_by("position").first()
    dataset_id = seed.dataset_id if seed else experiment.dataset_id
    cap = experiment.config.get("params", {}).get("max_items")
    qs = Instruction.objects.filter(dataset_id=dataset_id).exclude(gold_label="").order_by("pk")
    ids = qs.values_list("pk", flat=True)
    ids = ids[: int(cap)] if cap else ids.iterator(10_000)
    batch = []
    for pk in ids:
        batch.append(PoolMember(experiment=experiment, pool=PoolMember.Pool.TRAIN, instruction_id=pk, joined_round=1))
        if len(batch) >= 10_000:
            PoolMember.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    PoolMember.objects.bulk_create(batch, ignore_conflicts=True)
