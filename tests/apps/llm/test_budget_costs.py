"""Budgets pause a stage before they would be exceeded; roll-ups and estimates per stage and experiment."""

from decimal import Decimal

import pytest

from apps.experiments.models import Experiment, Round
from apps.experiments.services import experiment_resume
from apps.llm.models import LLMCall
from apps.llm.selectors import (
    cost_rollup_by_round,
    cost_rollup_by_stage,
    cost_rollup_experiment,
    estimate_pending,
    estimate_requests,
    experiment_budget_status,
    experiment_spend,
)
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import drain, judge_requests, make_endpoint, make_experiment, teacher_requests
from workers.llm import tokens

pytestmark = pytest.mark.django_db
PRICES = {"price_input_per_mtok": Decimal("1000"), "price_output_per_mtok": Decimal("3000")}


def test_a_money_budget_pauses_the_stage_before_it_is_exceeded(llm_server):
    endpoint = make_endpoint(llm_server, max_concurrency=4, **PRICES)
    requests = teacher_requests(endpoint, 40, params={"max_tokens": 60})
    experiment = make_experiment(budget_usd=Decimal("1.50"))
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=experiment.pk, stage="answer", kick=False
    )
    summary = drain(endpoint)
    experiment.refresh_from_db()
    spent = experiment_spend(experiment_id=experiment.pk)
    assert experiment.status == Experiment.Status.PAUSED
    assert experiment.status_reason.startswith("Paused stage 'answer'. Budget reached")
    assert 0 < spent.usd <= Decimal("1.50")
    assert 0 < summary.ok < 40
    assert LLMCall.objects.filter(status=LLMCall.Status.PENDING).count() == 40 - summary.sent
    # Raising the budget and resuming sends the rest, and only the rest.
    Experiment.objects.filter(pk=experiment.pk).update(budget_usd=Decimal("100"))
    experiment_resume(experiment_id=experiment.pk)
    assert drain(endpoint).sent == 40 - summary.sent


def test_a_token_budget_counts_prompt_and_reply_tokens(llm_server):
    endpoint = make_endpoint(llm_server)
    experiment = make_experiment(budget_tokens=2_000)
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 50, params={"max_tokens": 100}),
        purpose="teacher",
        experiment_id=experiment.pk,
        kick=False,
    )
    drain(endpoint)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.PAUSED and "Token budget reached" in experiment.status_reason
    assert 0 < experiment_spend(experiment_id=experiment.pk).tokens <= 2_000


def test_without_a_budget_nothing_is_held_back(llm_server):
    endpoint = make_endpoint(llm_server, **PRICES)
    experiment = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 20),
        purpose="teacher",
        experiment_id=experiment.pk,
        kick=False,
    )
    assert drain(endpoint).ok == 20


def test_roll_ups_per_stage_round_and_experiment_add_up(llm_server):
    teacher = make_endpoint(llm_server, **PRICES)
    judge = make_endpoint(llm_server, model="judge-a", price_input_per_mtok=Decimal("500"))
    experiment = make_experiment()
    round_0 = Round.objects.create(experiment=experiment, index=0)
    round_1 = Round.objects.create(experiment=experiment, index=1)
    for rnd, n in ((round_0, 6), (round_1, 4)):
        llm_calls_enqueue(
            endpoint=teacher,
            requests=teacher_requests(teacher, n, prefix=f"r{rnd.index}"),
            purpose="teacher",
            experiment_id=experiment.pk,
            round_id=rnd.pk,
            stage="answer",
            kick=False,
        )
        llm_calls_enqueue(
            endpoint=judge,
            requests=judge_requests(judge, n, prefix=f"r{rnd.index}"),
            purpose="judge",
            experiment_id=experiment.pk,
            round_id=rnd.pk,
            stage="judge",
            kick=False,
        )
    drain(teacher)
    drain(judge)
    stages = cost_rollup_by_stage(experiment_id=experiment.pk)
    assert [(r["round__index"], r["stage"], r["calls"], r["ok"]) for r in stages] == [
        (0, "answer", 6, 6),
        (0, "judge", 6, 6),
        (1, "answer", 4, 4),
        (1, "judge", 4, 4),
    ]
    total = cost_rollup_experiment(experiment_id=experiment.pk)
    assert (
        total["cost"]
        == sum(r["cost"] for r in stages)
        == sum(r["cost"] for r in cost_rollup_by_round(experiment_id=experiment.pk))
    )
    assert total["cost"] == sum(LLMCall.objects.values_list("cost", flat=True)) > 0
    assert total["tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in stages)


def test_a_stage_is_estimated_before_it_starts(llm_server):
    endpoint = make_endpoint(llm_server, **PRICES)
    experiment = make_experiment(budget_usd=Decimal("1000"))
    requests = teacher_requests(endpoint, 12, params={"max_tokens": 80})
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=experiment.pk, stage="answer", kick=False
    )
    [pending] = estimate_pending(experiment_id=experiment.pk, stage="answer")
    est = pending["estimate"]
    assert (est.calls, est.max_completion_tokens, est.expected_completion_tokens) == (12, 960, 480)
    assert est.prompt_tokens == sum(tokens.prompt_tokens(r.messages) for r in requests)
    assert est.max_cost == (est.prompt_tokens * Decimal(1000) + 960 * Decimal(3000)) / 1_000_000
    assert est.expected_cost < est.max_cost and est.completion_basis == "half the limit"
    assert est.method in ("approximation",) or est.method.startswith("tiktoken:")
    status = experiment_budget_status(
        experiment_id=experiment.pk, budget_usd=experiment.budget_usd, budget_tokens=experiment.budget_tokens
    )
    assert status.pending_max_usd == est.max_cost and status.spent.usd == 0

    drain(endpoint)  # now there is history: later estimates use the mean reply length seen
    later = estimate_requests(
        teacher_requests(endpoint, 3, prefix="new", params={"max_tokens": 80}), endpoint, purpose="teacher"
    )
    mean = sum(LLMCall.objects.values_list("completion_tokens", flat=True)) / 12
    assert later.completion_basis == "history"
    assert later.expected_completion_tokens == 3 * int(-(-min(80, mean) // 1))
    assert estimate_pending(experiment_id=experiment.pk) == []
