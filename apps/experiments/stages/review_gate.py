"""review_gate: open review tasks for all, none or a seeded sample of a stage's results, and hold the round
until every one is decided (params: gate, review_kind). Each task needs `review.overlap` reviewers (1 unless
the config says more). With the experiment's auto_approve, open tasks are accepted at once (a verdict and
the resolution each), so headless runs go on."""

import math

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from apps.experiments.models import Lineage
from apps.experiments.selectors import gate_open_count
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.experiments.stages.classify import MUST_REVIEW
from apps.judging.models import Judgment, Response
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_tasks_auto_accept

AUTO_REVIEWER = "auto-approve"
DEFAULT_MODE = {"mode": "sample", "fraction": 0.1}


def auto_reviewer():
    """The account auto-approve decisions are recorded under; it cannot log in."""
    user, created = get_user_model().objects.get_or_create(username=AUTO_REVIEWER, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def sample_size(mode: dict, n: int) -> int:
    kind = mode.get("mode", "sample")
    if kind == "all":
        return n
    if kind == "none" or n == 0:
        return 0
    return min(n, max(1, math.ceil(float(mode.get("fraction", 0.1)) * n)))


class ReviewGateStage(StageKind):
    name = "review_gate"

    def _subjects(self, ctx: Context) -> tuple[type, list[tuple[int, int]]]:
        """(model, [(subject id, priority)]) in id order."""
        kind = ctx.run.params["review_kind"]
        if kind == ReviewTask.Kind.VERDICT:
            rows = (
                Judgment.objects.filter(
                    round=ctx.round, kind=Judgment.Kind.DISCRIMINATION, verdict__in=["hard", "easy"]
                )
                .order_by("pk")
                .values_list("pk", "contested")
            )
            return Judgment, [(pk, 2 if contested else 0) for pk, contested in rows]
        if kind == ReviewTask.Kind.GENERATED:
            rows = (
                Lineage.objects.filter(round=ctx.round)
                .order_by("instruction_id")
                .values_list("instruction_id", flat=True)
            )
            from apps.datasets.models import Instruction

            return Instruction, [(pk, 0) for pk in rows]
        if kind in (ReviewTask.Kind.RATIONALE, ReviewTask.Kind.ANSWER):
            from apps.experiments.snapshot_items import review_subjects

            return Response, review_subjects(ctx.round, kind)
        if kind == ReviewTask.Kind.TASK_LABEL:  # TAPIR: the selected seeds' effective labels
            from apps.experiments.models import TaskLabel
            from apps.experiments.stages.classify import label_subjects

            return TaskLabel, label_subjects(ctx)
        if kind == ReviewTask.Kind.REWRITE:  # TAPIR: the round's styled answers
            rows = Response.objects.filter(round=ctx.round, role__in=["rewrite", "teacher"]).exclude(style="")
            return Response, [(pk, 0) for pk in rows.order_by("pk").values_list("pk", flat=True)]
        raise ValueError(f"review_gate cannot review {kind!r} yet")

    def _open(self, ctx: Context) -> None:
        model, subjects = self._subjects(ctx)
        mode = ctx.config.get("review", {}).get(ctx.run.params["gate"], DEFAULT_MODE)
        k = sample_size(mode, len(subjects))
        if k < len(subjects):
            chosen = sorted(ctx.rng().choice(len(subjects), size=k, replace=False).tolist())
            # Subjects a stage marked as needing a person (priority >= MUST_REVIEW) open whatever the mode.
            chosen = sorted(set(chosen) | {i for i, (_, p) in enumerate(subjects) if p >= MUST_REVIEW})
            subjects = [subjects[i] for i in chosen]
        content_type = ContentType.objects.get_for_model(model)
        overlap = int(ctx.config.get("review", {}).get("overlap", 1))
        tasks = [
            ReviewTask(
                kind=ctx.run.params["review_kind"],
                round=ctx.round,
                subject_type=content_type,
                subject_id=pk,
                priority=priority,
                required_reviews=overlap,
            )
            for pk, priority in subjects
        ]
        ReviewTask.objects.bulk_create(tasks, batch_size=1000, ignore_conflicts=True)
        ctx.run.state = {**ctx.run.state, "opened": True, "of": len(self._subjects(ctx)[1])}
        ctx.run.total = len(tasks)

    def _auto_approve(self, ctx: Context) -> None:
        open_tasks = (
            ReviewTask.objects.filter(round=ctx.round, kind=ctx.run.params["review_kind"])
            .exclude(status=ReviewTask.Status.DONE)
            .values_list("pk", flat=True)
        )
        review_tasks_auto_accept(task_ids=list(open_tasks), reviewer=auto_reviewer(), note="accepted by auto-approve")

    def finalize(self, ctx: Context) -> Outcome:
        if not ctx.run.state.get("opened"):
            self._open(ctx)
        if ctx.experiment.auto_approve:
            self._auto_approve(ctx)
        left = gate_open_count(round_id=ctx.round.pk, kind=ctx.run.params["review_kind"])
        ctx.run.done = ctx.run.total - left
        if left:
            return Outcome(wait="review", more=False)
        return Outcome(done=True)
