"""Two Celery workers on the same stage at once. Both consume every queue (llm, default, gpu), and while
the round runs the test keeps sending the engine's advance task and every endpoint's runner task again
and again (the same stage task delivered many times over, as a redelivery storm or an impatient script
would), so the two workers run the same stage, the same collect step and the same endpoint at the same
moments. The round must end exactly as an undisturbed one (a single worker, each task sent once by the
engine): every row equal by content, one Response / Judgment per item (the tables' unique constraints
would fail the stage otherwise), one ledger row per request hash, and the test server asked for each
hash once, save the calls in flight when one runner's endpoint lease passed to the other."""

import threading
from collections import Counter

import pytest
from celery import current_app

from apps.experiments.services import experiment_create, experiment_start
from apps.experiments.wake import ADVANCE_TASK
from apps.llm.kick import PROCESS_TASK
from apps.llm.models import LLMCall, LLMEndpoint
from tests.apps.experiments.rows import experiment_rows
from tests.integration.test_experiment_kill import WINDOW, Workers, _concurrency, _finished, _lion
from tests.integration.worker import WorkerProcess
from tests.llm_server.server import Faults, ServerThread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RESEND_S = 0.05  # how often the test sends the stage's tasks again


class _Resender(threading.Thread):
    """Sends the experiment's advance and its endpoints' runner tasks every RESEND_S until stopped."""

    def __init__(self, experiment_id: int, endpoint_ids: list[int]):
        super().__init__(daemon=True)
        self.experiment_id, self.endpoint_ids = experiment_id, endpoint_ids
        self.stop, self.sent = threading.Event(), 0

    def run(self) -> None:
        while not self.stop.wait(RESEND_S):
            current_app.send_task(ADVANCE_TASK, args=(self.experiment_id,))
            for endpoint_id in self.endpoint_ids:
                current_app.send_task(PROCESS_TASK, args=(endpoint_id,))
            self.sent += 1 + len(self.endpoint_ids)


def _round(workers: Workers, name: str, *, storm: bool) -> tuple[dict, Counter, int]:
    with ServerThread(Faults(latency_s=0.05)) as server:
        experiment = experiment_create(config=_concurrency(_lion(server, name)))
        endpoints = list(LLMEndpoint.objects.filter(base_url=server.url).values_list("pk", flat=True))
        resender = _Resender(experiment.pk, endpoints)
        experiment_start(experiment_id=experiment.pk, auto_approve=True)
        if storm:
            resender.start()
        try:
            experiment = _finished(experiment.pk, workers)
        finally:
            resender.stop.set()
            if storm:
                resender.join()
        sent = Counter(h for _, h, outcome in server.stats().events if outcome == 200)
        ledger = list(LLMCall.objects.filter(endpoint__base_url=server.url).values_list("request_hash", flat=True))
    assert set(sent) == set(ledger), "every request sent has its ledger row, and every row was sent"
    return experiment_rows(experiment), sent, resender.sent


def test_two_workers_running_the_same_stage_process_each_item_once(tmp_path):
    workers = Workers(tmp_path, tmp_path / "training")
    workers.procs = [WorkerProcess(tmp_path, queues="llm,default,gpu", **workers.env).wait_ready()]
    try:
        reference, reference_sent, _ = _round(workers, "lion-one-worker", storm=False)
        workers.procs.append(WorkerProcess(tmp_path, queues="llm,default,gpu", **workers.env).wait_ready())
        result, sent, resent = _round(workers, "lion-two-workers", storm=True)
    finally:
        workers.stop()
    assert all(n == 1 for n in reference_sent.values())
    for key in reference:
        assert result[key] == reference[key], f"{key} differs when two workers ran each stage"
    assert len(sent) == len(reference_sent)
    again = {h for h, n in sent.items() if n > 1}
    assert len(again) <= WINDOW, f"{len(again)} requests were sent twice"
    assert resent > 20, "the storm sent too few duplicates to overlap the two workers"
    print(f"two workers: {resent} duplicate tasks sent, {len(sent)} requests, {len(again)} sent twice")
