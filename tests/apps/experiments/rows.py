"""Everything an experiment's rounds wrote, by content: comparable across two experiments (ids, times and
request hashes, which name the endpoint, are left out; an instruction is its text, a round its index).
Two runs of one config that decided the same things give equal results."""

from django.contrib.contenttypes.models import ContentType
from django.db import models

from apps.datasets.models import Instruction
from apps.experiments.models import (
    Evaluation,
    EvaluationCategory,
    Lineage,
    PoolMember,
    Round,
    SeedSelection,
    Snapshot,
    SnapshotItem,
    StageRun,
    TaskLabel,
)
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.models import ReviewTask, ReviewVerdict

SKIP = {"id", "cursor", "state", "request_hash", "owner", "lease_expires_at", "attempts", "error", "subject_id"}


def _clean(value):
    """JSON without the ids it may carry (a training job's, a call's)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in sorted(value.items()) if not (k == "id" or k.endswith(("_id", "job")))}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _subject(task: ReviewTask):
    subject = task.subject
    if isinstance(subject, Instruction):
        return subject.text
    if isinstance(subject, LLMCall):
        return subject.request.get("messages")
    return _related(getattr(subject, "instruction", None)), getattr(subject, "role", "")


def _related(target):
    if target is None or isinstance(target, Instruction):
        return target and target.text
    if isinstance(target, Round):
        return target.index
    if isinstance(target, Response):
        return target.role, target.text
    if isinstance(target, ContentType):
        return target.model
    if isinstance(target, (Snapshot, ReviewTask, Evaluation)):
        return row(target)
    return type(target).__name__  # an experiment, endpoint, call, user: ids that differ between runs


def row(obj) -> tuple:
    out = []
    for field in obj._meta.concrete_fields:
        if field.name in SKIP or isinstance(field, models.DateTimeField):
            continue
        value = _related(getattr(obj, field.name)) if field.is_relation else _clean(getattr(obj, field.attname))
        out.append((field.name, value))
    if isinstance(obj, ReviewTask):
        out.append(("subject", _subject(obj)))
    return tuple(out)


def experiment_rows(experiment) -> dict:
    """Per model, the sorted rows of the experiment; plus how many ledger calls and uses it has."""
    where = {
        Round: {"experiment": experiment},
        StageRun: {"round__experiment": experiment},
        Judgment: {"round__experiment": experiment},
        Response: {"round__experiment": experiment},
        Lineage: {"experiment": experiment},
        PoolMember: {"experiment": experiment},
        SeedSelection: {"round__experiment": experiment},
        TaskLabel: {"experiment": experiment},
        Snapshot: {"round__experiment": experiment},
        SnapshotItem: {"snapshot__round__experiment": experiment},
        ReviewTask: {"round__experiment": experiment},
        ReviewVerdict: {"task__round__experiment": experiment},
        Evaluation: {"experiment": experiment},
        EvaluationCategory: {"evaluation__experiment": experiment},
    }
    result = {model.__name__: sorted(map(row, model.objects.filter(**w)), key=repr) for model, w in where.items()}
    result["calls"] = LLMCall.objects.filter(uses__experiment=experiment).distinct().count()
    result["uses"] = LLMCallUse.objects.filter(experiment=experiment).count()
    return result
