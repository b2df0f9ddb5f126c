"""Merging a LoRA adapter into its base: the merged model computes what the adapter model computes, is
plain safetensors with a manifest that checks, and a changed adapter is refused."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workers.training.merge import MANIFEST, folder_manifest, main, manifest_sha256, sha256_file
from workers.training.model import load_base, load_tokenizer
from workers.training.students import resolve_student
from workers.training.trainer import train

INPUTS = ["Name a primary colour.", "What is two plus two? Answer in words, please.", "tac"]


@pytest.fixture(params=["builtin:tiny", "builtin:tiny-seq2seq"])
def adapter(request, make_spec, tmp_path) -> tuple[str, Path]:
    spec = make_spec(
        base_model=request.param, finetune="lora", max_steps=4, learning_rate=5e-2, output_dir=str(tmp_path / "run")
    )
    return request.param, Path(train(spec)["final_dir"])


def _merge(tmp_path: Path, base_model: str, adapter_dir: Path, **extra) -> int:
    spec = tmp_path / "merge.json"
    data = {"base_model": base_model, "adapter_dir": str(adapter_dir), "output_dir": str(tmp_path / "m"), **extra}
    spec.write_text(json.dumps(data))
    return main(["--spec", str(spec)])


@torch.no_grad()
def _logits(model, tokenizer, seq2seq: bool) -> list[torch.Tensor]:
    model.eval()
    out = []
    for text in INPUTS:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        if seq2seq:
            decoder = torch.tensor([[model.config.decoder_start_token_id, *ids[0, :3].tolist()]])
            out.append(model(input_ids=ids, decoder_input_ids=decoder).logits[0])
        else:
            out.append(model(input_ids=ids).logits[0])
    return out


def test_the_merged_model_gives_the_adapter_models_logits(adapter, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    base_model, adapter_dir = adapter
    seq2seq = "seq2seq" in base_model
    assert _merge(tmp_path, base_model, adapter_dir, adapter_sha256=manifest_sha256(folder_manifest(adapter_dir))) == 0

    result = json.loads((tmp_path / "m" / "result.json").read_text())
    merged_dir = Path(result["final_dir"])
    assert result["status"] == "succeeded" and merged_dir == (tmp_path / "m" / "merged").resolve()
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    merged = loader.from_pretrained(merged_dir)
    tokenizer = load_tokenizer(str(merged_dir))
    base_path = resolve_student(base_model)
    with_adapter = PeftModel.from_pretrained(load_base(base_path, seq2seq=seq2seq), str(adapter_dir))
    plain = load_base(base_path, seq2seq=seq2seq)

    expected = _logits(with_adapter, tokenizer, seq2seq)
    got = _logits(merged, tokenizer, seq2seq)
    untouched = _logits(plain, tokenizer, seq2seq)
    for want, have, before in zip(expected, got, untouched, strict=True):
        assert torch.allclose(have, want, atol=1e-4, rtol=0), (have - want).abs().max()
        assert (want - before).abs().max() > 1e-2  # the adapter matters: equal logits are not trivially so

    weights = load_file(merged_dir / "model.safetensors")
    assert weights and not any("lora" in name for name in weights)
    assert not (merged_dir / "adapter_config.json").exists()
    assert json.loads((merged_dir / "training_spec.json").read_text())["finetune"] == "lora"
    about = json.loads((merged_dir / "merge.json").read_text())
    assert about["adapter_sha256"] == manifest_sha256(folder_manifest(adapter_dir))
    assert about["base_model"] == base_model
    # SHA256SUMS lists every other file with its hash, in `sha256sum -c` form.
    lines = (merged_dir / MANIFEST).read_text().splitlines()
    listed = {path: digest for digest, path in (line.split("  ", 1) for line in lines)}
    on_disk = {p.relative_to(merged_dir).as_posix() for p in merged_dir.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(listed) == on_disk and all(sha256_file(merged_dir / p) == d for p, d in listed.items())
    assert {f["path"] for f in result["files"]} == {f"merged/{p}" for p in (*on_disk, MANIFEST)}


def test_merging_twice_writes_the_same_files(make_spec, tmp_path):
    spec = make_spec(finetune="lora", max_steps=2, learning_rate=5e-2, output_dir=str(tmp_path / "run"))
    adapter_dir = Path(train(spec)["final_dir"])
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert _merge(first, "builtin:tiny", adapter_dir) == 0 and _merge(second, "builtin:tiny", adapter_dir) == 0
    assert folder_manifest(first / "m" / "merged") == folder_manifest(second / "m" / "merged")


def test_an_adapter_that_does_not_match_its_sha256_is_not_merged(make_spec, tmp_path, capsys):
    spec = make_spec(finetune="lora", max_steps=1, output_dir=str(tmp_path / "run"))
    adapter_dir = Path(train(spec)["final_dir"])
    recorded = manifest_sha256(folder_manifest(adapter_dir))
    (adapter_dir / "adapter_config.json").write_text(
        (adapter_dir / "adapter_config.json").read_text().replace('"r": 4', '"r": 4 ')
    )
    assert _merge(tmp_path, "builtin:tiny", adapter_dir, adapter_sha256=recorded) == 2
    assert "adapter_sha256: " in capsys.readouterr().err
    assert json.loads((tmp_path / "m" / "result.json").read_text())["status"] == "bad_spec"
    assert not (tmp_path / "m" / "merged").exists()


def test_a_bad_merge_spec_exits_2_and_names_each_field(tmp_path, capsys):
    spec = tmp_path / "merge.json"
    spec.write_text(json.dumps({"adapter_dir": str(tmp_path), "adapter_sha256": "xyz", "colour": "red"}))
    assert main(["--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    for line in (
        "colour: unknown field",
        "base_model: required",
        "output_dir: required",
        "adapter_dir: " + str(tmp_path) + " holds no LoRA adapter",
        "adapter_sha256: expected 64 lowercase hex digits",
    ):
        assert line in err
