"""How a prompt and its target become text and token ids, the same way for training and for generation.

Causal students: the tokenizer's chat template when it has one (a user turn, then the assistant turn the
loss is taken on, ending with the template's end-of-turn token); otherwise the plain format

    ### Instruction:
    {prompt}

    ### Response:
    {target}<eos>

Seq2seq students: the prompt is the encoder input as it is, the target (plus EOS) the decoder's labels.
"""

from __future__ import annotations

PLAIN_PROMPT = "### Instruction:\n{prompt}\n\n### Response:\n"


def _messages(prompt: str, target: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    if target is not None:
        messages.append({"role": "assistant", "content": target})
    return messages


def prompt_text(tokenizer, prompt: str) -> str:
    """The text a causal student sees before it answers."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(_messages(prompt), add_generation_prompt=True, tokenize=False)
    return PLAIN_PROMPT.format(prompt=prompt)


def target_text(tokenizer, prompt: str, target: str) -> str:
    """The text the loss is taken on: the answer and the token that ends it."""
    eos = tokenizer.eos_token or ""
    if getattr(tokenizer, "chat_template", None):
        head = prompt_text(tokenizer, prompt)
        full = tokenizer.apply_chat_template(_messages(prompt, target), tokenize=False)
        if full.startswith(head):
            tail = full[len(head) :]
            # Stop after the end-of-turn token: what follows (a newline) is never generated.
            if eos and eos in tail:
                tail = tail[: tail.rindex(eos) + len(eos)]
            return tail
    return target + eos


def _adds_bos(tokenizer, text: str) -> bool:
    """Add the tokenizer's special tokens unless the template already wrote a BOS."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def encode_prompt(tokenizer, prompt: str, *, seq2seq: bool = False) -> list[int]:
    if seq2seq:
        ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids.append(tokenizer.eos_token_id)
        return ids
    text = prompt_text(tokenizer, prompt)
    return list(tokenizer(text, add_special_tokens=_adds_bos(tokenizer, text))["input_ids"])


def encode_target(tokenizer, prompt: str, target: str, *, seq2seq: bool = False) -> list[int]:
    if seq2seq:
        ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        return ids
    return list(tokenizer(target_text(tokenizer, prompt, target), add_special_tokens=False)["input_ids"])
