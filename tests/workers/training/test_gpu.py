"""On a CUDA device: bf16 autocast with padding-free packing (never part of make test)."""

import pytest
import torch

from workers.training.data import collate, encode_rows, read_rows
from workers.training.losses import forward, per_example_loss, token_losses
from workers.training.model import load_base, load_tokenizer
from workers.training.students import resolve_student
from workers.training.trainer import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_bf16_padding_free_run_on_cuda(make_spec):
    spec = make_spec(bf16="auto", packing=True, max_steps=12, eval_data_path=make_spec().data_path)
    result = train(spec)
    assert result["bf16"] is torch.cuda.is_bf16_supported()
    assert result["packing"] == "padding_free"
    assert result["eval_loss"] < 7.0 and result["train_loss"] == result["train_loss"]  # fell, and no NaN


def test_packed_equals_padded_under_bf16_autocast(sft_data):
    path = resolve_student("builtin:tiny")
    model, tokenizer = load_base(path, seq2seq=False).cuda().eval(), load_tokenizer(path)
    examples = encode_rows(read_rows(sft_data), tokenizer, seq2seq=False, max_length=96)

    def losses(padding_free):
        batch = collate(examples, seq2seq=False, padding_free=padding_free, pad_id=tokenizer.pad_token_id)
        batch = {k: v.cuda() for k, v in batch.items()}
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            per_token, index = token_losses(forward(model, batch, seq2seq=False).logits, batch, seq2seq=False)
        return per_example_loss(per_token, index, len(examples))

    torch.testing.assert_close(losses(True), losses(False), rtol=2e-2, atol=2e-2)
