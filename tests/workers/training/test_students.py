"""Built-in students: built offline, deterministically, once, under a lock."""

import hashlib
import threading
from pathlib import Path

import pytest

from workers.training.generation import generate
from workers.training.model import load_base, load_tokenizer
from workers.training.students import MANIFEST, StudentError, resolve_student


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_builtin_tiny_builds_offline_and_twice_gives_identical_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first = Path(resolve_student("builtin:tiny", cache=tmp_path / "one"))
    second = Path(resolve_student("builtin:tiny", cache=tmp_path / "two"))
    assert digests(first) == digests(second)
    assert {"config.json", "model.safetensors", "tokenizer.json", MANIFEST} <= set(digests(first))
    tokenizer = load_tokenizer(str(first))
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>" and len(tokenizer) == 2048
    assert tokenizer.decode(tokenizer("Café, naïve — ok")["input_ids"]) == "Café, naïve — ok"  # byte-level


def test_two_builders_at_once_make_one_folder(tmp_path):
    found, errors = [], []

    def build():
        try:
            found.append(resolve_student("builtin:tiny-seq2seq", cache=tmp_path))
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(found)) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["tiny-seq2seq-v1"]
    assert load_base(found[0], seq2seq=True).config.is_encoder_decoder


def test_unknown_builtins_and_plain_names():
    with pytest.raises(StudentError, match="unknown builtin student 'builtin:huge'"):
        resolve_student("builtin:huge")
    assert resolve_student("/models/mine") == "/models/mine"


@pytest.mark.slow
def test_smollm2_converts_from_the_packaged_gguf_and_answers():
    path = Path(resolve_student("builtin:smollm2-135m"))
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.gguf"))
    model, tokenizer = load_base(str(path), seq2seq=False).eval(), load_tokenizer(str(path))
    assert 134_000_000 < model.num_parameters() < 135_000_000
    assert "<|im_start|>" in tokenizer.chat_template
    [answer] = generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=12)
    assert "Paris" in answer.text
