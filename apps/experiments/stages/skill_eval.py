"""skill_eval: Mixture-of-Skills' per-dataset evaluation, after the round trained. For each skill: the
items it trained on, its held-out items, the trained student's held-out loss and perplexity on them (the
trainer measures them on the rows the train stage passed as eval_data_path, per dataset) and the final
sampling probability p_ψ the scorer gave it. Stored in round.metrics["skills"]; "evaluated" is false when the
training job reported no held-out figures (no held-out rows, or a trainer that measured none)."""

from apps.experiments.models import PoolMember, Snapshot
from apps.experiments.snapshot_items import SKILL_PREFIX, skills
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.training.models import Artifact, JobStatus, TrainingJob


class SkillEvalStage(StageKind):
    name = "skill_eval"

    def finalize(self, ctx: Context) -> Outcome:
        job = TrainingJob.objects.filter(round=ctx.round, status=JobStatus.SUCCEEDED).order_by("-id").first()
        artifact = Artifact.objects.filter(training_job=job).order_by("-id").first() if job else None
        meta = (artifact.metadata or {}) if artifact else {}
        measured = meta.get("eval_datasets") or {}
        probabilities = dict(zip(meta.get("mos_datasets") or [], meta.get("mos_p") or [], strict=False))
        snapshot = Snapshot.objects.filter(round=ctx.round).first()
        by_kind = (snapshot.counts or {}).get("by_kind", {}) if snapshot else {}
        heldout = PoolMember.objects.filter(experiment=ctx.experiment, pool=PoolMember.Pool.HELDOUT)
        table = {}
        # Keyed by dataset name; "index" is the skill's place in the sampler (mos_p.<index>), because a
        # JSON object's key order is not kept (PostgreSQL's jsonb sorts keys).
        for index, (name, dataset_id) in enumerate(skills(ctx.experiment)):
            figures = measured.get(name) or {}
            table[name] = {
                "index": index,
                "train": by_kind.get(f"{SKILL_PREFIX}{name}", 0),
                "heldout": heldout.filter(instruction__dataset_id=dataset_id).count(),
                "loss": figures.get("loss"),
                "perplexity": figures.get("perplexity"),
                "p": probabilities.get(name),
            }
        ctx.round.metrics = {
            **ctx.round.metrics,
            "skills": table,
            "evaluated": bool(measured),
            "training_job": job.pk if job else None,
        }
        ctx.round.save(update_fields=["metrics", "updated_at"])
        ctx.run.total = ctx.run.done = len(table)
        return Outcome(done=True)
