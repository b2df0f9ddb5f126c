"""Pages of an experiment (its LLM costs) and the exports page; the console and review pages join in their issues."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.htmx import stop_polling
from apps.core.roles import Role
from apps.datasets.models import Instruction
from apps.experiments.exports.forms import ExportForm
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.selectors import export_file_path, export_job_recent
from apps.experiments.exports.services import export_start
from apps.experiments.models import Experiment
from apps.experiments.provenance import instruction_provenance
from apps.llm import selectors as llm_selectors


@role_required(Role.VIEWER)
def experiment_costs(request, pk: int):
    experiment = get_object_or_404(Experiment, pk=pk)
    return render(
        request,
        "experiments/costs.html",
        {
            "experiment": experiment,
            "total": llm_selectors.cost_rollup_experiment(experiment_id=pk),
            "by_round": llm_selectors.cost_rollup_by_round(experiment_id=pk),
            "by_stage": llm_selectors.cost_rollup_by_stage(experiment_id=pk),
            "budget": llm_selectors.experiment_budget_status(
                experiment_id=pk, budget_usd=experiment.budget_usd, budget_tokens=experiment.budget_tokens
            ),
            "estimates": llm_selectors.estimate_pending(experiment_id=pk),
            "problems": llm_selectors.call_problems(experiment_id=pk, limit=50),
        },
    )


# --- exports ---------------------------------------------------------------------------------------------
def _exports_context(form) -> dict:
    jobs = export_job_recent(limit=25)
    return {"form": form, "jobs": jobs, "active": any(not job.is_finished for job in jobs)}


@role_required(Role.VIEWER)
def exports_page(request):
    """Start an export (POST, then to the job's page) and list recent ones; the list polls while any runs."""
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = export_start(by=request.user, **form.service_kwargs())
        except RetortError as exc:
            form.add_error(exc.details.get("field") if exc.details.get("field") in form.fields else None, str(exc))
        else:
            if request.htmx:
                return HttpResponseClientRedirect(reverse("experiments:export-job", args=[job.pk]))
            return redirect("experiments:export-job", pk=job.pk)
    context = _exports_context(form)
    if request.htmx and request.method == "GET":
        response = render(request, "experiments/exports.html#export-jobs", context)
        return response if context["active"] else stop_polling(response)
    return render(request, "experiments/exports.html", context)


@role_required(Role.VIEWER)
def export_job_detail(request, pk: int):
    job = get_object_or_404(ExportJob.objects.select_related("dataset", "round__experiment"), pk=pk)
    if request.htmx:
        response = render(request, "experiments/exports_job.html#export-status", {"job": job})
        return stop_polling(response) if job.is_finished else response
    return render(request, "experiments/exports_job.html", {"job": job})


@role_required(Role.VIEWER)
def export_download(request, pk: int, name: str):
    """One of the job's files, streamed. `name` only picks among the files the job lists."""
    job = get_object_or_404(ExportJob, pk=pk)
    path = export_file_path(job, name)
    if path is None:
        raise Http404("This export has no such file (or it has not finished).")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"export-{job.pk}-{path.name}")


@role_required(Role.VIEWER)
def instruction_provenance_page(request, pk: int):
    """Where an instruction came from, who or what judged it, who approved it."""
    try:
        provenance = instruction_provenance(instruction_id=pk)
    except Instruction.DoesNotExist:
        raise Http404(f"No instruction #{pk}.") from None
    return render(request, "experiments/provenance.html", {"p": provenance, "instruction": provenance.instruction})
