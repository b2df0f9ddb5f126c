"""The training loop: accelerate for devices, bf16 autocast and multi-GPU (accelerate launch / torchrun),
peft for LoRA, transformers' schedulers and padding-free collator; the methods' losses and the MoS
sampler are ours.

A custom loop rather than transformers' Trainer because two things here are per batch: MoS chooses each
batch's dataset from a distribution the run itself updates, and resuming after SIGKILL must give the
same weights as an undisturbed run, which needs the batch order to be a pure function of (seed, step)
plus state that the checkpoint holds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workers.training import checkpoint
from workers.training.data import (
    DataError,
    Example,
    collate,
    encode_rows,
    plan_epoch,
    read_rows,
    real_token_count,
    units_of,
)
from workers.training.evaluation import mean_loss
from workers.training.losses import forward, sft_loss, step_by_step_loss, token_losses
from workers.training.model import load_student, supports_padding_free
from workers.training.mos import MoSSampler, measure_rewards
from workers.training.spec import TrainSpec

SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class TrainingCancelled(Exception):
    """SIGTERM arrived; a checkpoint was saved at `step`."""

    def __init__(self, step: int) -> None:
        super().__init__(f"cancelled at step {step}")
        self.step = step


def use_bf16(setting: str) -> bool:
    if setting == "true":
        return True
    return setting == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Batches:
    """The run's micro-batches in order; for SFT and step-by-step a pure function of the global index."""

    def __init__(self, spec: TrainSpec, examples: list[Example], rows: list[dict], *, group_by_length: bool):
        self.spec, self.examples = spec, examples
        self.units = units_of(examples, rows, pair=spec.method == "step_by_step")
        self.lengths = [e.length for e in examples]
        self.group_by_length = group_by_length
        self.per_epoch = math.ceil(len(self.units) / spec.batch_size)
        self._plans: dict[int, list[list[int]]] = {}
        self.sampler = (
            MoSSampler(examples, self.units, spec.method_params, seed=spec.seed, batch_size=spec.batch_size)
            if spec.method == "mos"
            else None
        )

    def planned(self, index: int) -> list[int]:
        epoch, position = divmod(index, self.per_epoch)
        if epoch not in self._plans:
            self._plans = {
                epoch: plan_epoch(
                    self.units,
                    self.lengths,
                    batch_size=self.spec.batch_size,
                    seed=self.spec.seed,
                    epoch=epoch,
                    group_by_length=self.group_by_length,
                )
            }
        return self._plans[epoch][position]


def _total_steps(spec: TrainSpec, per_epoch: int, world: int) -> int:
    if spec.max_steps:
        return spec.max_steps
    return max(1, math.ceil(spec.epochs * per_epoch / (spec.grad_accum * world)))


def _check_kinds(spec: TrainSpec, examples: list[Example]) -> None:
    if spec.method == "step_by_step":
        bad = sorted({e.kind for e in examples} - {"predict", "explain"})
        if bad:
            raise DataError([("data_path", f"step_by_step rows need kind predict or explain, found {bad}")])


