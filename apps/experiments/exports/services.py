"""Writes for exports: resolve what to export, write it (one format or a bundle), and run export jobs.

`export_start` is what a page or an API view calls (keyword-only, the viewer role checked here); it queues
the job for a worker, which calls `export_run`. The management command calls `export_write` directly.
"""

import hashlib
import shutil
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.enqueue import job_resend_unsent, job_resend_waiting, send_job_on_commit
from apps.core.errors import RetortError
from apps.core.heartbeat import worker_identity
from apps.core.roles import Role, require_role
from apps.datasets.formats.writers import EXPORT_FORMATS, SUFFIX, write_records
from apps.datasets.models import Dataset, Instruction
from apps.experiments.exports import manifest as manifests
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.records import DatasetSource, Options, SnapshotSource
from apps.experiments.models import Experiment, ExperimentDataset, Round, Snapshot

FORMATS = (*EXPORT_FORMATS, "bundle")
RUN_EXPORT_TASK = "apps.experiments.tasks.run_export_job"
FILE_NAMES = {"alpaca": "alpaca.json", "sharegpt": "sharegpt.json", "openai": "openai.jsonl", "parquet": "data.parquet"}
MAX_IDS = 100_000
CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # records done, records in all


class ExportError(RetortError):
    """The export cannot be made as asked; the message says what and where."""


# --- what to export ----------------------------------------------------------------------------------------
def _dataset(ref) -> Dataset:
    if isinstance(ref, Dataset):
        return ref
    text = str(ref).strip()
    found = Dataset.objects.filter(name=text).first()
    if found is None and text.isdigit():
        found = Dataset.objects.filter(pk=int(text)).first()
    if found is None:
        raise ExportError(f"No dataset named {text!r}.", field="dataset")
    return found


def _round(experiment_ref, index) -> Round:
    text = str(experiment_ref).strip()
    if isinstance(experiment_ref, Experiment):
        experiment = experiment_ref
    else:
        experiment = Experiment.objects.filter(name=text).first()
        if experiment is None and text.isdigit():
            experiment = Experiment.objects.filter(pk=int(text)).first()
    if experiment is None:
        raise ExportError(f"No experiment named {text!r}.", field="round")
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise ExportError(f"A round index is a whole number, got {index!r}.", field="round") from None
    round_ = Round.objects.filter(experiment=experiment, index=index).first()
    if round_ is None:
        have = list(Round.objects.filter(experiment=experiment).values_list("index", flat=True))
        raise ExportError(
            f"Experiment {experiment.name!r} has no round {index} (rounds: {have or 'none'}).", field="round"
        )
    return round_


def parse_round(text: str) -> tuple[str, int]:
    """'<experiment>:<index>' (the experiment's name may itself hold colons: the last one splits)."""
    name, sep, index = (text or "").rpartition(":")
    if not sep or not name.strip() or not index.strip().isdigit():
        raise ExportError(f"--round takes <experiment>:<index>, e.g. lion-demo:1; got {text!r}.", field="round")
    return name.strip(), int(index)


