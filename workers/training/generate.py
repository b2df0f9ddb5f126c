"""`python -m workers.training.generate --spec gen.json`: a student answers a file of prompts.

gen.json: {base_model, adapter_dir | weights_dir (optional: the base alone without either),
prompts_path (JSONL {id, prompt}), output_path (JSONL {id, text, tokens}), max_new_tokens 256,
temperature 0 (greedy), top_p 1, batch_size 8, seed 0, engine auto | transformers | vllm,
architecture auto | causal | seq2seq}. Exit codes: 0 done, 2 bad spec, 1 anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path

from workers.training.spec import SpecError


@dataclasses.dataclass
class GenerateSpec:
    base_model: str
    prompts_path: str
    output_path: str
    adapter_dir: str | None = None
    weights_dir: str | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 8
    seed: int = 0
    engine: str = "auto"
    architecture: str = "auto"


def generate_spec_from_dict(data) -> GenerateSpec:
    if not isinstance(data, dict):
        raise SpecError([("spec", "expected a JSON object")])
    fields = {f.name for f in dataclasses.fields(GenerateSpec)}
    problems = [(key, "unknown field") for key in sorted(set(data) - fields)]
    problems += [(key, "required") for key in ("base_model", "prompts_path", "output_path") if not data.get(key)]
    if data.get("adapter_dir") and data.get("weights_dir"):
        problems.append(("adapter_dir", "give adapter_dir or weights_dir, not both"))
    for key in ("adapter_dir", "weights_dir"):
        if data.get(key) and not Path(data[key]).is_dir():
            problems.append((key, f"no folder at {data[key]}"))
    if data.get("prompts_path") and not Path(data["prompts_path"]).is_file():
        problems.append(("prompts_path", f"no file at {data['prompts_path']}"))
    for key, low in (("max_new_tokens", 1), ("batch_size", 1), ("seed", 0)):
        value = data.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            problems.append((key, f"expected an integer >= {low}, got {value!r}"))
    for key, high in (("temperature", 100.0), ("top_p", 1.0)):
        value = data.get(key, 0.0 if key == "temperature" else 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
            problems.append((key, f"expected a number in [0, {high}], got {value!r}"))
    if data.get("engine", "auto") not in ("auto", "transformers", "vllm"):
        problems.append(("engine", f"expected auto, transformers or vllm, got {data['engine']!r}"))
    if data.get("architecture", "auto") not in ("auto", "causal", "seq2seq"):
        problems.append(("architecture", f"expected auto, causal or seq2seq, got {data['architecture']!r}"))
    if problems:
        raise SpecError(problems)
    return GenerateSpec(**data)


def read_prompts(path: str) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("prompt"), str):
                    raise SpecError([("prompts_path", f"line {number}: needs 'id' and a string 'prompt'")])
                rows.append(row)
    return rows


def load_for_generation(spec: GenerateSpec):
    """(model, tokenizer, seq2seq, model_dir) with an adapter merged in, on the best device."""
    import torch

    from workers.training.model import is_seq2seq, load_base, load_tokenizer
    from workers.training.students import resolve_student

    base = spec.weights_dir or resolve_student(spec.base_model)
    seq2seq = is_seq2seq(base, spec.architecture)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = load_base(base, seq2seq=seq2seq, dtype=dtype)
    tokenizer_dir = base
    if spec.adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter_dir).merge_and_unload()
        if Path(spec.adapter_dir, "tokenizer_config.json").is_file():
            tokenizer_dir = spec.adapter_dir
    model.to("cuda" if cuda else "cpu")
    return model, load_tokenizer(tokenizer_dir), seq2seq, base


def _vllm_wanted(spec: GenerateSpec, seq2seq: bool) -> bool:
    if spec.engine == "transformers" or seq2seq:
        return False
    import torch

    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if spec.engine == "vllm" and not available:
        raise SpecError([("engine", "vllm is not installed here or there is no CUDA device")])
    return available


def run(spec: GenerateSpec) -> int:
    from workers.training.formats import encode_prompt
    from workers.training.generation import generate, generate_vllm
    from workers.training.model import is_seq2seq, load_tokenizer
    from workers.training.students import resolve_student

    rows = read_prompts(spec.prompts_path)
    prompts = [row["prompt"] for row in rows]
    base = spec.weights_dir or resolve_student(spec.base_model)
    kwargs = {"max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature, "top_p": spec.top_p}
    if _vllm_wanted(spec, is_seq2seq(base, spec.architecture)):
        tokenizer = load_tokenizer(spec.adapter_dir if spec.adapter_dir else base)
        ids = [encode_prompt(tokenizer, prompt) for prompt in prompts]
        outputs = generate_vllm(base, ids, adapter_dir=spec.adapter_dir, seed=spec.seed, **kwargs)
    else:
        model, tokenizer, seq2seq, _ = load_for_generation(spec)
        outputs = generate(
            model, tokenizer, prompts, batch_size=spec.batch_size, seed=spec.seed, seq2seq=seq2seq, **kwargs
        )
    output = Path(spec.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = output.with_name(output.name + ".tmp")
    with work.open("w", encoding="utf-8") as handle:
        for row, out in zip(rows, outputs, strict=True):
            handle.write(json.dumps({"id": row["id"], "text": out.text, "tokens": out.tokens}) + "\n")
    os.replace(work, output)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.training.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    try:
        text = Path(args.spec).read_text(encoding="utf-8")
        spec = generate_spec_from_dict(json.loads(text))
    except (OSError, json.JSONDecodeError) as error:
        print(f"bad spec {args.spec}: {error}", file=sys.stderr)
        return 2
    except SpecError as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return run(spec)
    except SpecError as error:
        print(f"bad spec {args.spec}:\n{error}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - the exit code is the contract; the traceback goes to the log
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
