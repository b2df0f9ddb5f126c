"""Real (tiny) training runs: every trainable parameter changes, the loss falls, and final/ holds what
the contract says."""

import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workers.training.data import encode_rows, read_rows
from workers.training.evaluation import mean_loss
from workers.training.model import load_student
from workers.training.trainer import seed_everything, train


def initial_trainable(spec) -> tuple[dict[str, torch.Tensor], float, list[str]]:
    """The run's starting point, rebuilt as the trainer builds it (same seed), its loss on the data, and
    the names of its trainable parameters."""
    seed_everything(spec.seed)
    student = load_student(spec)
    examples = encode_rows(
        read_rows(spec.data_path), student.tokenizer, seq2seq=student.seq2seq, max_length=spec.max_length
    )
    loss = mean_loss(
        student.model,
        examples,
        batch_size=8,
        seq2seq=student.seq2seq,
        pad_id=student.tokenizer.pad_token_id,
        device="cpu",
    )
    if spec.finetune == "lora":
        from peft import get_peft_model_state_dict

        weights = get_peft_model_state_dict(student.model)
    else:
        weights = student.model.state_dict()
    trainable = [name for name, p in student.model.named_parameters() if p.requires_grad]
    return {k: v.detach().clone() for k, v in weights.items()}, loss, trainable


@pytest.mark.parametrize(
    ("base_model", "finetune"),
    [
        ("builtin:tiny", "full"),
        ("builtin:tiny", "lora"),
        ("builtin:tiny-seq2seq", "full"),
        ("builtin:tiny-seq2seq", "lora"),
    ],
)
def test_every_trainable_parameter_changes_and_the_loss_falls(make_spec, base_model, finetune):
    spec = make_spec(
        base_model=base_model,
        finetune=finetune,
        max_steps=12,
        learning_rate=1e-2 if finetune == "lora" else 3e-3,
        eval_data_path=make_spec().data_path,
    )
    before, loss_before, trainable = initial_trainable(spec)

    result = train(spec)

    final = Path(result["final_dir"])
    saved = load_file(final / ("adapter_model.safetensors" if finetune == "lora" else "model.safetensors"))
    shared = sorted(set(saved) & set(before))
    assert len(shared) >= (4 if finetune == "lora" else 10)
    if finetune == "lora":
        assert set(saved) == set(before)  # the adapter holds exactly the trainable tensors
        # peft names them without the adapter's name: one saved tensor per trainable parameter.
        assert sorted(name.replace(".default.", ".") for name in trainable) == sorted(shared)
    else:
        assert set(trainable) <= set(shared)  # every trainable parameter is saved and compared
    unchanged = [name for name in shared if torch.equal(saved[name], before[name])]
    assert unchanged == []
    assert result["eval_loss"] < loss_before - 0.1  # deterministic on CPU: no noise to allow for
    assert result["steps"] == 12 and result["status"] == "succeeded"
    lines = [json.loads(line) for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 13))
    assert {"step", "epoch", "loss", "lr", "tokens_per_s", "gpu_mem_mb", "eta_s"} <= set(lines[0])
    assert result["packing"] == ("length_grouped" if "seq2seq" in base_model else "padding_free")
    listed = {entry["path"] for entry in result["files"]}
    assert "final/training_spec.json" in listed and all(len(entry["sha256"]) == 64 for entry in result["files"])


def test_full_run_saves_a_loadable_model_and_lora_an_adapter_for_its_base(make_spec, tmp_path):
    from peft import PeftConfig

    lora = train(make_spec(finetune="lora", output_dir=str(tmp_path / "lora"), max_steps=2))
    config = PeftConfig.from_pretrained(lora["final_dir"])
    assert Path(config.base_model_name_or_path).name.startswith("tiny-v")
    full = train(make_spec(finetune="full", output_dir=str(tmp_path / "full"), max_steps=2))
    assert (Path(full["final_dir"]) / "config.json").is_file()
    assert not (Path(full["final_dir"]) / "adapter_config.json").exists()


def test_gradient_accumulation_and_checkpointing_train_the_same_examples(make_spec, tmp_path):
    """Two micro-batches of 2 with accumulation see what one batch of 4 sees; gradient checkpointing
    recomputes activations but not the result."""
    plain = train(make_spec(batch_size=2, grad_accum=2, max_steps=3, output_dir=str(tmp_path / "a")))
    ckpt = train(
        make_spec(batch_size=2, grad_accum=2, max_steps=3, gradient_checkpointing=True, output_dir=str(tmp_path / "b"))
    )
    assert plain["tokens"] == ckpt["tokens"]
    assert ckpt["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-4)


def test_cosine_warmup_schedule_is_logged(make_spec):
    spec = make_spec(max_steps=10, warmup_ratio=0.2, lr_schedule="cosine", learning_rate=1e-3, save_every=100)
    train(spec)
    lrs = [json.loads(line)["lr"] for line in (Path(spec.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(5e-4) and lrs[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:])) and lrs[-1] < 1e-4
