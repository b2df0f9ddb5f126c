"""Wake the runner of an endpoint once the current transaction commits (by task name: see
apps/core/enqueue.py)."""

from apps.core.enqueue import send_on_commit

PROCESS_TASK = "apps.llm.tasks.process_pending_calls"


def kick_endpoint(endpoint_id: int) -> None:
    send_on_commit(PROCESS_TASK, endpoint_id)
