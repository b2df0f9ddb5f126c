"""Wake the runner of an endpoint once the current transaction commits (by task name: see
apps/core/enqueue.py). A wake-up lost to a broker outage is repaired by the sweep a worker runs when it
reconnects (`resume_pending_calls`): the pending calls are in the ledger."""

from apps.core.enqueue import send_on_commit_if_reachable

PROCESS_TASK = "apps.llm.tasks.process_pending_calls"


def kick_endpoint(endpoint_id: int) -> None:
    send_on_commit_if_reachable(PROCESS_TASK, endpoint_id)
