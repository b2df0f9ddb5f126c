"""Batched, left-padded generation: greedy is deterministic and a batch answers as one-at-a-time does."""

import json

import pytest

from workers.training.generate import main as generate_main
from workers.training.generation import generate
from workers.training.model import load_base, load_tokenizer
from workers.training.students import resolve_student
from workers.training.trainer import train

PROMPTS = [
    "Hi",
    "Name a primary colour.",
    "Write a short greeting for a colleague who has just joined the team and sits by the window.",
    "What is two plus two?",
    "Is a tomato a fruit? Answer in one word, please.",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny student trained a little, so its greedy answers are not one repeated token."""
    from workers.training.spec import spec_from_dict

    from .conftest import PAIRS, write_jsonl

    folder = tmp_path_factory.mktemp("gen")
    data = write_jsonl(folder / "d.jsonl", [{"prompt": p, "target": t} for p, t in PAIRS])
    spec = spec_from_dict(
        {
            "job_id": 1,
            "base_model": "builtin:tiny",
            "data_path": str(data),
            "output_dir": str(folder / "out"),
            "finetune": "full",
            "max_steps": 30,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "save_every": 1000,
        }
    )
    final = train(spec)["final_dir"]
    return load_base(final, seq2seq=False).eval(), load_tokenizer(final), final


def test_greedy_is_deterministic_and_batched_equals_one_at_a_time(trained):
    model, tokenizer, _ = trained
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=16, batch_size=5)
    assert batched == generate(model, tokenizer, PROMPTS, max_new_tokens=16, batch_size=5)
    single = [generate(model, tokenizer, [p], max_new_tokens=16, batch_size=1)[0] for p in PROMPTS]
    assert batched == single
    assert len({out.text for out in batched}) > 1 and all(0 < out.tokens <= 16 for out in batched)


def test_sampling_is_seeded(trained):
    model, tokenizer, _ = trained
    first = generate(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=1.0, seed=5)
    assert first == generate(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=1.0, seed=5)
    assert first != generate(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=1.0, seed=6)


def test_seq2seq_batched_equals_one_at_a_time():
    path = resolve_student("builtin:tiny-seq2seq")
    model, tokenizer = load_base(path, seq2seq=True).eval(), load_tokenizer(path)
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=5)
    assert batched == [generate(model, tokenizer, [p], max_new_tokens=8)[0] for p in PROMPTS]


def test_the_command_writes_one_answer_per_prompt_in_order(trained, tmp_path):
    _, _, final = trained
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i * 10, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    spec = tmp_path / "gen.json"
    output = tmp_path / "out" / "answers.jsonl"
    spec.write_text(
        json.dumps(
            {
                "base_model": "builtin:tiny",
                "weights_dir": final,
                "prompts_path": str(prompts),
                "output_path": str(output),
                "max_new_tokens": 10,
                "batch_size": 2,
                "engine": "transformers",
            }
        )
    )
    assert generate_main(["--spec", str(spec)]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["id"] for row in rows] == [0, 10, 20, 30, 40]
    model, tokenizer, _ = trained
    expected = generate(model, tokenizer, PROMPTS, max_new_tokens=10)
    assert [(row["text"], row["tokens"]) for row in rows] == [(e.text, e.tokens) for e in expected]


def test_an_adapter_is_merged_into_its_base_for_generation(tmp_path):
    from workers.training.spec import spec_from_dict

    from .conftest import PAIRS, write_jsonl

    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": p, "target": t} for p, t in PAIRS])
    spec = spec_from_dict(
        {
            "job_id": 2,
            "base_model": "builtin:tiny",
            "data_path": str(data),
            "output_dir": str(tmp_path / "o"),
            "finetune": "lora",
            "max_steps": 4,
            "batch_size": 4,
            "learning_rate": 5e-2,
            "lora_r": 4,
            "lora_alpha": 8,
        }
    )
    adapter = train(spec)["final_dir"]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": PROMPTS[1]}) + "\n")
    gen = tmp_path / "gen.json"
    gen.write_text(
        json.dumps(
            {
                "base_model": "builtin:tiny",
                "adapter_dir": adapter,
                "prompts_path": str(prompts),
                "output_path": str(tmp_path / "a.jsonl"),
                "max_new_tokens": 6,
            }
        )
    )
    assert generate_main(["--spec", str(gen)]) == 0
    with_adapter = json.loads((tmp_path / "a.jsonl").read_text())
    base = resolve_student("builtin:tiny")
    plain = generate(load_base(base, seq2seq=False), load_tokenizer(base), [PROMPTS[1]], max_new_tokens=6)[0]
    assert with_adapter["id"] == "a" and with_adapter["tokens"] > 0
    assert (with_adapter["text"], with_adapter["tokens"]) != (plain.text, plain.tokens)  # the adapter is in use


def test_a_bad_generation_spec_exits_2(tmp_path, capsys):
    spec = tmp_path / "gen.json"
    spec.write_text(
        json.dumps(
            {
                "base_model": "builtin:tiny",
                "prompts_path": str(tmp_path / "none.jsonl"),
                "output_path": "x",
                "temperature": -1,
            }
        )
    )
    assert generate_main(["--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "prompts_path: no file at" in err and "temperature: expected a number in [0, 100.0], got -1" in err
