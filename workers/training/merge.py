"""`python -m workers.training.merge --spec merge.json`: fold a LoRA adapter into its base model.

merge.json: {base_model, adapter_dir, output_dir, adapter_sha256 (optional), architecture auto | causal |
seq2seq}. `adapter_sha256` is the adapter's manifest hash (the sha256 of its "sha256  path" lines, one a
file, sorted by path): when given, the adapter folder is hashed first and a mismatch is a bad spec, so a
changed or half-copied adapter is never merged.

The result, output_dir/merged/: model.safetensors with the merged weights (peft's merge_and_unload: W + BA
scaled, the adapter layers gone, so any transformers loads it without peft), config.json, the tokenizer,
training_spec.json (the adapter's spec), merge.json (what was merged from what) and SHA256SUMS (one
"sha256  path" line a file, what `sha256sum -c SHA256SUMS` checks). The folder is written beside and renamed
into place. Then output_dir/result.json. Exit codes: 0 done, 2 bad spec, 1 anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

from workers.training.spec import ARCHITECTURES, SpecError

EXIT_OK, EXIT_CRASH, EXIT_BAD_SPEC = 0, 1, 2
MANIFEST = "SHA256SUMS"
MERGED = "merged"


@dataclasses.dataclass
class MergeSpec:
    base_model: str
    adapter_dir: str
    output_dir: str
    adapter_sha256: str | None = None
    architecture: str = "auto"


def merge_spec_from_dict(data) -> MergeSpec:
    if not isinstance(data, dict):
        raise SpecError([("spec", f"expected a JSON object, got {type(data).__name__}")])
    known = {f.name for f in dataclasses.fields(MergeSpec)}
    problems = [(key, "unknown field") for key in sorted(set(data) - known)]
    for key in ("base_model", "adapter_dir", "output_dir"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append((key, "required (a non-empty string)"))
    adapter = data.get("adapter_dir")
    if isinstance(adapter, str) and adapter and not Path(adapter, "adapter_config.json").is_file():
        problems.append(("adapter_dir", f"{adapter} holds no LoRA adapter (no adapter_config.json)"))
    digest = data.get("adapter_sha256")
    if digest is not None and (
        not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
    ):
        problems.append(("adapter_sha256", f"expected 64 lowercase hex digits, got {digest!r}"))
    if data.get("architecture", "auto") not in ARCHITECTURES:
        problems.append(("architecture", f"expected one of {', '.join(ARCHITECTURES)}, got {data['architecture']!r}"))
    if problems:
        raise SpecError(problems)
    return MergeSpec(**data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_manifest(folder: Path, *, exclude: tuple[str, ...] = ()) -> list[dict]:
    """[{path, sha256, bytes}] of every file under `folder`, sorted by relative path."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative not in exclude:
            files.append({"path": relative, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return files


def manifest_text(files: list[dict]) -> str:
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in files)


def manifest_sha256(files: list[dict]) -> str:
    """The hash an artifact is known by: sha256 of its manifest lines (apps.training.running does the same)."""
    return hashlib.sha256(manifest_text(files).encode()).hexdigest()


def _stored_dtype(config):
    import torch

    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) and dtype.is_floating_point else torch.float32


def merge_adapter(spec: MergeSpec) -> dict:
    """Merge, save output_dir/merged/ and return {merged_dir, files, parameters, ...} (result.json's body)."""
    import torch
    from peft import PeftModel

    from workers.training.model import is_seq2seq, load_base, load_tokenizer
    from workers.training.students import StudentError, resolve_student

    adapter = Path(spec.adapter_dir)
    if spec.adapter_sha256 is not None:
        found = manifest_sha256(folder_manifest(adapter))
        if found != spec.adapter_sha256:
            raise SpecError(
                [("adapter_sha256", f"{adapter} hashes to {found}, not {spec.adapter_sha256}: the adapter changed")]
            )
    try:
        base_path = resolve_student(spec.base_model)
        seq2seq = is_seq2seq(base_path, spec.architecture)
    except (OSError, StudentError) as error:
        raise SpecError([("base_model", f"cannot load {spec.base_model!r}: {error}")]) from error
    # Merged in float32 whatever the base is stored in (W + BA in bf16 would round the small update away),
    # then saved in the base's own dtype.
    base = load_base(base_path, seq2seq=seq2seq, dtype=torch.float32)
    stored = _stored_dtype(base.config)
    model = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    model = model.to(stored)
    tokenizer = load_tokenizer(str(adapter) if (adapter / "tokenizer_config.json").is_file() else base_path)

    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    work, final = output / f".{MERGED}.tmp", output / MERGED
    shutil.rmtree(work, ignore_errors=True)
    model.save_pretrained(work, safe_serialization=True)
    tokenizer.save_pretrained(work)
    if (adapter / "training_spec.json").is_file():
        shutil.copyfile(adapter / "training_spec.json", work / "training_spec.json")
    about = {
        "base_model": spec.base_model,
        "adapter_sha256": spec.adapter_sha256 or manifest_sha256(folder_manifest(adapter)),
        "architecture": "seq2seq" if seq2seq else "causal",
        "dtype": str(stored).removeprefix("torch."),
    }
    (work / "merge.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (work / MANIFEST).write_text(manifest_text(folder_manifest(work, exclude=(MANIFEST,))), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    files = [{**f, "path": f"{MERGED}/{f['path']}"} for f in folder_manifest(final)]
    return {
        **about,
        "final_dir": str(final.resolve()),
        "files": files,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def write_result(output_dir: str | Path, result: dict) -> None:
    path = Path(output_dir) / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.with_name(path.name + ".tmp")
    work.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(work, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.training.merge", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the merge's MergeSpec as JSON")
    args = parser.parse_args(argv)
    try:
        spec = merge_spec_from_dict(json.loads(Path(args.spec).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as error:
        print(f"bad spec {args.spec}: {error}", file=sys.stderr)
        return EXIT_BAD_SPEC
    except SpecError as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        return EXIT_BAD_SPEC
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        result = merge_adapter(spec)
    except SpecError as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        write_result(spec.output_dir, {"status": "bad_spec", "error": str(error)})
        return EXIT_BAD_SPEC
    except Exception as error:  # noqa: BLE001 - the exit code and result.json are the contract; the traceback goes to the log
        traceback.print_exc()
        write_result(spec.output_dir, {"status": "failed", "error": f"{type(error).__name__}: {error}"})
        return EXIT_CRASH
    write_result(spec.output_dir, {"status": "succeeded", **result})
    print(f"merged {spec.adapter_dir} into {spec.base_model}: {result['final_dir']}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
