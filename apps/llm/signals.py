"""Signals the gateway sends to the apps above it (it imports none of them)."""

from django.dispatch import Signal

# Sent with `experiment_id` and `reason` when the gateway places a hold on an experiment (its budget is
# reached, a request was rejected, the endpoint is unusable). The experiments app, which owns the
# experiment's states, receives it and pauses the experiment; the gateway already stopped sending.
experiment_hold_requested = Signal()

# Sent after the transaction that recorded call outcomes commits, with `experiment_ids`: the experiments
# whose uses those calls serve. The experiments app wakes their stages, so no stage polls the ledger.
llm_calls_settled = Signal()
