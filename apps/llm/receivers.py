"""Signals from lower apps that the gateway acts on (connected in apps.py)."""

from django.contrib.contenttypes.models import ContentType

from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.services import llm_calls_resample
from apps.reviews.kinds import Decision, Kind
from apps.reviews.models import ReviewTask


def on_review_tasks_done(sender, *, task_ids, kinds, **kwargs) -> None:
    """Unparsable replies a reviewer chose to retry (sent after commit): ask for each call once more."""
    if Kind.INVALID_REPLY not in kinds:
        return
    tasks = ReviewTask.objects.filter(pk__in=list(task_ids), kind=Kind.INVALID_REPLY, decision=Decision.RETRY)
    by_type: dict[int, list[int]] = {}
    for type_id, subject_id in tasks.values_list("subject_type_id", "subject_id"):
        by_type.setdefault(type_id, []).append(subject_id)
    uses, calls = ContentType.objects.get_for_model(LLMCallUse), ContentType.objects.get_for_model(LLMCall)
    call_ids = set(by_type.get(calls.pk, []))
    call_ids |= set(LLMCallUse.objects.filter(pk__in=by_type.get(uses.pk, [])).values_list("call_id", flat=True))
    if call_ids:
        llm_calls_resample(call_ids=sorted(call_ids))
