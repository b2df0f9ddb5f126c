import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.experiments.exports.services import FORMATS, ExportError, export_source, export_write, parse_round


class Command(BaseCommand):
    help = (
        "Export a dataset (or a filtered part of it), or a round's approved training set, as Alpaca, ShareGPT, "
        "OpenAI chat JSONL, parquet or a bundle of all, with a manifest (counts, sha256s, licences, terms) "
        "and a dataset card."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="The dataset's name (with --round: one of the experiment's, or '-').")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, help="The file to write (a .zip for --format bundle).")
        parser.add_argument("--round", help="<experiment>:<index>: export that round's frozen training set.")
        parser.add_argument("--category", default="", help="Only instructions of this task category.")
        parser.add_argument("--origin", default="", help="Only imported or only generated instructions.")
        parser.add_argument("--ids", default="", help="Only these instruction ids (comma-separated).")
        parser.add_argument("--with-provenance", action="store_true", help="origin, seed id, experiment, round")
        parser.add_argument("--with-scores", action="store_true", help="the judge's scores and verdict")
        parser.add_argument("--with-review", action="store_true", help="the reviewer's decision")

    def handle(self, *args, **opts):
        show_progress = opts["verbosity"] >= 1 and sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show_progress and total:
                sys.stderr.write(f"\r{done:,} / {total:,} records ({100 * done // total}%)")
                sys.stderr.flush()

        try:
            ids = [int(part) for part in opts["ids"].split(",") if part.strip()] if opts["ids"] else []
        except ValueError:
            raise CommandError(f"--ids takes comma-separated whole numbers, got {opts['ids']!r}.") from None
        try:
            experiment = index = None
            if opts["round"]:
                experiment, index = parse_round(opts["round"])
            dataset = None if opts["round"] and opts["dataset"] == "-" else opts["dataset"]
            source = export_source(
                dataset=dataset,
                experiment=experiment,
                round_index=index,
                category=opts["category"],
                origin=opts["origin"],
                ids=ids,
                options={
                    "provenance": opts["with_provenance"],
                    "scores": opts["with_scores"],
                    "review": opts["with_review"],
                },
            )
            manifest = export_write(source=source, fmt=opts["format"], out=Path(opts["out"]), progress=progress)
        except ExportError as exc:
            if show_progress:
                sys.stderr.write("\n")
            raise CommandError(str(exc)) from exc
        if show_progress:
            sys.stderr.write("\n")
        counts, review = manifest["counts"], manifest["review"]
        for warning in manifest["warnings"]:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        for f in manifest["files"]:
            skipped = sum((f.get("skipped") or {}).values())
            extra = f", {skipped:,} skipped ({', '.join(f['skipped'])})" if skipped else ""
            records = f"{f['records']:,} records, " if "records" in f else ""
            self.stdout.write(f"  {f['name']}: {records}{f['bytes']:,} bytes{extra}, sha256 {f['sha256']}")
        licences = "; ".join(f"{e['dataset']}: {e['license'] or 'none recorded'}" for e in manifest["licences"])
        self.stdout.write(f"  licences: {licences or 'none'}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{manifest['source']['label']}: {counts['records']:,} records exported to {opts['out']} "
                f"({opts['format']}); {review['reviewed']:,} of {review['total']:,} reviewed"
            )
        )
