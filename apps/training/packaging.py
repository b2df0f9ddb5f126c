"""An artifact as a zip download: its files plus a generated model card, streamed as it is written.

zipfile writes to an unseekable sink by putting each entry's sizes and CRC after its data (data
descriptors), so the archive goes out chunk by chunk and a multi-gigabyte model never sits in memory.
"""

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from apps.training.models import Artifact

CHUNK = 1 << 20


class _Sink:
    """A write-only file object whose bytes are collected and handed out between writes."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _experiment_of(artifact: Artifact) -> tuple[str, int | None]:
    round_ = artifact.round
    if round_ is None:
        return "", None
    return str(round_.experiment), round_.index


def model_card(artifact: Artifact) -> str:
    """README.md for the zip: what the model is, what it learnt from, how it was trained, how to load it."""
    experiment, index = _experiment_of(artifact)
    meta, spec = artifact.metadata or {}, artifact.spec or {}
    files = meta.get("files", [])
    adapter = artifact.kind == Artifact.Kind.ADAPTER
    lines = [
        f"# {experiment or 'Retort'} · round {index if index is not None else '?'} · {artifact.get_kind_display()}",
        "",
        "Trained with Retort (distillation of a teacher LLM into a student model).",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{artifact.base_model}` |",
        f"| fine-tuning | {meta.get('finetune') or spec.get('finetune', 'lora')} |",
        f"| method | {meta.get('method') or spec.get('method', 'sft')} |",
        f"| training set (snapshot sha256) | `{artifact.snapshot_hash or 'unknown'}` |",
        f"| artifact sha256 (manifest) | `{artifact.sha256}` |",
        f"| steps | {meta.get('steps', '?')} |",
        f"| mean training loss | {meta.get('train_loss', '?')} |",
    ]
    if "eval_loss" in meta:
        lines.append(f"| eval loss | {meta['eval_loss']} |")
    if artifact.kind == Artifact.Kind.MERGED:
        adapter_sha = meta.get("adapter_sha256", "?")
        lines.append(f"| merged from | LoRA adapter #{artifact.source_id}, manifest sha256 `{adapter_sha}` |")
    lines += ["", "## Training spec", "", "```json", json.dumps(spec, indent=2, sort_keys=True), "```", ""]
    lines += [
        "## Files",
        "",
        "The artifact sha256 is the sha256 of the lines below (`sha256  path`, one per file).",
        "",
    ]
    lines += ["```", *(f"{f['sha256']}  {f['path']}" for f in files), "```", "", "## Loading", ""]
    if artifact.kind == Artifact.Kind.MERGED:
        loader = "AutoModelForSeq2SeqLM" if meta.get("architecture") == "seq2seq" else "AutoModelForCausalLM"
        lines += [
            "The LoRA adapter folded into its base (peft's merge_and_unload): whole weights in safetensors that",
            "transformers loads without peft, computing what the base with the adapter computes.",
            "`SHA256SUMS` lists each file's sha256 (`sha256sum -c SHA256SUMS`); `merge.json` says what was merged.",
            "",
            "```python",
            f"from transformers import {loader}, AutoTokenizer",
            f'model = {loader}.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
        ]
    elif adapter:
        lines += [
            "A LoRA adapter (peft). Load the base model, then the adapter from this folder:",
            "",
            "```python",
            "from peft import AutoPeftModelForCausalLM",
            'model = AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")',
            "model = model.merge_and_unload()  # optional: fold the adapter into the base weights",
            "```",
        ]
    else:
        lines += [
            "Full model weights (safetensors) and the tokenizer:",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
        ]
    if artifact.base_model.startswith("builtin:"):
        lines += ["", f"`{artifact.base_model}` is one of Retort's built-in students (workers/training/students.py)."]
    return "\n".join(lines) + "\n"


def zip_name(artifact: Artifact) -> str:
    experiment, index = _experiment_of(artifact)
    stem = "-".join(
        part for part in (experiment, f"round{index}" if index is not None else "", artifact.sha256[:12]) if part
    )
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".zip"


def artifact_zip_stream(artifact: Artifact) -> Iterator[bytes]:
    """The zip's bytes, chunk by chunk: README.md, then the artifact's files as they are on disk."""
    root = Path(artifact.path)
    files = [f["path"] for f in (artifact.metadata or {}).get("files", [])]
    if not files and root.is_dir():
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("README.md", model_card(artifact))
        yield sink.take()
        for relative in files:
            source = (root / relative).resolve()
            if not source.is_relative_to(root.resolve()):
                raise ValueError(f"{relative} lies outside the artifact folder")
            with (
                open(source, "rb") as handle,
                archive.open(relative, "w", force_zip64=source.stat().st_size > 2**31) as out,
            ):
                for chunk in iter(lambda handle=handle: handle.read(CHUNK), b""):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
