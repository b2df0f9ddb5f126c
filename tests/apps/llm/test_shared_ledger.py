"""One paid call, many uses: experiments that ask for the same request share the call but keep their own
progress, spend, costs saved, reviews and pauses; the cache key holds the endpoint's identity."""

from decimal import Decimal

import pytest

from apps.experiments.models import Experiment, Round
from apps.experiments.services import experiment_hold
from apps.llm import kick, tasks
from apps.llm.models import LLMCall, LLMCallUse, LLMHold
from apps.llm.selectors import cost_rollup_by_stage, cost_rollup_experiment, experiment_saved, experiment_spend
from apps.llm.services import llm_calls_enqueue
from apps.reviews.models import ReviewTask
from tests.apps.llm.conftest import drain, judge_requests, make_endpoint, make_experiment, teacher_requests

pytestmark = pytest.mark.django_db
PRICES = {"price_input_per_mtok": Decimal("1000"), "price_output_per_mtok": Decimal("3000")}


def _enqueue(endpoint, requests, experiment, stage="answer", **kw):
    items = [f"instruction:{i}:teacher" for i in range(len(requests))]
    return llm_calls_enqueue(
        endpoint=endpoint,
        requests=requests,
        purpose="teacher",
        experiment_id=experiment.pk,
        stage=stage,
        items=items,
        kick=False,
        **kw,
    )


def test_a_second_experiment_pays_nothing_and_keeps_its_own_figures(llm_server):
    endpoint = make_endpoint(llm_server, **PRICES)
    first, second = make_experiment(), make_experiment()
    requests = teacher_requests(endpoint, 5)
    mine = _enqueue(endpoint, requests, first)
    drain(endpoint)
    theirs = _enqueue(endpoint, requests, second)
    _enqueue(endpoint, requests, second)  # asking again for the same items makes no second use
    assert [c.pk for c in theirs] == [c.pk for c in mine] and llm_server.stats().requests == 5
    assert LLMCallUse.objects.filter(experiment=second).count() == 5
    assert LLMCallUse.objects.filter(experiment=first, paid=True).count() == 5
    assert not LLMCallUse.objects.filter(experiment=second, paid=True).exists()

    paid = sum(LLMCall.objects.values_list("cost", flat=True))
    assert paid > 0
    assert experiment_spend(experiment_id=first.pk).usd == paid and experiment_saved(experiment_id=first.pk).usd == 0
    assert experiment_spend(experiment_id=second.pk).usd == 0 and experiment_saved(experiment_id=second.pk).usd == paid
    [row] = cost_rollup_by_stage(experiment_id=second.pk)
    assert (row["stage"], row["calls"], row["ok"], row["cost"], row["saved"], row["from_ledger"]) == (
        "answer",
        5,
        5,
        0,
        paid,
        5,
    )
    assert cost_rollup_experiment(experiment_id=first.pk)["cost"] == paid


def test_a_paused_experiment_does_not_block_anothers_call(llm_server):
    endpoint = make_endpoint(llm_server, **PRICES)
    first, second = make_experiment(), make_experiment()
    requests = teacher_requests(endpoint, 4)
    _enqueue(endpoint, requests, first)
    _enqueue(endpoint, requests[:2], second)  # shares two of the first's pending calls
    experiment_hold(experiment_id=first.pk, reason="Paused by an operator.")

    summary = drain(endpoint)
    assert summary.sent == 2 and llm_server.stats().requests == 2  # only what the second also asked for
    assert LLMCall.objects.filter(status=LLMCall.Status.PENDING).count() == 2
    # Charged to the experiment that was not held.
    assert set(LLMCallUse.objects.filter(paid=True).values_list("experiment_id", flat=True)) == {second.pk}
    assert experiment_spend(experiment_id=first.pk).usd == 0 < experiment_spend(experiment_id=second.pk).usd
    first.refresh_from_db()
    assert first.status == Experiment.Status.PAUSED


def test_the_budget_gate_charges_an_experiment_that_can_afford_the_call(llm_server):
    endpoint = make_endpoint(llm_server, **PRICES)
    broke, funded = make_experiment(budget_usd=Decimal("0.0001")), make_experiment(budget_usd=Decimal("100"))
    requests = teacher_requests(endpoint, 3, params={"max_tokens": 60})
    _enqueue(endpoint, requests, broke)
    _enqueue(endpoint, requests, funded)
    assert drain(endpoint).ok == 3
    assert set(LLMCallUse.objects.filter(paid=True).values_list("experiment_id", flat=True)) == {funded.pk}
    broke.refresh_from_db()
    assert broke.status == Experiment.Status.RUNNING and not LLMHold.objects.exists()


