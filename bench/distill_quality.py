"""A real distillation result: builtin:smollm2-135m distilled from recorded GPT-4 answers, one Lion round
against one plain imitation round of the same size, with the student's win rate against the teacher on
held-out instructions before and after, with 95% intervals.

    python bench/distill_quality.py [--seeds 24] [--new 24] [--eval 24] [--max-new-tokens 64]
                                    [--epochs 2] [--json bench/out/distill_quality.json]

Data (../shared/data, or $RETORT_SHARED_DATA):
- teacher: GPT-4, replayed offline. Training instructions and answers from Alpaca-GPT-4
  (`LLaMA-Factory_alpaca_en_demo.json`); held-out instructions and the teacher's answers from AlpacaEval's
  recorded `gpt4` outputs (disjoint instructions).
- seeds: `--seeds` Alpaca-GPT-4 items (a seeded draw); the rest is the reserve new instructions come from.

Arms, each trained from the base model with the same hyper-parameters on the same number of examples:
- **Lion** (Jiang et al., 2023), one round: imitation on the seeds; discrimination: the round-1 student
  answers the seeds, the judge scores it against the teacher in both orders, each seed is hard (gap >= 1,
  Lion's rule) or easy; generation: `--new` instructions, half from hard seeds and half from easy ones
  (all from one kind when the other is empty, as the engine's generate stage plans them), each the reserve
  instruction nearest the seed (MiniLM) that is novel (ROUGE-L <= 0.7 against the pool and everything
  picked) — the offline retrieval generator's rule; the teacher answers them (recorded). The round's
  student trains on seeds + new.
- **Imitation**: seeds + `--new` reserve instructions drawn at random, the same size.

Judges (offline, no API): the similarity judge of Retort's offline backends (MiniLM cosine similarity of
an answer to a reference answer, mapped onto 1-10 with floor 0.2), asked in both orders.
- Discrimination compares the student with the teacher on training seeds, whose only reference is the
  teacher's own answer: the teacher scores 10 and the gap measures how far the student is from it.
- Evaluation needs a reference other than the teacher, or the teacher always wins: AlpacaEval's recorded
  `gpt4_1106_preview` answers to the same held-out instructions. Win rate (ties half), a seeded 95%
  percentile bootstrap interval and the length-controlled rate come from workers.algorithms.evaluation. A
  calibration row scores AlpacaEval's recorded alpaca-7b and text-davinci-003 answers the same way.

Every step is seeded; the run is bounded by the sizes (about 6 to 7 minutes at the defaults on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = Path(os.environ.get("RETORT_SHARED_DATA", ROOT.parent / "shared" / "data"))
STUDENT = "builtin:smollm2-135m"
TAU = 1.0  # Lion's gap threshold on the judge's 1-10 scale; hard when gap >= tau
ROUGE_THRESHOLD = 0.7
FLOOR = 0.2  # the offline similarity judge's default


def _task(instruction: str, input_text: str = "") -> str:
    from workers.llm.prompts import task_text

    return task_text(instruction, input_text)


def load_data(n_seeds: int, n_eval: int, seed: int):
    alpaca = json.loads((SHARED / "LLaMA-Factory_alpaca_en_demo.json").read_text(encoding="utf-8"))
    rows = [{"prompt": _task(r["instruction"], r["input"]), "answer": r["output"]} for r in alpaca if r["output"]]
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(rows)).tolist()
    seeds = [rows[i] for i in order[:n_seeds]]
    reserve = [rows[i] for i in order[n_seeds:]]

    def outputs(model):
        path = SHARED / f"alpaca_eval_results_{model}_model_outputs.json"
        return {r["instruction"]: r["output"] for r in json.loads(path.read_text(encoding="utf-8"))}

    teacher, reference = outputs("gpt4"), outputs("gpt4_1106_preview")
    others = {name: outputs(name) for name in ("alpaca-7b", "text_davinci_003")}
    usable = sorted(i for i in teacher if teacher[i] and reference.get(i) and all(o.get(i) for o in others.values()))
    picked = np.random.default_rng([seed, 2]).choice(len(usable), size=n_eval, replace=False)
    held = [usable[i] for i in sorted(picked.tolist())]
    evaluation = [
        {"prompt": i, "teacher": teacher[i], "reference": reference[i], **{k: o[i] for k, o in others.items()}}
        for i in held
    ]
    return seeds, reserve, evaluation


# --- the judge ------------------------------------------------------------------------------------------------
class Judge:
    def __init__(self):
        from workers.llm.offline.embeddings import MiniLMEmbedder

        self.embedder = MiniLMEmbedder()

    def scores(self, references: list[str], answers: list[str]) -> list[float]:
        from workers.llm.offline.backends import similarity_to_score

        ref = self.embedder.encode(references)
        ans = self.embedder.encode(answers)
        return [similarity_to_score(float(r @ a), FLOOR) for r, a in zip(ref, ans, strict=True)]

    def pairs(self, references, teacher, student):
        """Both orders, as the engine asks them: teacher-first (t, s) and student-first (s, t). The similarity
        judge scores each answer on its own, so the orders agree by construction."""
        t, s = self.scores(references, teacher), self.scores(references, student)
        return [((a, b), (b, a)) for a, b in zip(t, s, strict=True)]


def win_rates(judge: Judge, items: list[dict], answers: list[str], seed: int) -> dict:
    from workers.algorithms.evaluation import win_rate_report

    pairs = judge.pairs([i["reference"] for i in items], [i["teacher"] for i in items], answers)
    diffs = [len(a) - len(i["teacher"]) for i, a in zip(items, answers, strict=True)]
    report = win_rate_report(pairs, None, diffs, seed=seed).to_dict()
    overall = report["overall"]
    return {
        "win_rate": overall["rate"],
        "ci": [overall["ci_low"], overall["ci_high"]],
        "lc_win_rate": report["length_controlled"]["win_rate"],
        "counts": report["counts"],
        "mean_student_chars": float(np.mean([len(a) for a in answers])),
    }


# --- the student --------------------------------------------------------------------------------------------
def train(work: Path, name: str, rows: list[dict], args) -> Path:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({"prompt": row["prompt"], "target": row["answer"], "kind": "sft"}) + "\n")
    spec = {
        "job_id": 1,
        "base_model": STUDENT,
        "finetune": "lora",
        "data_path": str(data),
        "output_dir": str(folder / "out"),
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "seed": args.seed,
        "save_every": 100_000,
    }
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    with (folder / "train.log").open("w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "workers.training.run", "--spec", str(folder / "spec.json")],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"training {name} failed (exit {done.returncode}); see {folder / 'train.log'}")
    return folder / "out" / "final"


def answer(adapter: Path | None, prompts: list[str], args) -> list[str]:
    from workers.training.generate import GenerateSpec, load_for_generation
    from workers.training.generation import generate

    spec = GenerateSpec(
        base_model=STUDENT,
        adapter_dir=str(adapter) if adapter else None,
        prompts_path="",
        output_path="",
        max_new_tokens=args.max_new_tokens,
    )
    model, tokenizer, seq2seq, _ = load_for_generation(spec)
    out = generate(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, batch_size=8, seq2seq=seq2seq)
    return [o.text for o in out]


# --- Lion's generation step ------------------------------------------------------------------------------------
def plan(hard: list[int], easy: list[int], n: int, rng) -> list[tuple[int, str]]:
    """N/2 seeds from the hard ones and N/2 from the easy ones (all from one kind when the other is empty),
    without replacement while they last: the engine's generate stage plan at hard_easy_ratio 1."""
    n_hard = round(n / 2) if hard and easy else (n if hard else 0)
    picks = []
    for seeds, k, kind in ((hard, n_hard, "hard"), (easy, n - n_hard, "easy")):
        if not seeds or k <= 0:
            continue
        copies, rest = divmod(k, len(seeds))
        chosen = [s for _ in range(copies) for s in seeds]
        chosen += [seeds[i] for i in sorted(rng.choice(len(seeds), size=rest, replace=False).tolist())]
        picks += [(s, kind) for s in chosen]
    return picks


