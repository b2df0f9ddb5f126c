"""train: the round's student training. Without an approval it waits for the operator (approve-and-train
freezes the snapshot and queues one training job); with auto_approve it approves itself; then it waits for
the job (woken by apps.training's training_job_finished) and fails the round if the job failed."""

from apps.experiments.machine import StageError
from apps.experiments.models import Snapshot
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.training.models import JobStatus, TrainingJob


class TrainStage(StageKind):
    name = "train"

    def finalize(self, ctx: Context) -> Outcome:
        from apps.experiments.training import approve_and_train_locked

        if not Snapshot.objects.filter(round=ctx.round).exists():
            if not ctx.experiment.auto_approve:
                return Outcome(wait="approval", more=False)
            approve_and_train_locked(ctx.experiment, ctx.round, ctx.run, by=None)
        job = TrainingJob.objects.filter(round=ctx.round).order_by("-id").first()
        if job is None:
            raise StageError("The round's snapshot is frozen but no training job was queued.")
        ctx.run.state = {**ctx.run.state, "training_job": job.pk}
        if job.status == JobStatus.SUCCEEDED:
            ctx.run.done = ctx.run.total = 1
            return Outcome(done=True)
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise StageError(f"Training job #{job.pk} {job.status}: {job.error or 'no reason given'}")
        return Outcome(wait="training", more=False)
