"""TAPIR's curriculum stages: MFD per judged instruction (mfd), the round's seeds drawn with the hard share
α_r (select_seeds), and α_{r+1} for the next round (next_alpha).

Hard is "MFD above the threshold" by default (`hard_rule: gap > threshold`, as the TAPIR paper words it);
`gap >= threshold` counts a gap equal to it as hard. `select_seeds` itself is strict, so for `>=` it is
given the largest float below the threshold: d > nextafter(t, -inf) holds exactly when d >= t.
"""

import math

from apps.experiments.machine import StageError
from apps.experiments.models import PoolMember, Round, SeedSelection
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.experiments.stages.discriminate import _pair
from apps.experiments.stages.generate import effective_verdicts
from apps.judging.models import Judgment
from workers.algorithms.curriculum import (
    CurriculumConfig,
    hard_share,
    model_fitting_difficulty,
    next_alpha,
    select_seeds,
)
from workers.algorithms.discrimination import discriminate

HARD_RULES = ("gap > threshold", "gap >= threshold")


def hard_rule(params: dict) -> tuple[float, str]:
    rule = params.get("hard_rule", "gap > threshold")
    if rule not in HARD_RULES:
        raise StageError(f"Unknown hard_rule {rule!r}; allowed: {', '.join(HARD_RULES)}.")
    return float(params.get("hard_threshold", 1.0)), rule


def strict_threshold(threshold: float, rule: str) -> float:
    """The threshold select_seeds' strict `>` needs to apply `rule`."""
    return threshold if rule == "gap > threshold" else math.nextafter(threshold, -math.inf)


def is_hard(mfd: float, threshold: float, rule: str) -> bool:
    return mfd > strict_threshold(threshold, rule)


def _judgments(ctx: Context):
    return Judgment.objects.filter(round=ctx.round, kind=Judgment.Kind.DISCRIMINATION)


class MfdStage(StageKind):
    """Model Fitting Difficulty of every judged instruction (teacher score − student score over both
    orders) and its hard/easy verdict by the config's rule; invalid when either order did not parse."""

    name = "mfd"

    def start(self, ctx: Context) -> None:
        hard_rule(ctx.params)  # a bad rule fails the stage before any work
        ctx.run.total = _judgments(ctx).count()

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return list(_judgments(ctx).filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:limit])

    def process(self, ctx: Context, ids: list[int]) -> None:
        threshold, rule = hard_rule(ctx.params)
        rows = list(_judgments(ctx).filter(pk__in=ids))
        for j in rows:
            tf, sf = _pair(j)
            mfd = model_fitting_difficulty(tf, sf)
            if mfd is None:
                j.teacher_score = j.student_score = j.gap = None
                j.contested, j.verdict = False, Judgment.Verdict.INVALID
                continue
            scores = discriminate(tf, sf)
            j.teacher_score, j.student_score, j.gap, j.contested = (
                scores.teacher_score,
                scores.student_score,
                mfd,
                scores.contested,
            )
            j.verdict = Judgment.Verdict.HARD if is_hard(mfd, threshold, rule) else Judgment.Verdict.EASY
        Judgment.objects.bulk_update(rows, ["teacher_score", "student_score", "gap", "contested", "verdict"])
        ctx.run.done += len(rows)
        ctx.run.failed += sum(j.verdict == Judgment.Verdict.INVALID for j in rows)


def round_alpha(ctx: Context) -> float:
    """α_r: kept in Round.params once chosen; round 1 takes alpha0, a later round the α_{r+1} its
    predecessor stored (or the schedule, if that round stored none)."""
    if "alpha" in ctx.round.params:
        return float(ctx.round.params["alpha"])
    params = ctx.params
    if ctx.round.index == 1:
        return float(params.get("alpha0", CurriculumConfig().alpha0))
    previous = Round.objects.filter(experiment=ctx.experiment, index=ctx.round.index - 1).first()
    if previous is not None and "next_alpha" in previous.params:
        return float(previous.params["next_alpha"])
    config = CurriculumConfig(
        alpha0=float(params.get("alpha0", 0.3)),
        delta=float(params.get("delta", 0.2)),
        rounds=max(int(params.get("rounds", 1)), ctx.round.index),
    )
    return hard_share(ctx.round.index - 1, config)


