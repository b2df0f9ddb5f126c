"""A real Celery worker (`celery -A config worker -Q llm`) is killed with SIGKILL in the middle of a batch;
another one starts and finishes it: no item is lost and no call that was recorded as finished is sent
again. Only calls in flight at the instant of the kill can be sent twice (their answers never reached
the ledger)."""

from pathlib import Path

import pytest

from apps.llm.models import LLMCall
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import make_endpoint, make_experiment, teacher_requests
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
N = 1500


def _finished() -> int:
    return LLMCall.objects.exclude(status=LLMCall.Status.PENDING).count()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# The client runs in the worker's own interpreter ("thread") or in a child process of it ("process").
@pytest.mark.parametrize("client_mode", ["thread", "process"])
def test_a_worker_killed_mid_batch_is_finished_by_the_next_without_repeats(llm_server, tmp_path, client_mode):
    llm_server.configure(latency_s=0.05)
    endpoint = make_endpoint(llm_server, max_concurrency=8)
    env = {
        "RETORT_LLM_LEASE_S": 2,
        "RETORT_LLM_RETRY_BASE_S": 0.01,
        "RETORT_LLM_PROCESS_THRESHOLD": -1 if client_mode == "thread" else 0,
    }
    first = WorkerProcess(tmp_path, queues="llm", **env).wait_ready()
    try:
        llm_calls_enqueue(
            endpoint=endpoint,
            requests=teacher_requests(endpoint, N),
            purpose="teacher",
            experiment_id=make_experiment().pk,
            stage="answer",
        )  # kicks the worker on commit
        wait_for(lambda: _finished() >= 200, 60, "the first worker to make progress", first)
        clients = _children(first.proc.pid)
        assert bool(clients) == (client_mode == "process")
        first.kill()
        # A client process notices its worker is gone and stops sending.
        wait_for(lambda: not any(_alive(pid) for pid in clients), 15, "the client process to exit")
    finally:
        first.stop()
    killed_at = llm_server.stats().events[-1][0]
    done_before = set(LLMCall.objects.exclude(status=LLMCall.Status.PENDING).values_list("request_hash", flat=True))
    assert 200 <= len(done_before) < N

    second = WorkerProcess(tmp_path, queues="llm", **env).wait_ready()  # resumes pending calls as it starts
    try:
        wait_for(lambda: _finished() == N, 120, "the second worker to finish the batch", second)
    finally:
        second.stop()

    assert LLMCall.objects.count() == N
    assert set(LLMCall.objects.values_list("status", flat=True)) == {LLMCall.Status.OK}
    events = llm_server.stats().events
    sent_after = [h for t, h, _ in events if t > killed_at]
    assert sent_after and not set(sent_after) & done_before  # nothing finished was sent again
    repeats = {h for h in {h for _, h, _ in events} if sum(1 for _, x, _ in events if x == h) > 1}
    print(f"\nfinished before the kill: {len(done_before)}; sent after: {len(sent_after)}; sent twice: {len(repeats)}")
    assert len(repeats) <= endpoint.max_concurrency * 4  # at most the calls in flight at the kill
