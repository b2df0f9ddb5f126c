"""Pages of an experiment. For now its LLM costs; the console and review pages join in their issues."""

from django.shortcuts import get_object_or_404, render

from apps.core.decorators import role_required
from apps.core.roles import Role
from apps.experiments.models import Experiment
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
