"""Benchmark the ROUGE-L novelty filter against rouge-score, measured in the same run.

    python bench/novelty.py            # 6,000 candidates against a 52,000-item pool (a few minutes)
    python bench/novelty.py --quick    # 1,000 against 5,000 (under a minute)
    python bench/novelty.py --processes 2   # let the filter's pair search use two processes

The headline is the ratio against a plain loop over rapidfuzz's LCS with the length bound on texts
tokenised beforehand (the "obvious fast" version; our times include tokenising). The filter's process
count is pinned (one by default, like the loop) and printed, so figures do not depend on the machine's
core count or on the automatic switch.

The pool and candidates are real texts from ../shared/data (bench/corpus.py). rouge-score is far too slow
to run on every pair, so it runs, on one core, on a sample of candidates against the whole pool plus the
candidates kept before them; its per-pair time, times the run's pair count, is the baseline. The same sample
checks that decisions, scores and nearest items are identical. The rapidfuzz loop is timed the same way on a
larger sample. Figures go to stdout and bench/out/novelty.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from corpus import novelty_workload  # noqa: E402
from rapidfuzz.distance import LCSseq  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from workers.algorithms.novelty import Nearest, NoveltyConfig, novelty_filter  # noqa: E402
from workers.algorithms.rouge import TokenCodec, f_measure, tokenize  # noqa: E402
from workers.algorithms.similar_pairs import tokenize_texts  # noqa: E402


def best_time(run, repeats: int):
    """Best wall time of `repeats` runs (other work on the machine only ever adds time) and the result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def kept_before(decisions, index: int) -> list[int]:
    return [j for j in range(index) if decisions[j].kept]


def rouge_score_reference(candidates, pool, decisions, sample, threshold, floor):
    """rouge-score on every pair of the sampled candidates; returns seconds, pairs and mismatches."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = 0
    mismatches = []
    start = time.perf_counter()
    for i in sample:
        best = None
        others = [("pool", j, text) for j, text in enumerate(pool)]
        others += [("candidate", j, candidates[j]) for j in kept_before(decisions, i)]
        for source, j, text in others:
            score = scorer.score(candidates[i], text)["rougeL"].fmeasure
            if best is None or score > best.score:
                best = Nearest(source, j, score)
        pairs += len(others)
        keep = best is None or best.score <= threshold
        shown = best if best is not None and best.score > min(threshold, floor) else None
        if keep != decisions[i].kept or shown != decisions[i].nearest:
            mismatches.append(i)
    return time.perf_counter() - start, pairs, mismatches


def rapidfuzz_loop(candidates, pool, decisions, sample, threshold):
    """Pre-tokenised texts, the length bound, then rapidfuzz's LCS pair by pair, in a Python loop."""
    codec = TokenCodec()
    pool_codes = [codec.encode(tokenize(text)) for text in pool]
    cand_codes = [codec.encode(tokenize(text)) for text in candidates]
    pairs = 0
    start = time.perf_counter()
    for i in sample:
        query = cand_codes[i]
        m = len(query)
        best = 0.0
        others = pool_codes + [cand_codes[j] for j in kept_before(decisions, i)]
        for other in others:
            n = len(other)
            if m == 0 or n == 0 or 2 * min(m, n) <= threshold * (m + n):
                continue
            best = max(best, f_measure(LCSseq.similarity(query, other), m, n))
        pairs += len(others)
    return time.perf_counter() - start, pairs


