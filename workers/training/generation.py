"""Batched generation with a student: left-padded, greedy or sampled, seeded.

Prompts are formatted exactly as in training (formats.encode_prompt). Batches are built from prompts of
similar length (sorted, then put back in the caller's order), left-padded with an attention mask so every
row's new tokens follow its own last prompt token; transformers derives position ids from the mask, which
is why a batch gives what one-at-a-time gives. vLLM is used when it is importable and CUDA is present
(`generate_vllm`), transformers otherwise.
"""

from __future__ import annotations

import dataclasses

import torch

from workers.training.formats import encode_prompt


@dataclasses.dataclass(frozen=True)
class Generated:
    text: str
    tokens: int  # new tokens, the end-of-turn token included, padding after it not


def _stop_ids(model, tokenizer) -> set[int]:
    stop = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        stop.update(configured if isinstance(configured, list) else [configured])
    return stop


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    seq2seq: bool | None = None,
) -> list[Generated]:
    """One Generated per prompt, in the prompts' order. temperature 0 is greedy."""
    if seq2seq is None:
        seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop = _stop_ids(model, tokenizer)
    encoded = [encode_prompt(tokenizer, prompt, seq2seq=seq2seq) for prompt in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    results: list[Generated | None] = [None] * len(prompts)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, index in enumerate(chunk):
                ids = encoded[index]
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention[row, width - len(ids) :] = 1
            out = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
                eos_token_id=sorted(stop) or None,
                **sampling,
            )
            new = out[:, 1:] if seq2seq else out[:, width:]  # seq2seq output starts with the decoder start
            for row, index in enumerate(chunk):
                ids = new[row].tolist()
                cut = next((n + 1 for n, token in enumerate(ids) if token in stop), len(ids))
                ids = ids[:cut]
                results[index] = Generated(tokenizer.decode(ids, skip_special_tokens=True).strip(), len(ids))
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


def generate_vllm(
    model_dir: str,
    prompt_ids: list[list[int]],
    *,
    adapter_dir: str | None,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    lora_rank: int = 64,
) -> list[Generated]:
    """The same contract through vLLM (GPU workers that have it installed)."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    engine = LLM(model=model_dir, seed=seed, enable_lora=adapter_dir is not None, max_lora_rank=lora_rank)
    params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    request = LoRARequest("student", 1, adapter_dir) if adapter_dir else None
    outputs = engine.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], params, lora_request=request)
    return [Generated(o.outputs[0].text.strip(), len(o.outputs[0].token_ids)) for o in outputs]
