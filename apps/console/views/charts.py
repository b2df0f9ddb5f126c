"""Small JSON endpoints the console's charts read (viewer role): a training job's curves and an
experiment's evaluations across rounds. Charts poll the training curve while its job runs."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from apps.core.decorators import role_required
from apps.core.roles import Role
from apps.experiments.evaluation import experiment_evaluations
from apps.experiments.models import Experiment
from apps.training.models import TrainingJob
from apps.training.selectors import training_metric_curve, training_metric_names

MAX_POINTS = 500


def curve_names(names: list[str]) -> list[str]:
    """The curves of the loss chart: every loss the trainer logs (the total, a multitask loss's parts,
    held-out loss) and the learning rate, which the chart draws on its own axis."""
    return [name for name in names if "loss" in name or name == "lr"]


@role_required(Role.VIEWER)
def training_curves(request, pk: int, job_pk: int):
    job = get_object_or_404(TrainingJob.objects.select_related("round"), pk=job_pk, round__experiment_id=pk)
    series = {
        name: [[step, value] for step, value in training_metric_curve(job_id=job.pk, name=name, max_points=MAX_POINTS)]
        for name in curve_names(training_metric_names(job_id=job.pk))
    }
    return JsonResponse(
        {
            "job": job.pk,
            "round": job.round.index,
            "status": job.status,
            "finished": job.is_finished,
            "steps": job.steps,
            "series": series,
        }
    )


@role_required(Role.VIEWER)
def evaluation_data(request, pk: int):
    get_object_or_404(Experiment, pk=pk)
    return JsonResponse(experiment_evaluations(experiment_id=pk))
