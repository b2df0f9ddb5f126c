"""A round's training data, frozen: the items exactly as they will train (reviewers' edits applied), their
content hash and counts, and the JSONL file the trainer reads."""

import hashlib
from collections import Counter
from pathlib import Path

import orjson

from apps.datasets.models import Instruction
from apps.experiments.models import Round, Snapshot, SnapshotItem
from apps.experiments.selectors import pool_instruction_ids
from apps.judging.models import Response
from workers.llm.prompts import task_text


def _items(round_: Round, params: dict):
    """(instruction, response, kind, prompt, target) in instruction order. Lion: the teacher's answers to
    the round's train pool."""
    source = params.get("source", "train_pool")
    if source == "tapir":  # the styled answers to the round's selected seeds and expansions
        from apps.experiments.recipes.tapir import snapshot_items

        yield from snapshot_items(round_, params)
        return
    if source != "train_pool":  # step-by-step's rationales, MoS's skills
        from apps.experiments.snapshot_items import items_for

        yield from items_for(round_, params)
        return
    ids = pool_instruction_ids(experiment_id=round_.experiment_id, pool="train", round_index=round_.index)
    role = params.get("role", "teacher")
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        instructions = Instruction.objects.in_bulk(chunk)
        answers = {
            r.instruction_id: r
            for r in Response.objects.filter(round=round_, role=role, style="", instruction_id__in=chunk)
        }
        for pk in chunk:
            if pk in answers and pk in instructions:
                instruction = instructions[pk]
                yield instruction, answers[pk], "sft", task_text(instruction.text, instruction.input), answers[pk].text


def content_digest(rows) -> str:
    digest = hashlib.sha256()
    for kind, prompt, target in rows:
        digest.update(orjson.dumps([kind, prompt, target]))
        digest.update(b"\n")
    return digest.hexdigest()


def snapshot_freeze(*, round_: Round, params: dict, by=None) -> Snapshot:
    """The round's snapshot, made once (a round has at most one). Call under the round's lock."""
    existing = Snapshot.objects.filter(round=round_).first()
    if existing is not None:
        return existing
    rows = list(_items(round_, params))
    counts = {
        "by_kind": dict(Counter(kind for _, _, kind, _, _ in rows)),
        "by_source": dict(Counter(i.origin for i, _, _, _, _ in rows)),
        "by_category": dict(Counter(i.task_category or "" for i, _, _, _, _ in rows)),
    }
    snapshot = Snapshot.objects.create(
        round=round_,
        hash=content_digest((kind, prompt, target) for _, _, kind, prompt, target in rows),
        size=len(rows),
        counts=counts,
        approved_by=by if getattr(by, "is_authenticated", False) else None,
    )
    SnapshotItem.objects.bulk_create(
        [
            SnapshotItem(
                snapshot=snapshot, position=n, instruction=i, response=r, kind=kind, prompt=prompt, target=target
            )
            for n, (i, r, kind, prompt, target) in enumerate(rows)
        ],
        batch_size=1000,
    )
    Round.objects.filter(pk=round_.pk).update(training_set_hash=snapshot.hash)
    return snapshot


def snapshot_write_jsonl(snapshot: Snapshot, folder: Path) -> Path:
    """The trainer's data file, named by the content hash (so writing it twice is harmless)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snapshot-{snapshot.pk}-{snapshot.hash[:16]}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for item in snapshot.items.order_by("position").iterator(2000):
                row = {"prompt": item.prompt, "target": item.target, "kind": item.kind}
                if item.kind.startswith("skill:"):  # the MoS sampler reads each row's dataset
                    row["dataset"] = item.kind.removeprefix("skill:")
                handle.write(orjson.dumps(row) + b"\n")
        tmp.replace(path)
    return path
