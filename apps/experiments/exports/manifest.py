"""An export's manifest (what it holds, where it came from, under which licences and terms, the sha256 of
every file) and its dataset card (README.md)."""

import json

from django.utils import timezone

from apps.datasets.licences import UNKNOWN, licence_restrictions, licence_warning
from apps.datasets.models import Dataset
from apps.experiments.models import Experiment, ExperimentDataset
from apps.llm.terms import endpoint_terms

MANIFEST_VERSION = 1
# Roles whose output ends up in the records (a teacher's answers, a generator's instructions); the judge's
# and classifier's decide what is kept, so they are listed but their terms warn only as a note.
WRITERS = ("teacher", "generator")
DECIDERS = ("judge", "classifier")


def _experiment_of(source) -> Experiment | None:
    if source.kind == "round":
        return source.experiment
    return source.dataset.owner_experiment


def _seed_licences(experiment: Experiment) -> list[dict]:
    rows = ExperimentDataset.objects.filter(experiment=experiment).exclude(role="eval").select_related("dataset")
    return [{"dataset": r.dataset.name, "license": r.dataset.license} for r in rows]


def licences(by_dataset: dict[int, int]) -> tuple[list[dict], list[str]]:
    """One entry per dataset the records come from, and a warning for each that restricts use. A dataset an
    experiment generated carries its seeds' licences (what it was made from)."""
    entries, warnings = [], []
    for dataset in Dataset.objects.filter(pk__in=list(by_dataset)).select_related("owner_experiment").order_by("name"):
        entry = {"dataset": dataset.name, "license": dataset.license, "records": by_dataset[dataset.pk]}
        if dataset.owner_experiment is not None:
            seeds = _seed_licences(dataset.owner_experiment)
            entry["generated_by"] = dataset.owner_experiment.name
            entry["derived_from"] = seeds
            found = sorted({r for s in seeds for r in licence_restrictions(s["license"])})
            entry["restrictions"] = found
            warnings += [
                f"Records of {dataset.name!r} were generated from {w[len('Dataset ') :]}"
                for s in seeds
                if (w := licence_warning(s["dataset"], s["license"]))
            ]
        else:
            entry["restrictions"] = licence_restrictions(dataset.license)
            if warning := licence_warning(dataset.name, dataset.license):
                warnings.append(warning)
        entries.append(entry)
    return entries, warnings


def terms(experiment: Experiment | None, *, generated: bool) -> tuple[list[dict], list[str]]:
    """The models behind the records with their terms of use, and warnings for terms that restrict training."""
    if experiment is None:
        return [], []
    entries, warnings = [], []
    for role in (*WRITERS, *DECIDERS):
        endpoint = getattr(experiment, f"{role}_endpoint", None)
        if endpoint is None or (role == "generator" and not generated):
            continue
        entry = {"role": role, **endpoint_terms(endpoint)}
        entries.append(entry)
        if entry["restricts_training"]:
            text = entry["terms"] or "its terms restrict training on its output"
            if role in WRITERS:
                warnings.append(
                    f"The {role} {entry['endpoint']!r} ({entry['model']}) wrote these records and its terms restrict "
                    f"training on its output: {text} Training a model that competes with its provider may breach them."
                )
            else:
                warnings.append(
                    f"Note: the {role} {entry['endpoint']!r} ({entry['model']}) chose these records; its terms "
                    f"restrict use of its output: {text}"
                )
    return entries, warnings


def experiment_block(source) -> dict | None:
    experiment = _experiment_of(source)
    if experiment is None:
        return None
    block = {
        "name": experiment.name,
        "recipe": experiment.recipe,
        "seed": experiment.seed,
        "config_hash": experiment.config_hash,
        "config": experiment.config,
        "student_model": experiment.student_model,
    }
    if source.kind == "round":
        snapshot = source.snapshot
        block["round"] = {
            "index": source.round.index,
            "status": source.round.status,
            "snapshot_hash": snapshot.hash,
            "snapshot_size": snapshot.size,
            "frozen_at": snapshot.frozen_at.isoformat(),
            "approved_by": snapshot.approved_by.username if snapshot.approved_by else None,
        }
    return block


