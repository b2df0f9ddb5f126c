"""REST API of experiments (under /api/v1/experiments/): their LLM costs and evaluations; and an
instruction's provenance (/api/v1/instructions/<id>/provenance/)."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.models import Instruction
from apps.experiments.evaluation import experiment_evaluations
from apps.experiments.models import Experiment
from apps.experiments.provenance import instruction_provenance
from apps.experiments.serializers import ProvenanceSerializer
from apps.llm import selectors as llm_selectors


class ExperimentCostApi(APIView):
    """Spend per round and stage, the budget, and the estimate for calls still queued."""

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        experiment = get_object_or_404(Experiment, pk=pk)
        budget = llm_selectors.experiment_budget_status(
            experiment_id=pk, budget_usd=experiment.budget_usd, budget_tokens=experiment.budget_tokens
        )
        estimates = [
            {
                "endpoint": e["endpoint"].name,
                "purpose": e["purpose"],
                "calls": e["estimate"].calls,
                "prompt_tokens": e["estimate"].prompt_tokens,
                "expected_cost": str(e["estimate"].expected_cost),
                "max_cost": str(e["estimate"].max_cost),
                "max_tokens": e["estimate"].max_tokens,
                "counted_by": e["estimate"].method,
                "replies_estimated_from": e["estimate"].completion_basis,
            }
            for e in llm_selectors.estimate_pending(experiment_id=pk)
        ]

        def rows(items):
            return [{**row, "cost": str(row["cost"]), "saved": str(row["saved"])} for row in items]

        return Response(
            {
                "experiment": pk,
                "status": experiment.status,
                "status_reason": experiment.status_reason,
                "total": rows([llm_selectors.cost_rollup_experiment(experiment_id=pk)])[0],
                "by_round": rows(llm_selectors.cost_rollup_by_round(experiment_id=pk)),
                "by_stage": rows(llm_selectors.cost_rollup_by_stage(experiment_id=pk)),
                "budget": {
                    "usd": str(budget.budget_usd) if budget.budget_usd is not None else None,
                    "tokens": budget.budget_tokens,
                    "spent_usd": str(budget.spent.usd),
                    "spent_tokens": budget.spent.tokens,
                    "saved_usd": str(llm_selectors.experiment_saved(experiment_id=pk).usd),
                    "queued_expected_usd": str(budget.pending_expected_usd),
                    "queued_max_usd": str(budget.pending_max_usd),
                },
                "estimates": estimates,
            }
        )


class ExperimentEvaluationsApi(APIView):
    """Each round's evaluation (win rate with its 95% interval, length-controlled rate, accuracy, regression
    alerts) with its task categories, and each category across rounds: the data of the console's charts."""

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        get_object_or_404(Experiment, pk=pk)
        return Response(experiment_evaluations(experiment_id=pk))


class InstructionProvenanceApi(APIView):
    """Where an instruction came from (lineage: seed, round, hard or easy origin, nearest pool item and its
    ROUGE-L), its answers, its judgments in both orders, the review tasks on it with every vote and the
    resolution, its task labels, pools and the training snapshots it was in (who approved them)."""

    @extend_schema(responses={200: ProvenanceSerializer})
    def get(self, request, pk: int):
        try:
            provenance = instruction_provenance(instruction_id=pk)
        except Instruction.DoesNotExist:
            raise Http404(f"No instruction #{pk}.") from None
        return Response(ProvenanceSerializer(provenance).data)