def train(spec: TrainSpec, *, stop: threading.Event | None = None, log=print) -> dict[str, Any]:
    """Run (or resume) the job; return result.json's content. Raises TrainingCancelled on `stop`."""
    from accelerate import Accelerator
    from transformers import get_scheduler

    stop = stop or threading.Event()
    seed_everything(spec.seed)
    bf16 = use_bf16(spec.bf16)
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no")
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)

    student = load_student(spec)
    model, tokenizer, seq2seq = student.model, student.tokenizer, student.seq2seq
    frozen_base = None
    if spec.method == "mos" and spec.method_params.get("reward") == "diff" and spec.finetune == "full":
        frozen_base = copy.deepcopy(model).eval().requires_grad_(False).to(accelerator.device)

    rows = read_rows(spec.data_path)
    examples = encode_rows(rows, tokenizer, seq2seq=seq2seq, max_length=spec.max_length)
    _check_kinds(spec, examples)
    padding_free = spec.packing and supports_padding_free(model, seq2seq=seq2seq)
    batches = _Batches(spec, examples, rows, group_by_length=spec.packing and not padding_free)
    total = _total_steps(spec, batches.per_epoch, world)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)
    scheduler = get_scheduler(
        SCHEDULES[spec.lr_schedule],
        optimizer,
        num_warmup_steps=math.ceil(spec.warmup_ratio * total),
        num_training_steps=total,
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    bare = accelerator.unwrap_model(model)

    state: dict[str, Any] = {"step": 0, "tokens": 0, "loss_sum": 0.0, "elapsed_s": 0.0, "mos": None}
    resume = checkpoint.find_resume_point(spec)
    resumed_from = None
    if resume is not None:
        state = checkpoint.load_checkpoint(resume, model=bare, optimizer=optimizer, scheduler=scheduler, rank=rank)
        resumed_from = state["step"]
        if batches.sampler is not None and state.get("mos"):
            batches.sampler.load_state(state["mos"])
        log(f"resumed from {resume} at step {resumed_from}")

    def save() -> None:
        if batches.sampler is not None:
            state["mos"] = batches.sampler.state()
        checkpoint.save_checkpoint(
            spec, model=bare, optimizer=optimizer, scheduler=scheduler, state=state, rank=rank, main=main
        )

    metrics = (output / "metrics.jsonl").open("a", encoding="utf-8") if main else None
    pad_id = tokenizer.pad_token_id
    model.train()
    started = time.monotonic() - state["elapsed_s"]
    run_started, first_step = time.monotonic(), state["step"]
    try:
        while state["step"] < total:
            if _agreed(accelerator, stop.is_set()):
                save()
                raise TrainingCancelled(state["step"])
            step_started = time.monotonic()
            lr = scheduler.get_last_lr()[0]
            step_loss, tokens, parts, drawn = 0.0, 0, {}, []
            for micro in range(spec.grad_accum):
                if batches.sampler is not None:
                    picks = [batches.sampler.next_batch() for _ in range(world)]
                    dataset, indices = picks[rank]
                    drawn.append(dataset)
                else:
                    indices = batches.planned((state["step"] * spec.grad_accum + micro) * world + rank)
                chosen = [examples[i] for i in indices]
                batch = collate(chosen, seq2seq=seq2seq, padding_free=padding_free, pad_id=pad_id)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                sync = micro == spec.grad_accum - 1
                with accelerator.no_sync(model) if (world > 1 and not sync) else contextlib.nullcontext():
                    logits = forward(model, batch, seq2seq=seq2seq).logits
                    losses, index = token_losses(logits, batch, seq2seq=seq2seq)
                    if spec.method == "step_by_step":
                        loss, micro_parts = step_by_step_loss(
                            losses, index, [e.kind for e in chosen], float(spec.method_params.get("alpha", 0.5))
                        )
                        for key, value in micro_parts.items():
                            if value is not None:
                                parts.setdefault(key, []).append(value)
                    else:
                        loss = sft_loss(losses)
                    accelerator.backward(loss / spec.grad_accum)
                step_loss += float(loss.detach()) / spec.grad_accum
                tokens += real_token_count(batch, seq2seq=seq2seq) * world
            grad_norm = accelerator.clip_grad_norm_(params, spec.max_grad_norm) if spec.max_grad_norm > 0 else None
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens"] += tokens
            state["loss_sum"] += step_loss
            step = state["step"]

            record: dict[str, Any] = {
                "step": step,
                "epoch": _epoch(spec, batches, step, world),
                "loss": step_loss,
                "lr": lr,
            }
            if batches.sampler is not None:
                record["mos_dataset"] = drawn
                if batches.sampler.mixture.should_update(step):
                    rewards = measure_rewards(
                        batches.sampler,
                        bare,  # unwrapped: a LoRA model's disable_adapter() is not on the DDP wrapper
                        examples,
                        step,
                        seq2seq=seq2seq,
                        pad_id=pad_id,
                        device=accelerator.device,
                        frozen_base=frozen_base,
                    )
                    batches.sampler.mixture.update(rewards)
                    record["mos_rewards"] = [float(r) for r in rewards]
                record["mos_p"] = [float(p) for p in batches.sampler.mixture.probabilities()]
            record.update({k: float(np.mean(v)) for k, v in parts.items()})
            elapsed = time.monotonic() - step_started
            state["elapsed_s"] = time.monotonic() - started
            per_step = (time.monotonic() - run_started) / (step - first_step)
            record.update(
                {
                    "tokens_per_s": tokens / elapsed if elapsed > 0 else None,
                    "step_s": elapsed,
                    "gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
                    "eta_s": per_step * (total - step),
                    "grad_norm": None if grad_norm is None else float(grad_norm),
                }
            )
            if metrics is not None and (step % spec.log_every == 0 or step == total):
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            if step % spec.save_every == 0 and step < total:
                save()
    finally:
        if metrics is not None:
            metrics.close()

    result: dict[str, Any] = {
        "status": "succeeded",
        "steps": state["step"],
        "train_loss": state["loss_sum"] / max(1, state["step"]),
        "base_model": spec.base_model,
        "finetune": spec.finetune,
        "method": spec.method,
        "tokens": state["tokens"],
        "resumed_from": resumed_from,
        "packing": "padding_free" if padding_free else ("length_grouped" if spec.packing else "padded"),
        "bf16": bf16,
        "attention": getattr(bare.config, "_attn_implementation", None),
    }
    if batches.sampler is not None:
        result["mos_datasets"] = batches.sampler.names
        result["mos_p"] = [float(p) for p in batches.sampler.mixture.probabilities()]
        result["mos_start_p"] = [float(p) for p in batches.sampler.start_p]
    if spec.eval_data_path:
        eval_rows = read_rows(spec.eval_data_path, field="eval_data_path")
        eval_examples = encode_rows(eval_rows, tokenizer, seq2seq=seq2seq, max_length=spec.max_length)
        loss = mean_loss(
            model, eval_examples, batch_size=spec.batch_size, seq2seq=seq2seq, pad_id=pad_id, device=accelerator.device
        )
        result.update({"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 80.0))})
        # Rows that name their dataset (MoS's held-out skills) are also measured dataset by dataset.
        by_dataset: dict[str, Any] = {}
        for name in sorted({example.dataset for example in eval_examples if example.dataset}):
            part = [example for example in eval_examples if example.dataset == name]
            part_loss = mean_loss(
                model, part, batch_size=spec.batch_size, seq2seq=seq2seq, pad_id=pad_id, device=accelerator.device
            )
            by_dataset[name] = {"rows": len(part), "loss": part_loss, "perplexity": math.exp(min(part_loss, 80.0))}
        if by_dataset:
            result["eval_datasets"] = by_dataset
    accelerator.wait_for_everyone()
    if main:
        result.update(save_final(spec, bare, tokenizer))
    return result


def _epoch(spec: TrainSpec, batches: _Batches, step: int, world: int) -> float:
    return step * spec.grad_accum * world / batches.per_epoch


def _agreed(accelerator, flag: bool) -> bool:
    """Every rank stops at the same step, whichever of them saw the signal."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def save_final(spec: TrainSpec, model: torch.nn.Module, tokenizer) -> dict[str, Any]:
    """final/: the adapter (LoRA) or the whole model (full) as safetensors, the tokenizer and the spec."""
    import hashlib
    import os
    import shutil

    output = Path(spec.output_dir)
    work, final = output / ".final.tmp", output / "final"
    shutil.rmtree(work, ignore_errors=True)
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    spec.save(work / "training_spec.json")
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    files = []
    for path in sorted(p for p in final.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        files.append(
            {"path": str(path.relative_to(output)), "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
        )
    return {"final_dir": str(final.resolve()), "files": files}
