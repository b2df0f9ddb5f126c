from pathlib import Path

from django.contrib import messages
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.htmx import stop_polling
from apps.core.roles import Role
from apps.training.models import Artifact, TrainingJob
from apps.training.packaging import artifact_zip_stream, zip_name
from apps.training.selectors import artifact_registry_rows, training_metric_latest, training_metric_table
from apps.training.services import artifact_merge, training_job_cancel
from apps.training.supervisor import log_tail


def _before(request) -> int | None:
    value = request.GET.get("before", "")
    return int(value) if value.isdigit() else None


@role_required(Role.VIEWER)
def artifact_index(request):
    rows, next_before = artifact_registry_rows(before=_before(request))
    return render(request, "training/artifacts.html", {"rows": rows, "next_before": next_before})


@require_POST
@role_required(Role.OPERATOR)
def artifact_merge_view(request, pk: int):
    try:
        job = artifact_merge(artifact_id=pk, by=request.user)
    except RetortError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Artifact #{pk}: merge job #{job.pk} is {job.status}.")
    return redirect("training:artifacts")


@role_required(Role.VIEWER)
def artifact_download(request, pk: int):
    artifact = get_object_or_404(Artifact, pk=pk)
    if not Path(artifact.path).is_dir():
        raise Http404("The artifact's files are not on this server's storage.")
    response = StreamingHttpResponse(artifact_zip_stream(artifact), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{zip_name(artifact)}"'
    return response


@role_required(Role.VIEWER)
def job_index(request):
    rows = TrainingJob.objects.select_related("round__experiment").order_by("-id")
    before = _before(request)
    if before:
        rows = rows.filter(pk__lt=before)
    page = list(rows[:51])
    return render(
        request,
        "training/jobs.html",
        {"jobs": page[:50], "next_before": page[49].pk if len(page) > 50 else None},
    )


def _job_context(job: TrainingJob) -> dict:
    names, table = training_metric_table(job_id=job.pk)
    return {
        "job": job,
        "latest": training_metric_latest(job_id=job.pk),
        "names": names,
        "table": table,
        "log": log_tail(job.log_path, 6000) if job.log_path else "",
        "artifacts": list(job.artifacts.all()),
    }


@role_required(Role.VIEWER)
def job_detail(request, pk: int):
    job = get_object_or_404(TrainingJob.objects.select_related("round__experiment", "snapshot"), pk=pk)
    if request.htmx:
        response = render(request, "training/job.html#job-status", _job_context(job))
        return stop_polling(response) if job.is_finished else response
    return render(request, "training/job.html", _job_context(job))


@require_POST
@role_required(Role.OPERATOR)
def job_cancel(request, pk: int):
    try:
        job = training_job_cancel(job_id=pk, by=request.user)
    except RetortError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Training job #{job.pk}: {'cancelled' if job.is_finished else 'stopping'}.")
    return redirect("training:job", pk=pk)
