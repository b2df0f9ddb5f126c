"""Tokenised examples, the loss mask, batch plans, and packing without leaks across examples."""

import pytest
import torch

from workers.training.data import IGNORE, DataError, collate, encode_rows, plan_epoch, read_rows, units_of
from workers.training.formats import PLAIN_PROMPT, prompt_text
from workers.training.losses import forward, per_example_loss, token_losses
from workers.training.model import load_base, load_tokenizer, supports_padding_free
from workers.training.students import resolve_student

from .conftest import PAIRS, write_jsonl


@pytest.fixture(scope="module")
def tiny():
    path = resolve_student("builtin:tiny")
    model = load_base(path, seq2seq=False).eval()
    return model, load_tokenizer(path)


def test_loss_is_on_target_tokens_only_with_the_chat_template(tiny):
    _, tokenizer = tiny
    [example] = encode_rows([{"prompt": "Name a colour.", "target": "Blue."}], tokenizer, seq2seq=False, max_length=64)
    head = tokenizer("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    tail = tokenizer("Blue.<|im_end|>", add_special_tokens=False)["input_ids"]
    assert example.input_ids == head["input_ids"] + tail
    assert example.labels == [IGNORE] * len(head["input_ids"]) + tail


def test_plain_format_without_a_chat_template():
    plain = load_tokenizer(resolve_student("builtin:tiny"))
    plain.chat_template = None
    assert prompt_text(plain, "Hi") == PLAIN_PROMPT.format(prompt="Hi") == "### Instruction:\nHi\n\n### Response:\n"
    [example] = encode_rows([{"prompt": "Hi", "target": "Hello"}], plain, seq2seq=False, max_length=64)
    target = [t for t in example.labels if t != IGNORE]
    assert plain.decode(target) == "Hello<|im_end|>"


def test_long_rows_keep_the_prompt_end_and_the_target_start(tiny):
    _, tokenizer = tiny
    row = {"prompt": "word " * 200, "target": "answer " * 200}
    [example] = encode_rows([row], tokenizer, seq2seq=False, max_length=64)
    assert len(example.input_ids) == 64
    labelled = sum(1 for t in example.labels if t != IGNORE)
    assert labelled == 32  # half the window for the target when the prompt alone would fill it
    assert tokenizer.decode(example.input_ids[:32]).endswith("assistant\n")


def test_bad_rows_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "target": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(DataError, match=r"data_path: line 2: needs string fields 'prompt' and 'target'"):
        read_rows(path)


def test_packed_batches_give_the_unpacked_per_example_loss_and_nothing_leaks(tiny, tmp_path):
    model, tokenizer = tiny
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", [{"prompt": p, "target": t} for p, t in PAIRS[:4]]))
    examples = encode_rows(rows, tokenizer, seq2seq=False, max_length=96)
    assert supports_padding_free(model, seq2seq=False)

    def losses(batch_examples, padding_free):
        batch = collate(batch_examples, seq2seq=False, padding_free=padding_free, pad_id=tokenizer.pad_token_id)
        with torch.no_grad():
            per_token, index = token_losses(forward(model, batch, seq2seq=False).logits, batch, seq2seq=False)
        return per_example_loss(per_token, index, len(batch_examples)), batch

    padded, padded_batch = losses(examples, False)
    packed, packed_batch = losses(examples, True)
    assert packed_batch["input_ids"].shape == (1, sum(len(e.input_ids) for e in examples))
    assert int((packed_batch["position_ids"] == 0).sum()) == len(examples)
    assert padded_batch["input_ids"].shape[0] == len(examples)
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)
    alone = torch.stack([losses([e], True)[0][0] for e in examples])
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)
    # A different first example changes nothing for the ones packed after it.
    changed = encode_rows(
        [{"prompt": "Something else entirely.", "target": "Yes."}], tokenizer, seq2seq=False, max_length=96
    )
    after, _ = losses(changed + examples[1:], True)
    torch.testing.assert_close(after[1:], packed[1:], rtol=1e-5, atol=1e-5)


def test_epoch_plans_are_seeded_and_cover_every_unit_once():
    units = [[i] for i in range(23)]
    lengths = [(i * 7) % 13 + 1 for i in range(23)]
    for grouped in (False, True):
        plan = plan_epoch(units, lengths, batch_size=4, seed=3, epoch=0, group_by_length=grouped)
        assert sorted(i for batch in plan for i in batch) == list(range(23))
        assert plan == plan_epoch(units, lengths, batch_size=4, seed=3, epoch=0, group_by_length=grouped)
        assert plan != plan_epoch(units, lengths, batch_size=4, seed=3, epoch=1, group_by_length=grouped)
    grouped = plan_epoch(units, lengths, batch_size=4, seed=3, epoch=0, group_by_length=True)
    padding = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in grouped)
    shuffled = plan_epoch(units, lengths, batch_size=4, seed=3, epoch=0, group_by_length=False)
    assert padding < sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in shuffled)


def test_step_by_step_rows_pair_by_their_input():
    rows = [
        {"prompt": "predict: 2+2?", "target": "4", "kind": "predict"},
        {"prompt": "explain: 3+3?", "target": "3 and 3 make 6", "kind": "explain"},
        {"prompt": "explain: 2+2?", "target": "2 and 2 make 4", "kind": "explain"},
        {"prompt": "predict: 3+3?", "target": "6", "kind": "predict"},
    ]
    assert units_of(rows, rows, pair=True) == [[0, 2], [1, 3]]
    assert units_of(rows, rows, pair=False) == [[0], [1], [2], [3]]


def test_seq2seq_examples_put_the_target_in_the_labels():
    path = resolve_student("builtin:tiny-seq2seq")
    tokenizer = load_tokenizer(path)
    [example] = encode_rows([{"prompt": "Name a colour.", "target": "Blue."}], tokenizer, seq2seq=True, max_length=64)
    assert example.input_ids[-1] == tokenizer.eos_token_id and example.labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(example.labels, skip_special_tokens=True) == "Blue."
    batch = collate([example, example], seq2seq=True, padding_free=True, pad_id=tokenizer.pad_token_id)
    assert "position_ids" not in batch and batch["labels"].shape == (2, len(example.labels))
