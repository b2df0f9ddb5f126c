import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.datasets.formats import FORMATS
from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.services import import_job_record


class Command(BaseCommand):
    help = (
        "Import a file of instructions into a dataset (all-or-nothing unless --skip-invalid); recorded as an "
        "import job, like an upload."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", required=True, help="Dataset name (created if new, appended to if it exists).")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument("--skip-invalid", action="store_true", help="Import the valid records, report the rest.")
        parser.add_argument("--max-record-bytes", type=int, default=None)
        parser.add_argument(
            "--license", default="", help="The data's licence (e.g. Apache-2.0, CC BY-NC 4.0), recorded on the dataset."
        )

    def handle(self, path, name, format, skip_invalid, max_record_bytes, license, verbosity, **options):
        started = timezone.now()
        show_progress = verbosity >= 1 and sys.stderr.isatty()

        def progress(records, done, total):
            if show_progress and total:
                sys.stderr.write(f"\r{records:,} records read ({100 * done // total}%)")
                sys.stderr.flush()

        try:
            report = dataset_import_file(
                path=path,
                dataset_name=name,
                fmt=format,
                skip_invalid=skip_invalid,
                on_progress=progress,
                max_record_bytes=max_record_bytes,
                license=license,
            )
        except ImportFailed as exc:
            self._record(path, name, format, skip_invalid, license, started, exc.report, exc)
            if show_progress:
                sys.stderr.write("\n")
            for problem in exc.report.problems[:20]:
                self.stderr.write(f"  {problem}")
            if exc.report.problem_count > 20:
                self.stderr.write(f"  … and {exc.report.problem_count - 20:,} more")
            hint = " Use --skip-invalid to import the valid records and skip these." if exc.skippable else ""
            raise CommandError(f"{exc}{hint}") from exc
        self._record(path, name, format, skip_invalid, license, started, report, None)
        if show_progress:
            sys.stderr.write("\n")
        for problem in report.problems[:20]:
            self.stderr.write(f"  skipped {problem}")
        self.stdout.write(self.style.SUCCESS(report.summary()))

    @staticmethod
    def _record(path, name, fmt, skip_invalid, license, started, report, failure) -> None:
        import_job_record(
            path=path,
            dataset_name=name,
            fmt=fmt,
            skip_invalid=skip_invalid,
            license=license,
            started_at=started,
            report=report,
            failure=failure,
        )