def retrieve(judge: Judge, seeds: list[dict], reserve: list[dict], picks, pool: list[str]) -> list[dict]:
    """For each planned seed, the nearest reserve instruction not taken that is novel against the pool and
    everything picked so far (ROUGE-L <= 0.7)."""
    from workers.algorithms.rouge import rouge_l

    seed_vectors = judge.embedder.encode([s["prompt"] for s in seeds])
    reserve_vectors = judge.embedder.encode([r["prompt"] for r in reserve])
    taken: set[int] = set()
    kept = list(pool)
    new = []
    for index, _kind in picks:
        for candidate in np.argsort(-(reserve_vectors @ seed_vectors[index])).tolist():
            text = reserve[candidate]["prompt"]
            if candidate in taken or any(rouge_l(text, other) > ROUGE_THRESHOLD for other in kept):
                continue
            taken.add(candidate)
            kept.append(text)
            new.append(reserve[candidate])
            break
    return new


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--new", type=int, default=24)
    parser.add_argument("--eval", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    started = time.monotonic()
    timings = {}

    def tick(label):
        timings[label] = round(time.monotonic() - started - sum(timings.values()), 1)
        print(f"[{time.monotonic() - started:6.0f} s] {label}", flush=True)

    seeds, reserve, held = load_data(args.seeds, args.eval, args.seed)
    judge = Judge()
    prompts = [i["prompt"] for i in held]
    results = {}
    for name in ("alpaca-7b", "text_davinci_003"):  # calibration: recorded answers, no student
        results[f"recorded {name}"] = win_rates(judge, held, [i[name] for i in held], args.seed)
    with tempfile.TemporaryDirectory(prefix="distill-quality-") as tmp:
        work = Path(tmp)
        results["base (before)"] = win_rates(judge, held, answer(None, prompts, args), args.seed)
        tick("base model answered the held-out set")

        # Lion, round 1's imitation and discrimination.
        first = train(work, "lion-imitation", seeds, args)
        tick("imitation on the seeds")
        student = answer(first, [s["prompt"] for s in seeds], args)
        pairs = judge.pairs([s["answer"] for s in seeds], [s["answer"] for s in seeds], student)
        from workers.algorithms.discrimination import DiscriminationConfig, discriminate

        verdicts = [discriminate(tf, sf, DiscriminationConfig(tau=TAU)) for tf, sf in pairs]
        hard = [n for n, v in enumerate(verdicts) if v.gap is not None and v.gap >= TAU]
        easy = [n for n, v in enumerate(verdicts) if v.gap is not None and v.gap < TAU]
        tick("discrimination")
        rng = np.random.default_rng([args.seed, 3])
        picks = plan(hard, easy, args.new, rng)
        generated = retrieve(judge, seeds, reserve, picks, [s["prompt"] for s in seeds])
        lion = train(work, "lion", seeds + generated, args)
        tick("Lion round trained")
        results["Lion, 1 round"] = win_rates(judge, held, answer(lion, prompts, args), args.seed)
        tick("Lion student answered")

        taken = {g["prompt"] for g in generated}
        pool = [r for r in reserve if r["prompt"] not in taken]
        drawn = [
            pool[i] for i in np.random.default_rng([args.seed, 4]).choice(len(pool), size=len(generated), replace=False)
        ]
        imitation = train(work, "imitation", seeds + drawn, args)
        tick("imitation round trained")
        results["imitation, same size"] = win_rates(judge, held, answer(imitation, prompts, args), args.seed)
        tick("imitation student answered")

    summary = {
        "student": STUDENT,
        "sizes": {"seeds": len(seeds), "new": len(generated), "train_examples": len(seeds) + len(generated)},
        "held_out": len(held),
        "discrimination": {"hard": len(hard), "easy": len(easy), "mean_gap": float(np.mean([v.gap for v in verdicts]))},
        "generated_from": {"hard": sum(k == "hard" for _, k in picks), "easy": sum(k == "easy" for _, k in picks)},
        "settings": vars(args),
        "results": results,
        "timings_s": timings,
        "total_s": round(time.monotonic() - started, 1),
    }
    print()
    print("| arm | win rate vs GPT-4 | 95% interval | LC win rate | W/T/L | mean answer chars |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        c = r["counts"]
        print(
            f"| {name} | {r['win_rate']:.3f} | [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {r['lc_win_rate']:.3f} | "
            f"{c['win']}/{c['tie']}/{c['loss']} | {r['mean_student_chars']:.0f} |"
        )
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
