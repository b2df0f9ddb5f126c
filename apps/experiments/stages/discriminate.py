"""discriminate: each judged instruction becomes hard, easy or invalid by the config's hard_rule."""

from django.db.models import Count, Q

from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.judging.models import Judgment
from workers.algorithms.discrimination import DiscriminationConfig, Verdict, discriminate, position_bias

HARD_RULES = ("gap >= tau", "gap > tau")


def _pair(j: Judgment):
    tf = (j.teacher_first_teacher_score, j.teacher_first_student_score)
    sf = (j.student_first_student_score, j.student_first_teacher_score)
    return (None if None in tf else tf), (None if None in sf else sf)


class DiscriminateStage(StageKind):
    name = "discriminate"

    def _judgments(self, ctx: Context):
        return Judgment.objects.filter(round=ctx.round, kind=Judgment.Kind.DISCRIMINATION)

    def start(self, ctx: Context) -> None:
        ctx.run.total = self._judgments(ctx).count()

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        qs = self._judgments(ctx).filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)
        return list(qs[:limit])

    def process(self, ctx: Context, ids: list[int]) -> None:
        tau = float(ctx.params.get("tau", 1.0))
        rule = ctx.params.get("hard_rule", "gap >= tau")
        if rule not in HARD_RULES:
            raise ValueError(f"Unknown hard_rule {rule!r}; allowed: {', '.join(HARD_RULES)}.")
        config = DiscriminationConfig(tau=tau)
        rows = list(self._judgments(ctx).filter(pk__in=ids))
        for j in rows:
            result = discriminate(*_pair(j), config)
            j.teacher_score, j.student_score, j.gap = result.teacher_score, result.student_score, result.gap
            j.contested = result.contested
            if result.verdict is Verdict.INVALID:
                j.verdict = Judgment.Verdict.INVALID
            else:
                hard = result.gap >= tau if rule == "gap >= tau" else result.gap > tau
                j.verdict = Judgment.Verdict.HARD if hard else Judgment.Verdict.EASY
        Judgment.objects.bulk_update(rows, ["teacher_score", "student_score", "gap", "contested", "verdict"])
        ctx.run.done += len(rows)
        ctx.run.failed += sum(j.verdict == Judgment.Verdict.INVALID for j in rows)

    def finalize(self, ctx: Context) -> Outcome:
        counts = self._judgments(ctx).aggregate(
            hard=Count("pk", filter=Q(verdict="hard")),
            easy=Count("pk", filter=Q(verdict="easy")),
            invalid=Count("pk", filter=Q(verdict="invalid")),
            contested=Count("pk", filter=Q(contested=True)),
        )
        bias = position_bias(_pair(j) for j in self._judgments(ctx).only(*_SCORE_FIELDS).iterator(2000))
        counts["first_win_rate"] = bias.first_win_rate
        counts["position_bias_p"] = bias.p_value
        ctx.round.metrics = {**ctx.round.metrics, "discrimination": counts}
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)


_SCORE_FIELDS = (
    "teacher_first_teacher_score",
    "teacher_first_student_score",
    "student_first_student_score",
    "student_first_teacher_score",
)
