"""The new-experiment page (operators): a config, the demos one click away, an estimate, create and start."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from apps.console.demos import demo_config, demo_configs
from apps.console.forms import NewExperimentForm, check_new_experiment, estimate_totals
from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.roles import Role
from apps.experiments.config import ConfigError
from apps.experiments.estimates import estimate_round_one
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_create, experiment_start


def _render(request, form, **context):
    template = "console/_new_form.html" if request.htmx else "console/experiment_new.html"
    return render(request, template, {"form": form, "demos": demo_configs(), **context})


@role_required(Role.OPERATOR)
def experiment_new(request):
    if request.method != "POST":
        demo = demo_config(request.GET.get("demo", ""))
        form = NewExperimentForm(initial={"config": demo.text()} if demo else None)
        return _render(request, form, demo=demo)
    form = NewExperimentForm(request.POST)
    form.is_valid()  # every field is optional text: this only fills cleaned_data
    checked = check_new_experiment(form.cleaned_data, refused=form.errors)
    for name, problems in checked.field_errors.items():
        for problem in problems:
            form.add_error(name, problem)
    if not checked.ok:
        return _render(request, form, checked=checked)
    if request.POST.get("action") == "estimate":
        try:
            rows = estimate_round_one(checked.resolved)
        except ValueError as exc:
            checked.problems.append(("config", str(exc)))
            return _render(request, form, checked=checked)
        return _render(request, form, checked=checked, estimate=rows, totals=estimate_totals(rows))
    config = checked.config
    existed = Experiment.objects.filter(name=config.name, config_hash=config.hash).exists()
    try:
        experiment = experiment_create(config=config, by=request.user)
        if form.cleaned_data.get("start"):
            experiment_start(experiment_id=experiment.pk, auto_approve=bool(form.cleaned_data.get("auto_approve")))
    except ConfigError as exc:
        checked.problems.extend(exc.problems)
        return _render(request, form, checked=checked)
    except RetortError as exc:
        clash = Experiment.objects.filter(name=config.name).exclude(config_hash=config.hash).exists()
        if clash and form.cleaned_data.get("name"):
            form.add_error("name", str(exc))
        else:
            checked.problems.append(("name" if clash else "config", str(exc)))
        return _render(request, form, checked=checked)
    if existed:
        messages.info(request, f"Experiment {experiment.name} already exists with this config; nothing changed.")
    else:
        started = " and started" if form.cleaned_data.get("start") else ""
        config_hash = experiment.config_hash[:12]
        messages.success(request, f"Created{started} experiment {experiment.name} (config {config_hash}).")
    url = reverse("console:experiment", args=[experiment.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
