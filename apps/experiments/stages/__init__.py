"""Stage kinds by name. A kind knows nothing of the recipes that use it; see base.py for the contract."""

from apps.experiments.stages.base import Context, Outcome, StageKind


def _kinds() -> dict[str, StageKind]:
    from apps.experiments.stages.answer import AnswerStage
    from apps.experiments.stages.discriminate import DiscriminateStage
    from apps.experiments.stages.evaluate import EvaluateStage
    from apps.experiments.stages.generate import GenerateStage
    from apps.experiments.stages.judge import JudgeStage
    from apps.experiments.stages.pools import PoolsStage
    from apps.experiments.stages.rationale import RationaleStage
    from apps.experiments.stages.review_gate import ReviewGateStage
    from apps.experiments.stages.skill_eval import SkillEvalStage
    from apps.experiments.stages.train import TrainStage

    kinds = [
        AnswerStage,
        JudgeStage,
        DiscriminateStage,
        ReviewGateStage,
        GenerateStage,
        PoolsStage,
        TrainStage,
        EvaluateStage,
        RationaleStage,
        SkillEvalStage,
        *_tapir_kinds(),
    ]
    return {kind.name: kind() for kind in kinds}


def _tapir_kinds() -> list[type[StageKind]]:
    from apps.experiments.stages.classify import ClassifyStage
    from apps.experiments.stages.expand import ExpandStage, TrainPoolStage
    from apps.experiments.stages.resample import ResampleStage
    from apps.experiments.stages.select import MfdStage, NextAlphaStage, SelectSeedsStage
    from apps.experiments.stages.style import StyleStage

    return [
        MfdStage,
        SelectSeedsStage,
        ClassifyStage,
        ResampleStage,
        ExpandStage,
        TrainPoolStage,
        StyleStage,
        NextAlphaStage,
    ]


_REGISTRY: dict[str, StageKind] = {}


def kind_for(name: str) -> StageKind:
    if not _REGISTRY:
        _REGISTRY.update(_kinds())
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown stage kind {name!r}; known: {', '.join(sorted(_REGISTRY))}.") from None


__all__ = ["Context", "Outcome", "StageKind", "kind_for"]
