"""Lion (Jiang et al., 2023): adversarial distillation, round by round.

imitation: the teacher answers the train pool and the student trains on it; discrimination: teacher and
student answer the cache pool, the referee compares them in both orders and each instruction is hard or
easy (gap ≥ τ by default); a reviewer gate over the verdicts; generation: N/2 new instructions from hard
seeds and N/2 from easy ones, kept only if novel (ROUGE-L ≤ 0.7) against the cache pool and everything
generated; a gate over them; then the new instructions become the next train pool and join the cache pool.
Round 1's train pool and cache pool are the seed pool.
"""

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, ExperimentDataset, PoolMember
from apps.experiments.recipes.spec import StageSpec


def stages(config: dict, round_index: int) -> list[StageSpec]:
    return [
        StageSpec("teacher_train", "answer", {"role": "teacher", "pool": "train"}),
        StageSpec("train", "train", {"snapshot": {"source": "train_pool", "role": "teacher"}}),
        StageSpec("student_cache", "answer", {"role": "student", "pool": "cache"}),
        # The same requests as teacher_train for instructions in both pools: the ledger answers them.
        StageSpec("teacher_cache", "answer", {"role": "teacher", "pool": "cache"}),
        StageSpec("judge", "judge", {"pool": "cache"}),
        StageSpec("discriminate", "discriminate"),
        StageSpec("gate_verdicts", "review_gate", {"gate": "hard_verdicts", "review_kind": "verdict"}),
        StageSpec("generate", "generate"),
        StageSpec("gate_generated", "review_gate", {"gate": "generated", "review_kind": "generated"}),
        StageSpec("pools", "pools"),
    ]


def setup(experiment: Experiment) -> None:
    """The seed pool (capped at params.max_items, lowest ids first) becomes round 1's train and cache pool."""
    if PoolMember.objects.filter(experiment=experiment).exists():
        return
    seed = ExperimentDataset.objects.filter(experiment=experiment, role="seed").order_by("position").first()
    dataset_id = seed.dataset_id if seed else experiment.dataset_id
    cap = experiment.config.get("params", {}).get("max_items")
    qs = Instruction.objects.filter(dataset_id=dataset_id).order_by("pk").values_list("pk", flat=True)
    ids = qs[: int(cap)] if cap else qs.iterator(10_000)
    batch = []
    for pk in ids:
        batch += [
            PoolMember(experiment=experiment, pool=pool, instruction_id=pk, joined_round=1)
            for pool in (PoolMember.Pool.TRAIN, PoolMember.Pool.CACHE)
        ]
        if len(batch) >= 10_000:
            PoolMember.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    PoolMember.objects.bulk_create(batch, ignore_conflicts=True)
