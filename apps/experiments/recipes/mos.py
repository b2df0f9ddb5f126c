"""Mixture-of-Skills (Wu et al., 2024): one student trained on several datasets at once, the sampler
learning from the model's own rewards which dataset each batch comes from.

Set-up: each skill dataset (in the config's order) gives a seeded held-out set (a tenth of its usable items,
1 to 200, never more than half; usable = with a recorded answer, or every item with `teacher_answers`) and a
train pool of the rest, capped at `params.max_items` **per skill** (lowest ids first). One pass: with
`teacher_answers`, `teacher_answers` and `teacher_heldout` (answer: teacher) → `gate_answers` (review:
answers, over the teacher's answers; without teacher answers the targets are the datasets' recorded answers
and there is nothing of the experiment's own to review) → `train` (`skill:<dataset>` items, TrainSpec method
mos with the MoSConfig of the config, the datasets in its order, `tau` and the datasets' weights for p_ψ's
start; the held-out rows as eval data) →
`skill_eval` (each skill's held-out loss and perplexity and its final p_ψ in round.metrics["skills"]).
"""

from apps.datasets.models import Instruction
from apps.experiments.machine import rng_for
from apps.experiments.models import Experiment, PoolMember
from apps.experiments.recipes.spec import StageSpec
from apps.experiments.snapshot_items import heldout_size, skills


def method_params(config: dict) -> dict:
    """MoSConfig's fields (target as the dataset's index), the datasets in the sampler's order, and where
    p_psi starts: `tau` and each dataset's `weight` (null: by its size), which the trainer's sampler turns
    into its starting distribution (workers.training.mos.start_distribution)."""
    from apps.experiments.config import parse_config

    parsed = parse_config(config)
    mos = parsed.algorithm_configs()["mos"]
    weights = [ref.weight for ref in parsed.datasets_with_role("skill", "target")]
    return {**mos.to_dict(), "datasets": parsed.skill_names, "tau": parsed.params["tau"], "weights": weights}


def stages(config: dict, round_index: int) -> list[StageSpec]:
    if round_index > 1:
        return []
    teacher = bool(config.get("params", {}).get("teacher_answers"))
    answers = []
    if teacher:
        answers = [
            StageSpec("teacher_answers", "answer", {"role": "teacher", "pool": PoolMember.Pool.TRAIN}),
            StageSpec("teacher_heldout", "answer", {"role": "teacher", "pool": PoolMember.Pool.HELDOUT}),
            StageSpec("gate_answers", "review_gate", {"gate": "answers", "review_kind": "answer"}),
        ]
    train = {
        "snapshot": {"source": "skills", "teacher": teacher, "heldout": True},
        "training": {"method": "mos", "method_params": method_params(config)},
    }
    return [*answers, StageSpec("train", "train", train), StageSpec("skill_eval", "skill_eval")]


def setup(experiment: Experiment) -> None:
    if PoolMember.objects.filter(experiment=experiment).exists():
        return
    params = experiment.config.get("params", {})
    cap, teacher = params.get("max_items"), bool(params.get("teacher_answers"))
    members = []
    for name, dataset_id in skills(experiment):
        qs = Instruction.objects.filter(dataset_id=dataset_id)
        if not teacher:
            qs = qs.exclude(reference_output="")
        ids = list(qs.order_by("pk").values_list("pk", flat=True))
        k = heldout_size(len(ids))
        picked = rng_for(experiment.seed, 0, f"heldout:{name}").choice(len(ids), size=k, replace=False)
        held = {ids[i] for i in picked.tolist()}
        train = [pk for pk in ids if pk not in held]
        train = train[: int(cap)] if cap else train
        members += [PoolMember(experiment=experiment, pool="heldout", instruction_id=pk, joined_round=1) for pk in held]
        members += [PoolMember(experiment=experiment, pool="train", instruction_id=pk, joined_round=1) for pk in train]
    PoolMember.objects.bulk_create(members, batch_size=5000, ignore_conflicts=True)