class SelectSeedsStage(StageKind):
    """Draw n = seeds_per_round seeds, round(α_r·n) hard and the rest easy (a side that runs short gives
    what it has; the shortfall goes into round.metrics), after the reviewers: a rejected verdict leaves
    the item out, a flipped one moves it to the other side. The seeds are stored as SeedSelection rows
    and join the round's train pool."""

    name = "select_seeds"

    def start(self, ctx: Context) -> None:
        threshold, rule = hard_rule(ctx.params)
        cut = strict_threshold(threshold, rule)
        alpha = round_alpha(ctx)
        n = int(ctx.params.get("seeds_per_round", 1000))
        verdicts = effective_verdicts(ctx)  # instruction -> hard | easy, reviewers' decisions applied
        gaps = dict(_judgments(ctx).filter(instruction_id__in=list(verdicts)).values_list("instruction_id", "gap"))
        ids = sorted(verdicts)
        mfd = []
        for pk in ids:
            gap = gaps[pk]
            if (verdicts[pk] == "hard") != (gap > cut):  # a reviewer flipped it: the value goes to that side
                gap = math.nextafter(cut, math.inf) if verdicts[pk] == "hard" else cut
            mfd.append(gap)
        invalid = _judgments(ctx).count() - len(ids)
        picked = select_seeds(mfd, n, alpha, hard_threshold=cut, seed=int(ctx.rng().integers(2**32)))
        hard = set(picked.indices[: picked.hard])
        SeedSelection.objects.bulk_create(
            [
                SeedSelection(round=ctx.round, instruction_id=ids[i], mfd=gaps[ids[i]], hard=i in hard, alpha=alpha)
                for i in picked.indices
            ],
            ignore_conflicts=True,
        )
        PoolMember.objects.bulk_create(
            [
                PoolMember(
                    experiment=ctx.experiment,
                    pool=PoolMember.Pool.TRAIN,
                    instruction_id=ids[i],
                    joined_round=ctx.round.index,
                )
                for i in picked.indices
            ],
            ignore_conflicts=True,
        )
        ctx.round.params = {**ctx.round.params, "alpha": alpha}
        ctx.round.metrics = {
            **ctx.round.metrics,
            "selection": {
                "alpha": alpha,
                "n": n,
                "hard_rule": rule,
                "hard_threshold": threshold,
                "hard": picked.hard,
                "easy": picked.easy,
                "hard_short": picked.hard_short,
                "easy_short": picked.easy_short,
                "hard_available": sum(d > cut for d in mfd),
                "easy_available": sum(d <= cut for d in mfd),
                "invalid": invalid + picked.skipped_invalid,
            },
        }
        ctx.round.save(update_fields=["params", "metrics", "updated_at"])
        ctx.run.total = ctx.run.done = len(picked.indices)

    def finalize(self, ctx: Context) -> Outcome:
        if not ctx.run.total:
            raise StageError("No judged instruction could be selected as a seed (every judgement was invalid).")
        return Outcome(done=True)


class NextAlphaStage(StageKind):
    """α_{r+1} = min(1, α_r + δ), stored in this round's params for the next round to take."""

    name = "next_alpha"

    def finalize(self, ctx: Context) -> Outcome:
        alpha = round_alpha(ctx)
        following = next_alpha(alpha, float(ctx.params.get("delta", CurriculumConfig().delta)))
        ctx.round.params = {**ctx.round.params, "alpha": alpha, "next_alpha": following}
        ctx.round.save(update_fields=["params", "updated_at"])
        ctx.run.total = ctx.run.done = 1
        return Outcome(done=True)
