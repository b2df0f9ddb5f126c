from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.htmx import stop_polling
from apps.core.roles import Role
from apps.datasets.forms import ImportForm, InstructionFilterForm
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.selectors import (
    dataset_category_counts,
    dataset_id_range,
    dataset_list,
    import_job_progress,
    import_job_recent,
    instruction_filter,
    instruction_page,
)
from apps.datasets.services import import_job_create


@role_required(Role.VIEWER)
def dataset_index(request):
    return render(request, "datasets/list.html", {"datasets": dataset_list()})


@role_required(Role.VIEWER)
def dataset_detail(request, pk: int):
    dataset = get_object_or_404(Dataset, pk=pk)
    form = InstructionFilterForm(request.GET)
    counts = dataset_category_counts(dataset)
    context = {
        "dataset": dataset,
        "form": form,
        "categories": counts,
        "uncategorised": max(dataset.size - sum(n for _, n in counts), 0),
    }
    status = 200
    if form.is_valid():
        f = form.cleaned_data
        qs = instruction_filter(
            dataset=dataset, q=f["q"], category=f["category"], origin=f["origin"], reference=f["reference"]
        )
        id_range = dataset_id_range(dataset.pk)
        context["page"] = instruction_page(qs, id_range=id_range, after=f["after"], before=f["before"])
        only_category = f["category"] and not (f["q"] or f["origin"] or f["reference"])
        context["category_count"] = dict(counts).get(f["category"], 0) if only_category else None
        params = request.GET.copy()
        for cursor in ("after", "before"):
            params.pop(cursor, None)
        context["query"] = params.urlencode()
    elif not request.htmx:
        status = 400  # the errors are shown above the table; htmx swaps only a 2xx, so its partial gets 200
    template = "datasets/detail.html#instruction-rows" if request.htmx else "datasets/detail.html"
    return render(request, template, context, status=status)


@role_required(Role.VIEWER)
def instruction_detail(request, pk: int, instruction_pk: int):
    instruction = get_object_or_404(
        Instruction.objects.select_related("dataset", "parent"), pk=instruction_pk, dataset_id=pk
    )
    return render(request, "datasets/instruction.html", {"instruction": instruction})


@role_required(Role.OPERATOR)
def import_start(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                uploaded_file=form.cleaned_data["file"],
                dataset_name=form.cleaned_data["dataset_name"],
                fmt=form.cleaned_data["format"],
                skip_invalid=form.cleaned_data["skip_invalid"],
                license=form.cleaned_data["license"],
                user=request.user,
            )
        except RetortError as exc:
            form.add_error(None, str(exc))
        else:
            # Both lead to the job's own page, which can be bookmarked and polls while the job runs.
            if request.htmx:
                return HttpResponseClientRedirect(reverse("datasets:import-job", args=[job.pk]))
            return redirect("datasets:import-job", pk=job.pk)
    template = "datasets/import.html#import-form" if request.htmx else "datasets/import.html"
    return render(request, template, {"form": form, "recent": import_job_recent(limit=10)})


def _job_context(job: ImportJob) -> dict:
    return {"job": job, "progress": import_job_progress(job)}


@role_required(Role.VIEWER)
def import_job_detail(request, pk: int):
    job = get_object_or_404(ImportJob.objects.select_related("dataset"), pk=pk)
    if request.htmx:
        response = render(request, "datasets/import_job.html#job-status", _job_context(job))
        return stop_polling(response) if job.is_finished else response
    return render(request, "datasets/import_job.html", _job_context(job))
