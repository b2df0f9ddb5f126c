"""Reads for exports: recent jobs, one job, and the path of a file a job wrote (never from user input)."""

from pathlib import Path

from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.services import export_root


def export_job_recent(*, limit: int = 20) -> list[ExportJob]:
    return list(ExportJob.objects.select_related("dataset", "round__experiment", "requested_by")[:limit])


def export_file_path(job: ExportJob, name: str) -> Path | None:
    """The file `name` of a finished job, if the job lists it and it lies in the job's folder under the
    export root; None otherwise. The path is built from the job's row, the name only picks among its files."""
    if job.status != ExportJob.Status.SUCCEEDED or not job.output_dir:
        return None
    listed = {f["name"] for f in job.files}
    if name not in listed:
        return None
    folder = Path(job.output_dir).resolve()
    if not folder.is_relative_to(export_root().resolve()):
        return None
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path
