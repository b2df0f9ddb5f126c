"""Training and generation throughput of the real trainer on a Qwen2-0.5B-class model (random weights).

    python bench/train_throughput.py [--small] [--steps 30] [--batch-size 8] [--max-length 512]
                                     [--peak-tflops X] [--json bench/out/train_throughput.json]

The model is Qwen2-0.5B's architecture from its config alone (24 layers, hidden 896, 14 heads, 2 KV heads,
MLP 4864, vocabulary 151,936, tied embeddings), random weights; `--small` shrinks it (4 layers, hidden
128, vocabulary 8,192) for CPUs. The data are real instruction/answer pairs with Alpaca's length mix:
`LLaMA-Factory_alpaca_en_demo.json` (Alpaca-GPT4) from ../shared/data when it is there, else the shipped
Self-Instruct demo answers, tokenised with builtin:tiny's byte-level BPE (token ids fit the larger
vocabulary; the lengths are what matter). Every run goes through `workers.training.trainer.train`:
full and LoRA (r=16, all linear layers) fine-tuning, each with padding-free packing and with padded
batches of the same examples, on the same steps. tokens/s counts real tokens (no padding) over the steps
after the first `--warmup`; MFU = tokens/s x FLOPs per token / peak, with 6N (full) or 4N (LoRA: no
weight gradients for the frozen base) per token over the N matmul parameters (lm_head included) plus
12·layers·hidden·length for attention; the peak is --peak-tflops, or the dense bf16 figure of a known
GPU. Then batched generation against one prompt at a time with the same prompts and greedy decoding.
Run time is bounded by --steps and the prompt count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = Path(os.environ.get("RETORT_SHARED_DATA", ROOT.parent / "shared" / "data"))
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def qwen2_config(small: bool):
    from transformers import Qwen2Config

    if small:
        shape = {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": 8192}  # fmt: skip
    else:
        shape = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
                 "num_key_value_heads": 2, "vocab_size": 151936}  # fmt: skip
    return Qwen2Config(**shape, max_position_embeddings=32768, rope_theta=1_000_000.0, tie_word_embeddings=True)


def pairs() -> tuple[list[dict], str]:
    alpaca = SHARED / "LLaMA-Factory_alpaca_en_demo.json"
    if alpaca.is_file():
        rows = json.loads(alpaca.read_text(encoding="utf-8"))
        out = [
            {"prompt": r["instruction"] + ("\n\n" + r["input"] if r["input"] else ""), "target": r["output"]}
            for r in rows
        ]
        return out, "Alpaca-GPT4 (LLaMA-Factory demo, 999 pairs)"
    path = ROOT / "demo_data" / "self-instruct_text-davinci-003_predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"prompt": r["prompt"], "target": r["response"]} for r in rows], "Self-Instruct demo answers (252 pairs)"


def build_model(folder: Path, small: bool) -> int:
    import torch
    from transformers import Qwen2ForCausalLM

    from workers.training.model import load_tokenizer
    from workers.training.students import resolve_student

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(qwen2_config(small))
    tokenizer = load_tokenizer(resolve_student("builtin:tiny"))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.num_parameters()


def flops_per_token(config, mean_length: float, *, lora: bool) -> float:
    layer = config.num_hidden_layers * (
        config.hidden_size * config.hidden_size * 2  # q and o
        + 2 * config.hidden_size * (config.hidden_size // config.num_attention_heads) * config.num_key_value_heads
        + 3 * config.hidden_size * config.intermediate_size
    )
    matmul = layer + config.vocab_size * config.hidden_size  # the lm_head is a real matmul
    attention = 12 * config.num_hidden_layers * config.hidden_size * mean_length
    return (4 if lora else 6) * matmul + attention


def peak_tflops(given: float | None) -> tuple[float | None, str]:
    import torch

    if not torch.cuda.is_available():
        return given, "CPU: " + _cpu_name()
    name = torch.cuda.get_device_name(0)
    if given:
        return given, name
    return next((tf for key, tf in PEAK_BF16_TFLOPS.items() if key in name), None), name


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{os.cpu_count()} cores, {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


def train_once(model_dir: Path, data: Path, out: Path, *, finetune: str, packing: bool, args) -> dict:
    from workers.training.spec import spec_from_dict
    from workers.training.trainer import train

    spec = spec_from_dict(
        {
            "job_id": 0,
            "base_model": str(model_dir),
            "data_path": str(data),
            "output_dir": str(out),
            "finetune": finetune,
            "packing": packing,
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "save_every": args.steps + 1,
            "learning_rate": 1e-4,
            "lora_r": 16,
            "lora_alpha": 32,
            "seed": 0,
        }
    )
    train(spec, log=lambda *_: None)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][args.warmup :]
    tokens = sum(line["tokens_per_s"] * line["step_s"] for line in lines)
    seconds = sum(line["step_s"] for line in lines)
    memory = max((line["gpu_mem_mb"] or 0) for line in lines) or None
    return {"tokens_per_s": tokens / seconds, "gpu_mem_mb": memory, "step_s": seconds / len(lines)}


def generation_rates(model_dir: Path, prompts: list[str], max_new_tokens: int) -> dict:
    import torch

    from workers.training.generation import generate
    from workers.training.model import load_base, load_tokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    model = load_base(str(model_dir), seq2seq=False, dtype=dtype).to("cuda" if cuda else "cpu").eval()
    tokenizer = load_tokenizer(str(model_dir))
    generate(model, tokenizer, prompts[:2], max_new_tokens=4)  # warm-up (kernels, allocator)
    rates = {}
    for label, batch_size in (("batched", len(prompts)), ("one at a time", 1)):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        outputs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        rates[label] = sum(o.tokens for o in outputs) / elapsed
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a shrunken model for CPUs")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 30; 8 small)")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of the rates (default 5; 2 small)")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per batch (default 8; 4 small)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per example (default 512; 256 small)")
    parser.add_argument("--prompts", type=int, default=None, help="generation prompts (default 32; 8 small)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per answer (default 64; 16 small)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    small = args.small
    args.steps = args.steps or (8 if small else 30)
    args.warmup = args.warmup if args.warmup is not None else (2 if small else 5)
    args.batch_size = args.batch_size or (4 if small else 8)
    args.max_length = args.max_length or (256 if small else 512)
    args.prompts = args.prompts or (8 if small else 32)
    args.new_tokens = args.new_tokens or (16 if small else 64)

    from transformers.utils import logging as hf_logging

    from workers.training.data import encode_rows, plan_epoch
    from workers.training.model import load_tokenizer

    hf_logging.disable_progress_bar()
    peak, device = peak_tflops(args.peak_tflops)
    rows, source = pairs()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="retort-bench-") as tmp:
        folder = Path(tmp)
        model_dir = folder / "model"
        parameters = build_model(model_dir, small)
        config = qwen2_config(small)
        data = folder / "data.jsonl"
        data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        lengths = [
            len(e.input_ids)
            for e in encode_rows(rows, load_tokenizer(str(model_dir)), seq2seq=False, max_length=args.max_length)
        ]
        mean_length = sum(lengths) / len(lengths)
        print(f"device: {device}; model: Qwen2-0.5B-class{' (small)' if small else ''}, {parameters / 1e6:.1f}M params")
        print(
            f"data: {source}; tokens per example mean {mean_length:.0f}, max {max(lengths)} (cut at {args.max_length})"
        )
        plan = plan_epoch([[i] for i in range(len(lengths))], lengths, batch_size=args.batch_size, seed=0, epoch=0,
                          group_by_length=False)  # fmt: skip
        padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in plan)
        waste = 1 - sum(lengths) / padded
        print(f"padded batches of {args.batch_size} (the trainer's shuffle): {waste:.0%} of positions are padding")
        print(f"runs: {args.steps} steps, batch {args.batch_size}, rates over the last {args.steps - args.warmup}")
        figures: dict = {
            "device": device,
            "small": small,
            "parameters": parameters,
            "data": source,
            "mean_length": mean_length,
            "padding_share": waste,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "train": {},
        }
        print("\n| fine-tuning | batches | tokens/s | MFU | peak GPU memory |\n|---|---|---|---|---|")
        for finetune in ("full", "lora"):
            for packing in (True, False):
                run = train_once(
                    model_dir, data, folder / f"{finetune}-{packing}", finetune=finetune, packing=packing, args=args
                )
                flops = flops_per_token(config, mean_length, lora=finetune == "lora")
                mfu = run["tokens_per_s"] * flops / (peak * 1e12) if peak else None
                label = "packed (padding-free)" if packing else "padded"
                figures["train"][f"{finetune}/{'packed' if packing else 'padded'}"] = {**run, "mfu": mfu}
                memory = f"{run['gpu_mem_mb']:.0f} MiB" if run["gpu_mem_mb"] else "n/a"
                mfu_text = f"{mfu:.1%}" if mfu is not None else "n/a"
                print(f"| {finetune} | {label} | {run['tokens_per_s']:,.0f} | {mfu_text} | {memory} |", flush=True)
        for finetune in ("full", "lora"):
            ratio = (
                figures["train"][f"{finetune}/packed"]["tokens_per_s"]
                / figures["train"][f"{finetune}/padded"]["tokens_per_s"]
            )
            figures["train"][f"{finetune}/packed_over_padded"] = ratio
            print(f"\n{finetune}: packed / padded = {ratio:.2f}x")
        prompts = [row["prompt"] for row in rows[: args.prompts]]
        rates = generation_rates(model_dir, prompts, args.new_tokens)
        figures["generation"] = {**rates, "prompts": len(prompts), "new_tokens": args.new_tokens}
        print(f"\ngeneration ({len(prompts)} prompts, up to {args.new_tokens} new tokens, greedy): "
              f"batched {rates['batched']:,.0f} tokens/s, one at a time {rates['one at a time']:,.0f} tokens/s, "
              f"{rates['batched'] / rates['one at a time']:.1f}x")  # fmt: skip
    figures["wall_s"] = time.monotonic() - started
    print(f"\nwall time {figures['wall_s']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
