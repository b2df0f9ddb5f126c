"""Signals the training app sends to the apps above it (it imports none of them).

Both are sent once the job's final state has committed, with keyword arguments `job_id`, `round_id` and
`status` (succeeded | failed | cancelled). apps.experiments connects them to move the round on.
"""

from django.dispatch import Signal

training_job_finished = Signal()
generation_job_finished = Signal()
