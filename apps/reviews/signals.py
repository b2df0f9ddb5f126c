"""Signals the reviews app sends to the apps above it (it imports none of them)."""

from django.dispatch import Signal

# Sent after the transaction that settled them commits, with `task_ids`, `round_ids` (the rounds of those
# tasks, without None) and `kinds` (their review kinds): tasks whose resolution is now final (agreeing
# votes, an operator's resolution of a conflict, or auto-approve). The experiments app wakes the rounds'
# experiments, so a gate moves on when its last task is decided; the gateway re-sends the calls of
# unparsable replies a reviewer chose to retry.
review_tasks_done = Signal()