def total_pairs(decisions, pool_size: int) -> int:
    """Pairs the naive rule scores: each candidate against the pool and every candidate kept before it."""
    kept = 0
    pairs = 0
    for decision in decisions:
        pairs += pool_size + kept
        kept += decision.kept
    return pairs


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line)
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 candidates against 5,000 pool items")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("RETORT_SHARED_DATA", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--sample", type=int, default=None, help="candidates checked with rouge-score")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "novelty.json")
    parser.add_argument("--processes", type=int, default=1, help="processes for the filter's pair search")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")

    pool_size, n_candidates = (5_000, 1_000) if args.quick else (52_000, 6_000)
    scaling = (1_000, 2_000, 5_000) if args.quick else (5_000, 10_000, 20_000, 50_000)
    sample_size = args.sample or (4 if args.quick else 12)
    repeats = 3
    config = NoveltyConfig(processes=args.processes)
    decide_only = NoveltyConfig(nearest_floor=config.threshold, processes=args.processes)
    print(f"machine: {machine()}")
    print(f"processes: {args.processes} for the filter's pair search (pinned; --processes to change)")
    print(f"workload: {n_candidates:,} candidates against {pool_size:,} pool items (real texts, {args.data})")
    workload = novelty_workload(args.data, pool_size, n_candidates)
    pool, candidates = workload.pool, workload.candidates

    ours_s, decisions = best_time(lambda: novelty_filter(candidates, pool, config), repeats)
    decide_s, _ = best_time(lambda: novelty_filter(candidates, pool, decide_only), repeats)
    kept = sum(d.kept for d in decisions)
    pairs = total_pairs(decisions, len(pool))

    rng = random.Random(0)
    rejected = [i for i, d in enumerate(decisions) if not d.kept]
    kept_ids = [i for i, d in enumerate(decisions) if d.kept]
    half = sample_size // 2
    sample = sorted(rng.sample(rejected, min(half, len(rejected))) + rng.sample(kept_ids, sample_size - half))
    ref_s, ref_pairs, mismatches = rouge_score_reference(
        candidates, pool, decisions, sample, config.threshold, config.nearest_floor
    )
    per_pair = ref_s / ref_pairs
    baseline_s = per_pair * pairs
    loop_sample = sorted(rng.sample(range(n_candidates), min(n_candidates, 10 * sample_size)))
    loop_s, loop_pairs = rapidfuzz_loop(candidates, pool, decisions, loop_sample, config.threshold)
    loop_total = loop_s / loop_pairs * pairs
    print(
        f"ratio vs the pre-tokenised rapidfuzz loop (length bound, one core): default {loop_total / ours_s:,.0f}x, "
        f"decisions only {loop_total / decide_s:,.0f}x"
    )
    print(f"kept {kept:,} of {n_candidates:,}; naive pair count {pairs:,}")
    print(f"ours, threshold 0.7, nearest above 0.5 (default): {ours_s:8.2f} s")
    print(f"ours, threshold 0.7, nearest above 0.7 only:      {decide_s:8.2f} s")
    print(f"rapidfuzz loop with length bound: {loop_s / loop_pairs * 1e6:.2f} us/pair -> {loop_total:,.0f} s")
    print(
        f"rouge-score (one core) on {len(sample)} candidates x full pool: {ref_pairs:,} pairs in "
        f"{ref_s:.1f} s = {per_pair * 1e6:.1f} us/pair -> {baseline_s:,.0f} s for the run"
    )
    print(f"identical decisions, scores and nearest items on the sample: {not mismatches} {mismatches or ''}")
    print(f"ratio vs rouge-score: default {baseline_s / ours_s:,.0f}x, decisions only {baseline_s / decide_s:,.0f}x")
    print(f"rapidfuzz loop vs rouge-score: {baseline_s / loop_total:,.0f}x")

    print("\nscaling with the pool (same candidates; tokenising is part of our times; ratio vs the rapidfuzz loop)")
    header = ("pool", "naive pairs", "tokenise s", "default s", "decide s", "rapidfuzz s", "ratio")
    print("{:>8} {:>13} {:>11} {:>10} {:>9} {:>12} {:>9}".format(*header))
    rows = []
    for size in scaling:
        texts = pool[:size] + candidates
        tokenise_s, _ = best_time(lambda texts=texts: tokenize_texts(texts), repeats)
        seconds, result = best_time(lambda size=size: novelty_filter(candidates, pool[:size], config), repeats)
        decide, _ = best_time(lambda size=size: novelty_filter(candidates, pool[:size], decide_only), repeats)
        size_pairs = total_pairs(result, size)
        loop_estimate = loop_s / loop_pairs * size_pairs
        rows.append(
            {
                "pool": size,
                "pairs": size_pairs,
                "tokenise_s": tokenise_s,
                "default_s": seconds,
                "decisions_only_s": decide,
                "rapidfuzz_loop_s": loop_estimate,
                "rouge_score_s": per_pair * size_pairs,
            }
        )
        print(
            f"{size:>8,} {size_pairs:>13,} {tokenise_s:>11.2f} {seconds:>10.2f} {decide:>9.2f} "
            f"{loop_estimate:>12,.1f} {loop_estimate / seconds:>8,.0f}x"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "processes": args.processes,
                "ratio_vs_rapidfuzz_loop_default": loop_total / ours_s,
                "ratio_vs_rapidfuzz_loop_decisions_only": loop_total / decide_s,
                "pool": len(pool),
                "candidates": n_candidates,
                "kept": kept,
                "pairs": pairs,
                "ours_default_s": ours_s,
                "ours_decisions_only_s": decide_s,
                "rouge_score_us_per_pair": per_pair * 1e6,
                "rouge_score_sample": {
                    "candidates": len(sample),
                    "pairs": ref_pairs,
                    "mismatches": mismatches,
                },
                "rapidfuzz_loop_us_per_pair": loop_s / loop_pairs * 1e6,
                "ratio_default": baseline_s / ours_s,
                "ratio_decisions_only": baseline_s / decide_s,
                "scaling": rows,
            },
            indent=2,
        )
    )
    if mismatches:
        sys.exit("decisions differ from rouge-score")


if __name__ == "__main__":
    main()