def export_source(
    *, dataset=None, experiment=None, round_index=None, category="", origin="", ids=None, options=None
) -> DatasetSource | SnapshotSource:
    """The records to export: a round's snapshot (experiment and round_index), else a dataset's filtered
    instructions. With a round, `dataset` may name one of the experiment's datasets (or none)."""
    options = options if isinstance(options, Options) else Options.from_dict(options)
    if experiment is not None or round_index is not None:
        if experiment is None or round_index is None:
            raise ExportError("A round export needs both the experiment and the round index.", field="round")
        if category or origin or ids:
            raise ExportError(
                "A round's training set is exported whole: category, origin and id filters apply to dataset exports.",
                field="category",
            )
        round_ = _round(experiment, round_index)
        if dataset is not None:
            chosen = _dataset(dataset)
            uses = ExperimentDataset.objects.filter(experiment=round_.experiment, dataset=chosen).exists()
            if not uses and chosen.owner_experiment_id != round_.experiment_id:
                raise ExportError(
                    f"Dataset {chosen.name!r} is not one of experiment {round_.experiment.name!r}'s datasets.",
                    field="dataset",
                )
        snapshot = Snapshot.objects.filter(round=round_).select_related("round__experiment").first()
        if snapshot is None:
            raise ExportError(
                f"Round {round_.index} of {round_.experiment.name!r} has no snapshot yet: its training set is "
                "frozen when an operator approves training.",
                field="round",
            )
        return SnapshotSource(snapshot, options=options)
    if dataset is None:
        raise ExportError("Name a dataset, or a round (<experiment>:<index>), to export.", field="dataset")
    chosen = _dataset(dataset)
    if origin and origin not in Instruction.Origin.values:
        choices = " or ".join(Instruction.Origin.values)
        raise ExportError(f"Unknown origin {origin!r}; choose {choices}.", field="origin")
    ids = list(ids or [])
    if len(ids) > MAX_IDS:
        raise ExportError(f"At most {MAX_IDS:,} ids in one export, got {len(ids):,}.", field="ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in ids):
        raise ExportError("Instruction ids are positive whole numbers.", field="ids")
    source = DatasetSource(chosen, category=category, origin=origin, ids=ids, options=options)
    if ids:
        missing = set(source.filters["ids"]) - set(
            Instruction.objects.filter(dataset=chosen, pk__in=source.filters["ids"]).values_list("pk", flat=True)
        )
        if missing:
            first = ", ".join(map(str, sorted(missing)[:10]))
            raise ExportError(f"Dataset {chosen.name!r} has no instruction with id {first}.", field="ids")
    return source


# --- writing -----------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_for_writing(path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")
    except OSError as exc:
        raise ExportError(f"Cannot write {path}: {exc.strerror or exc}.", field="out") from None


def _write_one(source, fmt: str, path: Path, progress, offset: int, total: int) -> list[dict]:
    """One format into `path` (via a .part file), plus the OpenAI sidecar when optional fields are on."""
    sidecar_path = path.with_name(path.name.removesuffix(SUFFIX[fmt]) + ".meta.jsonl")
    wants_sidecar = fmt == "openai" and any(source.options.as_dict().values())
    part = path.with_name(path.name + ".part")
    side_part = sidecar_path.with_name(sidecar_path.name + ".part")

    def on_records(done: int) -> None:
        if progress:
            progress(offset + done, total)

    with _open_for_writing(part) as out:
        side = _open_for_writing(side_part) if wants_sidecar else None
        try:
            stats = write_records(fmt, source.records(), out, fields=source.fields(), progress=on_records, sidecar=side)
        finally:
            if side is not None:
                side.close()
    part.replace(path)
    files = [{"name": path.name, **stats.as_dict(), "sha256": stats.sha256}]
    if wants_sidecar:
        side_part.replace(sidecar_path)
        files.append(
            {
                "name": sidecar_path.name,
                "format": "openai-meta",
                "records": stats.written,
                "bytes": sidecar_path.stat().st_size,
                "sha256": _sha256(sidecar_path),
            }
        )
    return files


def _write_json(path: Path, data) -> dict:
    body = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    with _open_for_writing(path) as out:
        out.write(body)
    return {"name": path.name, "format": path.suffix.lstrip("."), "bytes": len(body)}


def _card(path: Path, manifest: dict) -> dict:
    body = manifests.dataset_card(manifest).encode()
    with _open_for_writing(path) as out:
        out.write(body)
    return {"name": path.name, "format": "card", "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def _artifact(source):
    if source.kind != "round":
        return None
    from apps.training.models import Artifact

    kinds = [Artifact.Kind.ADAPTER, Artifact.Kind.WEIGHTS]
    return Artifact.objects.filter(round=source.round, kind__in=kinds).order_by("-id").first()


def _artifact_files(artifact) -> list[tuple[Path, str]]:
    root = Path(artifact.path)
    if root.is_file():
        return [(root, root.name)]
    listed = [f["path"] for f in (artifact.metadata or {}).get("files", [])]
    names = listed or sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    found = []
    for name in names:
        path = (root / name).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            raise ExportError(f"The round's artifact lists {name!r}, which is not a file in {root}.")
        found.append((path, name))
    return found


def export_write(*, source, fmt: str, out: Path | str, progress: Progress | None = None) -> dict:
    """Write the export to `out` and return its manifest. One format: the data file at `out`, with
    `<out>.manifest.json` and `<out>.README.md` beside it. A bundle: one zip at `out` holding every format,
    the manifest, the card and the round's adapter or weights when it has them."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.", field="format")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a folder; --out names the file to write.", field="out")
    if fmt != "bundle":
        total = source.count()
        files = _write_one(source, fmt, out, progress, 0, total)
        manifest = manifests.build(source, fmt=fmt, files=files)
        card = _card(out.with_name(out.name + ".README.md"), manifest)
        manifest["files"].append(card)
        _write_json(out.with_name(out.name + ".manifest.json"), manifest)
        return manifest
    return _write_bundle(source, out, progress)


def _write_bundle(source, out: Path, progress) -> dict:
    work = out.with_name(out.name + ".parts")
    shutil.rmtree(work, ignore_errors=True)
    try:
        total = source.count() * len(EXPORT_FORMATS)
        files: list[dict] = []
        for n, fmt in enumerate(EXPORT_FORMATS):
            files += _write_one(source, fmt, work / FILE_NAMES[fmt], progress, n * source.count(), total)
        data_names = [f["name"] for f in files]
        artifact = _artifact(source)
        model_files: list[tuple[Path, str]] = []
        artifact_block = None
        if artifact is not None:
            model_files = _artifact_files(artifact)
            artifact_block = {
                "kind": artifact.kind,
                "sha256": artifact.sha256,
                "base_model": artifact.base_model,
                "snapshot_hash": artifact.snapshot_hash,
                "files": [
                    {"name": f"model/{name}", "bytes": path.stat().st_size, "sha256": _sha256(path)}
                    for path, name in model_files
                ],
            }
        manifest = manifests.build(source, fmt="bundle", files=files, artifact=artifact_block)
        manifest["files"].append(_card(work / "README.md", manifest))
        _write_json(work / "manifest.json", manifest)
        part = out.with_name(out.name + ".part")
        _open_for_writing(part).close()
        with zipfile.ZipFile(part, "w", allowZip64=True) as archive:
            for name in ("README.md", "manifest.json", *data_names):
                stored = name.endswith(".parquet")
                archive.write(work / name, name, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            for path, name in model_files:
                archive.write(path, f"model/{name}", zipfile.ZIP_STORED)
        part.replace(out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- jobs --------------------------------------------------------------------------------------------------
def export_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_start(
    *,
    by,
    fmt: str,
    dataset=None,
    experiment=None,
    round_index=None,
    category: str = "",
    origin: str = "",
    ids=None,
    provenance: bool = False,
    scores: bool = False,
    review: bool = False,
) -> ExportJob:
    """Queue an export for a worker, for a user holding the viewer role. Bad input raises ExportError
    before anything is stored."""
    require_role(by, Role.VIEWER)
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.", field="format")
    options = Options(provenance=provenance, scores=scores, review=review)
    source = export_source(
        dataset=dataset,
        experiment=experiment,
        round_index=round_index,
        category=category,
        origin=origin,
        ids=ids,
        options=options,
    )
    job = ExportJob(
        format=fmt,
        dataset=source.dataset if source.kind == "dataset" else None,
        round=source.round if source.kind == "round" else None,
        source_label=source.label[:300],
        filters=source.filters,
        options=options.as_dict(),
        total=source.count() * (len(EXPORT_FORMATS) if fmt == "bundle" else 1),
        requested_by=by if getattr(by, "is_authenticated", False) else None,
    )
    with transaction.atomic():
        job.full_clean()
        job.save()
        send_job_on_commit(RUN_EXPORT_TASK, ExportJob, job.pk)
    return job


def _claim(job_id: int) -> ExportJob | None:
    """Queued, or running but silent longer than RETORT_STALE_AFTER_S (its worker died: the task came
    back), becomes running here; anything else is someone else's or done."""
    stale = timezone.now() - timedelta(seconds=settings.RETORT_STALE_AFTER_S)
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if job.status == ExportJob.Status.RUNNING and job.updated_at > stale:
            return None
        job.status, job.started_at, job.worker = ExportJob.Status.RUNNING, timezone.now(), worker_identity()
        job.attempts += 1
        job.done = 0
        job.queue_unreachable_at = None
        job.save(
            update_fields=["status", "started_at", "worker", "attempts", "done", "queue_unreachable_at", "updated_at"]
        )
    return job


def export_job_recover_stale(*, stale_after_s: float) -> list[int]:
    """Send again the queued exports whose message is missing: at once those the broker refused, and ones
    queued longer than `stale_after_s` (their message may have gone with a broker restarted without
    persistence), stamped so that each is re-sent once a period. Only one delivery can claim a job."""
    resent = job_resend_unsent(RUN_EXPORT_TASK, ExportJob)
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    return resent + job_resend_waiting(RUN_EXPORT_TASK, ExportJob, queued_before=cutoff, skip=resent)


def export_run(*, job_id: int) -> ExportJob | None:
    """Run one export job into MEDIA_ROOT/exports/job-<id>/. None when it was not ours to run."""
    job = _claim(job_id)
    if job is None:
        return None
    folder = export_root() / f"job-{job.pk}"

    def progress(done: int, total: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(done=done, total=total, updated_at=timezone.now())

    try:
        if job.round_id is not None:
            source = export_source(experiment=job.round.experiment, round_index=job.round.index, options=job.options)
        elif job.dataset_id is not None:
            source = export_source(dataset=job.dataset, **_filters(job.filters), options=job.options)
        else:
            raise ExportError("What this job exported no longer exists (its dataset or round was deleted).")
        shutil.rmtree(folder, ignore_errors=True)
        name = "bundle.zip" if job.format == "bundle" else FILE_NAMES[job.format]
        manifest = export_write(source=source, fmt=job.format, out=folder / name, progress=progress)
    except RetortError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(exc), finished_at=timezone.now(), updated_at=timezone.now()
        )
        return ExportJob.objects.get(pk=job.pk)
    files = _job_files(folder, name, job.format, manifest)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.SUCCEEDED,
        output_dir=str(folder),
        files=files,
        manifest=manifest,
        warnings=manifest["warnings"],
        done=job.total if job.total else manifest["counts"]["records"],
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return ExportJob.objects.get(pk=job.pk)


def _filters(filters: dict) -> dict:
    return {"category": filters.get("category", ""), "origin": filters.get("origin", ""), "ids": filters.get("ids")}


def _job_files(folder: Path, name: str, fmt: str, manifest: dict) -> list[dict]:
    """The files a job's page offers for download, with their sizes and hashes."""
    if fmt == "bundle":
        path = folder / name
        return [{"name": name, "format": "bundle", "bytes": path.stat().st_size, "sha256": _sha256(path)}]
    listed = [dict(f) for f in manifest["files"]]
    manifest_path = folder / f"{name}.manifest.json"
    listed.append(
        {
            "name": manifest_path.name,
            "format": "manifest",
            "bytes": manifest_path.stat().st_size,
            "sha256": _sha256(manifest_path),
        }
    )
    return listed