def build(source, *, fmt: str, files: list[dict], artifact: dict | None = None) -> dict:
    """The manifest of a finished export. `files` are the written files with their hashes."""
    tally = source.tally
    licence_entries, licence_warnings = licences(dict(tally.by_dataset))
    generated = tally.by_origin.get("generated", 0) > 0
    term_entries, term_warnings = terms(_experiment_of(source), generated=generated)
    manifest = {
        "retort_export": MANIFEST_VERSION,
        "created_at": timezone.now().isoformat(),
        "format": fmt,
        "source": {"kind": source.kind, "label": source.label, "filters": source.filters},
        "options": source.options.as_dict(),
        "experiment": experiment_block(source),
        "counts": {
            "records": tally.records,
            "by_category": dict(sorted(tally.by_category.items())),
            "by_origin": dict(sorted(tally.by_origin.items())),
            "by_kind": dict(sorted(tally.by_kind.items())),
        },
        "review": {
            "reviewed": tally.reviewed,
            "total": tally.records,
            "coverage": round(tally.reviewed / tally.records, 4) if tally.records else 0.0,
            "decisions": dict(sorted(tally.decisions.items())),
            "automatic": tally.automatic,
        },
        "licences": licence_entries,
        "terms": term_entries,
        "warnings": licence_warnings + term_warnings,
        "files": files,
    }
    if source.kind == "dataset":
        manifest["source"]["dataset"] = {"name": source.dataset.name, "source": source.dataset.source}
    if artifact is not None:
        manifest["artifact"] = artifact
    return manifest


def dataset_card(manifest: dict) -> str:
    """A short README.md in our words: what the data is, how it was made, its licences, how to load it."""
    counts, review, experiment = manifest["counts"], manifest["review"], manifest.get("experiment")
    lines = [f"# {manifest['source']['label']}", ""]
    lines += [
        f"Exported by Retort on {manifest['created_at'][:10]}: {counts['records']:,} records "
        f"({manifest['format']}). Retort distils a large teacher model into a small student, with people "
        "reviewing what the teacher and the judge produced.",
        "",
    ]
    if experiment:
        lines += [
            "## How it was made",
            "",
            f"Experiment `{experiment['name']}`, recipe **{experiment['recipe']}**, seed {experiment['seed']}, "
            f"config sha256 `{experiment['config_hash']}` (the frozen config is in manifest.json).",
        ]
        if "round" in experiment:
            r = experiment["round"]
            lines.append(
                f"This is the approved training set of round {r['index']}: snapshot `{r['snapshot_hash']}` "
                f"({r['snapshot_size']:,} items, frozen {r['frozen_at'][:19]}), reviewers' edits applied."
            )
        lines.append("")
    if manifest["terms"]:
        lines += ["## Models", "", "| role | endpoint | model | terms of use |", "|---|---|---|---|"]
        for t in manifest["terms"]:
            note = t["terms"] or t["source"]
            lines.append(f"| {t['role']} | {t['endpoint']} | {t['model']} | {note.replace('|', '/')} |")
        lines.append("")
    lines += [
        "## Review",
        "",
        f"{review['reviewed']:,} of {review['total']:,} records carry a reviewer's decision "
        f"({review['automatic']:,} of them by auto-approve): "
        + (", ".join(f"{k} {v:,}" for k, v in review["decisions"].items()) or "none")
        + ".",
        "",
        "## Licences",
        "",
    ]
    for entry in manifest["licences"]:
        text = entry["license"] or ("(generated)" if entry.get("generated_by") else UNKNOWN)
        lines.append(f"- `{entry['dataset']}`: {text} — {entry['records']:,} records")
        for seed in entry.get("derived_from", []):
            lines.append(f"  - made from `{seed['dataset']}`: {seed['license'] or UNKNOWN}")
    if manifest["warnings"]:
        lines += ["", "**Warnings**", ""] + [f"- {w}" for w in manifest["warnings"]]
    lines += [
        "",
        "## Files",
        "",
        "Each file's sha256 is in manifest.json. Parquet loads with Hugging Face `datasets`:",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("parquet", data_files="data.parquet")["train"]',
        "```",
        "",
        "The OpenAI file is chat fine-tuning JSONL (`messages` only); its optional per-record fields, when "
        "asked for, are in the `.meta.jsonl` file beside it, line for line.",
        "",
        "## Counts",
        "",
        "```json",
        json.dumps({k: counts[k] for k in ("by_category", "by_origin", "by_kind")}, indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(lines)
