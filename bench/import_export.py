"""Import 1,000,000 Alpaca-shaped records into PostgreSQL and compare with two simpler imports; then export
100,000 records in every format and compare with a naive serializer-per-row export.

The records are real instructions, inputs and answers from ../shared/data, each made distinct by a
numbered variant, plus a known number of exact duplicates that the import must count and skip. The
fast path is the real `import_dataset` command in a child process (so its peak memory is its own).
Two baselines are measured in the same run: a naive importer (one query to test for a duplicate and
one save() per row) over the first 10,000 records, and the usual Django answer, `bulk_create` in
batches of 5,000 with duplicates dropped by a set of hashes in memory, over the whole file.

The export half (bench/export_bench.py) runs the real export path (keyset reads, the streaming writers,
hashing, manifest and card) against a baseline that serializes each row with DRF's InstructionSerializer and
json.dumps (parquet: one pyarrow table built from all rows at the end), in the same run on the same rows.

    python bench/import_export.py [--records 1000000] [--naive 10000] [--bulk N (default: all)]
                                  [--export 100000] [--naive-export 20000] [--only-export]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _setup import OUT, REPO, SHARED, machine, use_bench_database


def real_records() -> list[dict]:
    rows = json.loads((SHARED / "LLaMA-Factory_alpaca_en_demo.json").read_text())
    for name in ("gpt4", "text_davinci_003", "alpaca-7b"):
        for r in json.loads((SHARED / f"alpaca_eval_results_{name}_model_outputs.json").read_text()):
            rows.append({"instruction": r["instruction"], "input": "", "output": r["output"]})
    for line in (SHARED / "self-instruct_text-davinci-003_predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        rows.append({"instruction": r["instruction"], "input": r["input"], "output": r["response"]})
    return rows


def write_file(path, n: int, duplicates: int) -> None:
    base = real_records()

    def line(i: int) -> str:
        r = base[i % len(base)]
        record = {"instruction": f"{r['instruction']} (variant {i})", "input": r["input"], "output": r["output"]}
        return json.dumps(record) + "\n"

    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(line(i))
        for i in range(duplicates):  # exact repeats of earlier records, spread over the file
            f.write(line((i * 7) % n))


def naive_import(path, limit: int) -> float:
    """One exists() and one save() per record, inside one transaction (the charitable naive version)."""
    from django.db import transaction

    from apps.datasets.formats import content_hash
    from apps.datasets.models import Dataset, Instruction

    start = time.perf_counter()
    with transaction.atomic():
        dataset = Dataset.objects.create(name="naive")
        with open(path, encoding="utf-8") as f:
            for _, line in zip(range(limit), f, strict=False):
                r = json.loads(line)
                digest = content_hash(r["instruction"], r["input"])
                if Instruction.objects.filter(dataset=dataset, content_hash=digest).exists():
                    continue
                Instruction(
                    dataset=dataset,
                    text=r["instruction"],
                    input=r["input"],
                    reference_output=r["output"],
                    content_hash=digest,
                ).save()
    return time.perf_counter() - start


def bulk_create_import(path, limit: int) -> float:
    """Django's bulk_create in batches of 5,000 inside one transaction; duplicates dropped in memory by
    their content hash. The usual good-enough import, without streaming COPY or a writer thread."""
    from django.db import transaction

    from apps.datasets.formats import content_hash
    from apps.datasets.models import Dataset, Instruction

    start = time.perf_counter()
    seen: set[str] = set()
    with transaction.atomic():
        dataset = Dataset.objects.create(name="bulk")
        batch: list[Instruction] = []
        with open(path, encoding="utf-8") as f:
            for _, line in zip(range(limit), f, strict=False):
                r = json.loads(line)
                digest = content_hash(r["instruction"], r["input"])
                if digest in seen:
                    continue
                seen.add(digest)
                batch.append(
                    Instruction(
                        dataset=dataset,
                        text=r["instruction"],
                        input=r["input"],
                        reference_output=r["output"],
                        content_hash=digest,
                    )
                )
                if len(batch) == 5000:
                    Instruction.objects.bulk_create(batch)
                    batch = []
        Instruction.objects.bulk_create(batch)
    return time.perf_counter() - start


def fast_import(path) -> tuple[float, float, float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", "import_dataset", str(path), "--name", "fast", "--format", "jsonl"],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"import failed:\n{result.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duplicates", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=10_000)
    parser.add_argument("--bulk", type=int, default=0, help="records for the bulk_create baseline (0: all)")
    parser.add_argument("--export", type=int, default=100_000, help="records to export in every format (0: none)")
    parser.add_argument("--naive-export", type=int, default=20_000, help="records for the naive export baseline")
    parser.add_argument("--only-export", action="store_true", help="skip the import comparison")
    args = parser.parse_args()
    if args.only_export:
        from export_bench import run_export_bench

        run_export_bench(args.export, args.naive_export, write_file)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    url = use_bench_database()
    path = OUT / f"alpaca_{args.records}.jsonl"
    if not path.exists():
        write_file(path, args.records, args.duplicates)
    size_mb = path.stat().st_size / 1e6

    from apps.datasets.models import Dataset

    total = args.records + args.duplicates
    bulk_n = args.bulk or total
    naive_s = naive_import(path, args.naive)
    naive_rate = args.naive / naive_s
    bulk_s = bulk_create_import(path, bulk_n)
    bulk_rate = bulk_n / bulk_s
    fast_s, peak_mb, cpu_s, summary = fast_import(path)
    fast = Dataset.objects.get(name="fast")
    fast_rate = total / fast_s

    print(f"machine: {machine()}; database: {url.rsplit('@', 1)[-1]}")
    print(f"file: {total:,} records ({args.duplicates:,} exact duplicates), {size_mb:,.0f} MB JSON Lines")
    print(f"naive save() per row: {args.naive:,} records in {naive_s:.1f} s = {naive_rate:,.0f} records/s")
    print(f"bulk_create by 5,000: {bulk_n:,} records in {bulk_s:.1f} s = {bulk_rate:,.0f} records/s")
    print(
        f"import_dataset:       {total:,} records in {fast_s:.1f} s = {fast_rate:,.0f} records/s "
        f"(whole command, start-up included); peak RSS {peak_mb:,.0f} MB; its CPU time {cpu_s:.1f} s"
    )
    print(f"  {summary}")
    print(f"ratio: {fast_rate / naive_rate:.1f}x the naive rate, {fast_rate / bulk_rate:.1f}x the bulk_create rate")
    assert fast.size == args.records, f"expected {args.records} rows, got {fast.size}"
    assert f"{args.duplicates:,} duplicates skipped" in summary, summary
    if args.export:
        from export_bench import run_export_bench

        run_export_bench(args.export, args.naive_export, write_file, database_ready=True)


if __name__ == "__main__":
    main()
