"""Two experiments sharing one LLM endpoint under one rate limit (requests_per_minute, max_concurrency).

An endpoint is one row, whoever names it; one runner at a time holds its lease and sends its calls
through one limiter, so both experiments' calls queue behind the same concurrency slots. The
requests-per-minute bucket, though, lives in the runner: each run used to start with a full bucket, so
every new run (the next stage's calls, the other experiment's, a run on another worker) could send a
fresh burst on top of what the last run had just sent. The test server's reply times say whether the
endpoint as a whole stayed inside a token bucket of its rate: in any span of T seconds, at most the burst
plus rate x T requests (plus one for the edges of the span).
"""

import time

import pytest
from celery import current_app

from apps.llm.kick import PROCESS_TASK
from apps.llm.models import LLMCall
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests
from tests.integration.worker import WorkerProcess, wait_for
from tests.llm_server.server import Faults, ServerThread
from workers.llm.ratelimit import BURST_SECONDS

RPM = 120  # 2 requests a second, a burst of 20
RATE = RPM / 60
BURST = RATE * BURST_SECONDS


def _excess(times: list[float]) -> float:
    """The most requests any span of the replies holds beyond the burst plus the rate over the span."""
    t, n = sorted(times), len(times)
    return max(j - i + 1 - BURST - RATE * (t[j] - t[i]) for i in range(n) for j in range(i, n))


def _replies(server) -> list[float]:
    return [at for at, _, outcome in server.stats().events if outcome == 200]


def _enqueue(endpoint, experiment, n: int, prefix: str) -> None:
    requests = teacher_requests(endpoint, n, prefix=prefix)
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=experiment.pk, stage="answer", kick=False
    )


@pytest.mark.django_db
def test_one_process_two_experiments_one_after_the_other_stay_inside_the_endpoints_rate():
    """Experiment A's calls take the whole burst; B's calls right after, in a new run of the same process,
    wait for the bucket to refill instead of bursting again."""
    with ServerThread() as server:
        endpoint = make_endpoint(server, requests_per_minute=RPM, max_concurrency=8)
        first, second = make_experiment(), make_experiment()
        _enqueue(endpoint, first, int(BURST), "A")
        assert drain(endpoint).ok == int(BURST)
        _enqueue(endpoint, second, 5, "B")
        assert drain(endpoint).ok == 5
        replies = _replies(server)
    assert len(replies) == int(BURST) + 5
    assert _excess(replies) <= 1, f"{_excess(replies):.1f} requests over the endpoint's rate"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_and_two_experiments_stay_inside_one_limit(tmp_path):
    """Both experiments' calls at once, a runner task for each in each of two worker processes (one holds
    the lease, the other finds it taken); then a second wave that only the other worker runs. Across
    both: no more than max_concurrency in flight, and the rate held."""
    env = {"RETORT_LLM_RETRY_BASE_S": "0.01", "RETORT_LLM_RETRY_MAX_S": "0.05"}
    # Each worker has a queue of its own besides llm, so the test can say which one runs a wave.
    workers = [WorkerProcess(tmp_path, queues=f"llm,llm-{n}", **env) for n in (1, 2)]
    try:
        for worker in workers:
            worker.wait_ready()
        with ServerThread(Faults(latency_s=0.3)) as server:
            endpoint = make_endpoint(server, requests_per_minute=RPM, max_concurrency=4)
            experiments = [make_experiment(), make_experiment()]
            for experiment, name in zip(experiments, "AB", strict=True):
                _enqueue(endpoint, experiment, int(BURST) // 2, f"{name} first")
            for n in (1, 2):
                current_app.send_task(PROCESS_TASK, args=(endpoint.pk,), queue=f"llm-{n}")
            settled = LLMCall.objects.filter(endpoint=endpoint, status=LLMCall.Status.OK)
            wait_for(lambda: settled.count() == int(BURST), 60, "the first wave")
            for experiment, name in zip(experiments, "AB", strict=True):
                _enqueue(endpoint, experiment, 4, f"{name} second")
            current_app.send_task(PROCESS_TASK, args=(endpoint.pk,), queue="llm-2")
            wait_for(lambda: settled.count() == int(BURST) + 8, 60, "the second wave", workers[1])
            stats = server.stats()
            replies = _replies(server)
        time.sleep(0.2)  # the runners' lease is given back
    finally:
        for worker in workers:
            worker.stop()
    assert len(replies) == int(BURST) + 8
    assert stats.max_in_flight <= 4, f"{stats.max_in_flight} requests in flight at once"
    assert _excess(replies) <= 1, f"{_excess(replies):.1f} requests over the endpoint's rate"
    print(f"max in flight {stats.max_in_flight}, most over the bucket {_excess(replies):.2f}")


def test_with_the_cache_unreachable_the_pacing_mark_fails_no_run_and_a_new_run_starts_empty():
    from apps.llm import pacing
    from tests.reliability.harness import free_port, this_process_on

    with this_process_on(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        pacing.sending_until(endpoint_id=1, until=0.0)
        assert pacing.idle_seconds(endpoint_id=1) == 0.0