def test_a_call_no_experiment_uses_is_sent_even_while_others_are_held(llm_server):
    endpoint = make_endpoint(llm_server)
    held = make_experiment()
    _enqueue(endpoint, teacher_requests(endpoint, 2), held)
    experiment_hold(experiment_id=held.pk, reason="Paused.")
    llm_calls_enqueue(
        endpoint=endpoint, requests=teacher_requests(endpoint, 3, prefix="script"), purpose="x", kick=False
    )
    assert drain(endpoint).sent == 3


def test_invalid_replies_are_reviewed_per_experiment_in_its_own_round(llm_server):
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=1.0)
    first, second = make_experiment(), make_experiment()
    round_1, round_2 = Round.objects.create(experiment=first, index=1), Round.objects.create(experiment=second, index=2)
    requests = judge_requests(endpoint, 2)
    for experiment, rnd in ((first, round_1), (second, round_2)):
        llm_calls_enqueue(
            endpoint=endpoint,
            requests=requests,
            purpose="judge",
            experiment_id=experiment.pk,
            round_id=rnd.pk,
            stage="judge",
            items=["q0", "q1"],
            kick=False,
        )
    drain(endpoint)
    assert llm_server.stats().requests == 6  # two items, three samples each, paid once
    tasks_ = ReviewTask.objects.filter(kind=ReviewTask.Kind.INVALID_REPLY)
    by_round = {}
    for task in tasks_:
        by_round.setdefault(task.round_id, set()).add(task.subject.experiment_id)
    assert by_round == {round_1.pk: {first.pk}, round_2.pk: {second.pk}} and tasks_.count() == 4

    # An experiment that asks later for the same items gets its own review tasks at once.
    third = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=requests,
        purpose="judge",
        experiment_id=third.pk,
        stage="judge",
        items=["q0", "q1"],
        kick=False,
    )
    assert {t.subject.experiment_id for t in ReviewTask.objects.filter(round=None)} == {third.pk}
    assert llm_server.stats().requests == 6


def test_the_cache_key_holds_the_endpoints_identity(llm_server):
    same_a = make_endpoint(llm_server, model="my-student")
    same_b = make_endpoint(base_url=llm_server.url.replace("http://", "HTTP://") + "/", model="my-student")
    other_url = make_endpoint(base_url=llm_server.url.replace("127.0.0.1", "localhost"), model="my-student")
    round_2 = make_endpoint(llm_server, model="my-student", checkpoint="artifacts/round-2/adapter")
    calls = {}
    for endpoint in (same_a, same_b, other_url, round_2):
        request = teacher_requests(endpoint, 1)[0]
        [calls[endpoint.pk]] = llm_calls_enqueue(endpoint=endpoint, requests=[request], purpose="student", kick=False)
    # Same server and model (the URL spelled differently): one call. Another server or checkpoint: its own.
    assert calls[same_a.pk].pk == calls[same_b.pk].pk
    assert len({calls[same_a.pk].pk, calls[other_url.pk].pk, calls[round_2.pk].pk}) == 3
    for endpoint in (same_a, other_url, round_2):
        drain(endpoint)
    assert llm_server.stats().requests == 3 and LLMCall.objects.filter(status="ok").count() == 3
    # A request prepared for one endpoint is refused by another of a different identity.
    from apps.core.errors import RetortError

    with pytest.raises(RetortError, match="another server, checkpoint or dataset"):
        llm_calls_enqueue(endpoint=round_2, requests=teacher_requests(same_a, 1), purpose="student", kick=False)


def test_the_kick_names_the_real_task():
    assert tasks.process_pending_calls.name == kick.PROCESS_TASK


def test_the_costs_page_shows_calls_no_experiment_uses(llm_server, client_for):
    from django.urls import reverse

    from apps.core.roles import Role
    from apps.llm.models import LLMEndpoint

    endpoint = make_endpoint(llm_server)
    llm_calls_enqueue(endpoint=endpoint, requests=teacher_requests(endpoint, 3), purpose="script", kick=False)
    drain(endpoint)
    page = client_for(Role.VIEWER).get(reverse("llm:costs")).content.decode()
    assert "No LLM calls yet" not in page and 'data-testid="unused">3 calls' in page
    assert str(LLMEndpoint._meta.verbose_name_plural) == "LLM endpoints"
    assert str(LLMCall._meta.verbose_name) == "LLM call"
