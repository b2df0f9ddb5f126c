"""Reads for training: job status, metric curves (downsampled for long runs), artifacts, generated texts."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Avg, Count, F, Max, Min

from apps.core.errors import RetortError
from apps.training.models import (
    Artifact,
    GenerationItem,
    GenerationJob,
    JobStatus,
    MergeJob,
    TrainingJob,
    TrainingMetric,
)

# What a round's student answers with: the trained adapter or weights (a merged model computes the same as
# its adapter, so it is listed in the registry but never picked as the round's checkpoint).
MODEL_KINDS = (Artifact.Kind.ADAPTER, Artifact.Kind.WEIGHTS)
REGISTRY_KINDS = (*MODEL_KINDS, Artifact.Kind.MERGED)


def training_job_for_round(*, round_id: int) -> TrainingJob | None:
    """The round's newest training job (the active or succeeded one when there is one)."""
    return TrainingJob.objects.filter(round_id=round_id).order_by("-id").first()


def training_job_status(*, job_id: int) -> dict:
    """What the engine and the pages need to know of a job, in one small read."""
    job = TrainingJob.objects.get(pk=job_id)
    latest = training_metric_latest(job_id=job_id)
    return {
        "id": job.pk,
        "round_id": job.round_id,
        "status": job.status,
        "is_finished": job.is_finished,
        "steps": job.steps,
        "attempts": job.attempts,
        "heartbeat_at": job.heartbeat_at,
        "exit_code": job.exit_code,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "loss": latest.get("loss", (None, None))[1],
        "eta_s": latest.get("eta_s", (None, None))[1],
    }


def training_metric_names(*, job_id: int) -> list[str]:
    return list(TrainingMetric.objects.filter(job_id=job_id).values_list("name", flat=True).distinct().order_by("name"))


def training_metric_latest(*, job_id: int) -> dict[str, tuple[int, float]]:
    """Each metric's value at the last step it was logged: {name: (step, value)}. One index probe a name."""
    latest = {}
    for name in training_metric_names(job_id=job_id):
        row = TrainingMetric.objects.filter(job_id=job_id, name=name).order_by("-step").values_list("step", "value")
        latest[name] = row.first()
    return latest


def training_metric_curve(*, job_id: int, name: str, max_points: int = 500) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric in step order. Over `max_points` logged steps, the steps are cut into
    equal buckets and each bucket gives its last step and mean value: a long run's curve costs one grouped
    range scan of the (job, name, step) index and stays the same few hundred points."""
    rows = TrainingMetric.objects.filter(job_id=job_id, name=name)
    span = rows.aggregate(first=Min("step"), last=Max("step"), n=Count("pk"))
    if not span["n"]:
        return []
    if span["n"] <= max_points:
        return list(rows.order_by("step").values_list("step", "value"))
    width = max(1, -(-(span["last"] - span["first"] + 1) // max_points))  # ceiling division
    grouped = (
        rows.annotate(bucket=(F("step") - span["first"]) / width)
        .values("bucket")
        .annotate(at=Max("step"), mean=Avg("value"))
        .order_by("bucket")
    )
    return [(row["at"], row["mean"]) for row in grouped]


def training_metric_table(*, job_id: int, last: int = 20) -> tuple[list[str], list[tuple[int, list]]]:
    """The last `last` logged steps, newest first, as (metric names, [(step, [value per name])])."""
    names = training_metric_names(job_id=job_id)
    steps = list(
        TrainingMetric.objects.filter(job_id=job_id).values_list("step", flat=True).distinct().order_by("-step")[:last]
    )
    values = {
        (s, n): v
        for s, n, v in TrainingMetric.objects.filter(job_id=job_id, step__in=steps).values_list("step", "name", "value")
    }
    return names, [(step, [values.get((step, name)) for name in names]) for step in steps]


def artifact_latest_for_round(*, round_id: int) -> Artifact | None:
    """The round's newest model artifact (adapter or weights): the checkpoint its student answers with."""
    return Artifact.objects.filter(round_id=round_id, kind__in=MODEL_KINDS).order_by("-id").first()


def artifact_registry(*, before: int | None = None, limit: int = 100) -> tuple[list[Artifact], int | None]:
    """Model artifacts (adapters, weights, merged models) newest first, a page at a time by id (keyset),
    and the id to continue before."""
    rows = Artifact.objects.filter(kind__in=REGISTRY_KINDS).select_related("round__experiment", "training_job")
    if before:
        rows = rows.filter(pk__lt=before)
    page = list(rows.order_by("-id")[: limit + 1])
    return page[:limit], (page[limit - 1].pk if len(page) > limit else None)


def artifact_merge_refusal(artifact: Artifact) -> str | None:
    """Why an artifact cannot be merged into a base model, or None when it can (a LoRA adapter that names
    its base)."""
    if artifact.kind == Artifact.Kind.MERGED:
        return "it is already a merged model"
    if artifact.kind == Artifact.Kind.WEIGHTS:
        return "full fine-tuning saved whole weights; only a LoRA adapter is merged into its base"
    if artifact.kind != Artifact.Kind.ADAPTER:
        return f"a {artifact.get_kind_display()} is not a model"
    if not artifact.base_model:
        return "the adapter does not name its base model"
    return None


@dataclass(frozen=True)
class RegistryRow:
    artifact: Artifact
    merge_refusal: str | None  # None: a LoRA adapter that may be merged
    merge: MergeJob | None  # the adapter's newest merge job


def artifact_registry_rows(*, before: int | None = None, limit: int = 100) -> tuple[list[RegistryRow], int | None]:
    """The registry page: each artifact with whether it can be merged and its newest merge (two queries)."""
    artifacts, next_before = artifact_registry(before=before, limit=limit)
    merges: dict[int, MergeJob] = {}
    adapters = [a.pk for a in artifacts if a.kind == Artifact.Kind.ADAPTER]
    for job in MergeJob.objects.filter(adapter_id__in=adapters).order_by("adapter_id", "-id"):
        merges.setdefault(job.adapter_id, job)
    rows = [RegistryRow(a, artifact_merge_refusal(a), merges.get(a.pk)) for a in artifacts]
    return rows, next_before


@dataclass(frozen=True)
class GeneratedText:
    key: str
    text: str
    tokens: int | None


def generation_job_state(*, job_id: int) -> GenerationJob:
    return GenerationJob.objects.get(pk=job_id)


def generation_outputs(*, job_id: int) -> Iterator[GeneratedText]:
    """The answers of a finished generation job, one per prompt key, in the order the prompts were given."""
    job = GenerationJob.objects.get(pk=job_id)
    if job.status != JobStatus.SUCCEEDED:
        raise RetortError(f"Generation job #{job_id} is {job.status}, not succeeded.")
    items = GenerationItem.objects.filter(job_id=job_id).order_by("pk").values_list("key", "text", "tokens")
    for key, text, tokens in items.iterator(chunk_size=2000):
        yield GeneratedText(key, text, tokens)
