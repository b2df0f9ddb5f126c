"""Loading a student for training or generation: architecture, tokenizer, LoRA (peft) or full."""

from __future__ import annotations

import dataclasses

import torch

from workers.training.spec import SpecError, TrainSpec
from workers.training.students import resolve_student

# Attention implementations that keep packed examples apart from restarting position ids alone.
PADDING_FREE_ATTENTION = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")


@dataclasses.dataclass
class Student:
    model: torch.nn.Module
    tokenizer: object
    seq2seq: bool
    path: str  # the resolved base model folder (or hub id)


def is_seq2seq(path: str, architecture: str = "auto") -> bool:
    if architecture != "auto":
        return architecture == "seq2seq"
    from transformers import AutoConfig

    return bool(getattr(AutoConfig.from_pretrained(path), "is_encoder_decoder", False))


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # many causal tokenizers have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def attention_for(setting: str, *, seq2seq: bool) -> str | None:
    """auto: FlashAttention 2 (variable-length kernels: packed rows cost no masked work) where it is
    installed and a GPU is there; otherwise transformers' default (sdpa)."""
    if setting != "auto":
        return setting
    import importlib.util

    if not seq2seq and torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None


def load_base(path: str, *, seq2seq: bool, dtype: torch.dtype = torch.float32, attention: str = "auto"):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    implementation = attention_for(attention, seq2seq=seq2seq)
    extra = {"attn_implementation": implementation} if implementation else {}
    return loader.from_pretrained(path, dtype=dtype, **extra)


def load_student(spec: TrainSpec) -> Student:
    """The base model with LoRA adapters (or all weights trainable) and its tokenizer."""
    path = resolve_student(spec.base_model)
    try:
        seq2seq = is_seq2seq(path, spec.architecture)
    except OSError as error:
        raise SpecError([("base_model", f"cannot load {spec.base_model!r}: {error}")]) from error
    tokenizer = load_tokenizer(path)
    model = load_base(path, seq2seq=seq2seq, attention=spec.attn_implementation)
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if spec.finetune == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        config = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules=spec.lora_target_modules,
            task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
        )
        model = get_peft_model(model, config)
    return Student(model=model, tokenizer=tokenizer, seq2seq=seq2seq, path=path)


def supports_padding_free(model: torch.nn.Module, *, seq2seq: bool) -> bool:
    """True where packed examples stay apart: a causal model, an attention kernel that reads restarting
    position ids, and a transformers that builds the packed mask from them."""
    if seq2seq:
        return False
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        return False
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) in PADDING_FREE_ATTENTION


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
