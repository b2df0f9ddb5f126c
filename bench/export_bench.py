"""The export half of bench/import_export.py: every export format over N records of a PostgreSQL dataset,
against a naive serializer-per-row export of the same rows in the same run.

Fast path: apps.experiments.exports (keyset chunks of 5,000 rows, the streaming writers, sha256 as written,
manifest and card), timed whole. Baseline: for each row, DRF's InstructionSerializer(row).data and
json.dumps of the format's record, written line by line (parquet: every row kept, one pyarrow table at the
end, as a quick script would). Memory: the peak Python allocation (tracemalloc) of a second fast run of
each format, and the peak RSS of the real `export_dataset` command as a child process for JSONL.
"""

import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

from _setup import OUT, REPO, machine, use_bench_database

FORMATS = ("alpaca", "sharegpt", "openai", "parquet")


def _naive(dataset, fmt: str, limit: int, out) -> float:
    from apps.datasets.models import Instruction
    from apps.datasets.serializers import InstructionSerializer

    start = time.perf_counter()
    rows = []
    with open(out, "w", encoding="utf-8") as f:
        if fmt in ("alpaca", "sharegpt"):
            f.write("[\n")
        for n, obj in enumerate(Instruction.objects.filter(dataset=dataset).order_by("pk")[:limit].iterator(2000)):
            data = InstructionSerializer(obj).data
            prompt = f"{data['text']}\n\n{data['input']}" if data["input"] else data["text"]
            if fmt == "alpaca":
                record = {"instruction": data["text"], "input": data["input"], "output": data["reference_output"]}
            elif fmt == "sharegpt":
                turns = [{"from": "human", "value": prompt}, {"from": "gpt", "value": data["reference_output"]}]
                record = {"conversations": turns, "category": data["task_category"]}
            elif fmt == "openai":
                messages = [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": data["reference_output"]},
                ]
                record = {"messages": messages}
            else:
                rows.append({"instruction": data["text"], "input": data["input"], "output": data["reference_output"]})
                continue
            if fmt == "openai":
                f.write(json.dumps(record) + "\n")
            else:
                f.write(("" if n == 0 else ",\n") + json.dumps(record))
        if fmt in ("alpaca", "sharegpt"):
            f.write("\n]\n")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), out)
    return time.perf_counter() - start


def _fast(dataset, fmt: str, out) -> tuple[float, dict]:
    from apps.experiments.exports.services import export_source, export_write

    start = time.perf_counter()
    manifest = export_write(source=export_source(dataset=dataset), fmt=fmt, out=out)
    return time.perf_counter() - start, manifest


def _traced_peak(dataset, fmt: str, out) -> float:
    tracemalloc.start()
    _fast(dataset, fmt, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def _command_rss(name: str, out) -> tuple[float, float]:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(
        [sys.executable, "manage.py", "export_dataset", name, "--format", "openai", "--out", str(out)],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"export_dataset failed:\n{result.stderr}")
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024


def run_export_bench(n: int, naive_n: int, write_file, *, database_ready: bool = False) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    url = os.environ["DATABASE_URL"] if database_ready else use_bench_database("retort_bench_exports")
    from apps.datasets.formats.openai_check import check_openai_jsonl
    from apps.datasets.importing import dataset_import_file
    from apps.datasets.models import Dataset

    source = OUT / f"alpaca_{n}_export.jsonl"
    if not source.exists():
        write_file(source, n, 0)
    name = f"export-{n}"
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        dataset_import_file(path=source, dataset_name=name, fmt="jsonl", license="CC BY-NC 4.0 (bench data)")
        dataset = Dataset.objects.get(name=name)
    assert dataset.size == n, dataset.size
    naive_n = min(naive_n, n)
    print(f"machine: {machine()}; database: {url.rsplit('@', 1)[-1]}")
    print(f"export: {n:,} records ({source.stat().st_size / 1e6:,.0f} MB as JSON Lines); naive baseline on {naive_n:,}")
    for fmt in FORMATS:
        suffix = {"alpaca": "json", "sharegpt": "json", "openai": "jsonl", "parquet": "parquet"}[fmt]
        naive_s = _naive(dataset, fmt, naive_n, OUT / f"naive.{fmt}.{suffix}")
        fast_s, manifest = _fast(dataset, fmt, OUT / f"export.{fmt}.{suffix}")
        peak = _traced_peak(dataset, fmt, OUT / f"export.{fmt}.{suffix}")
        naive_rate, fast_rate = naive_n / naive_s, n / fast_s
        size = manifest["files"][0]["bytes"] / 1e6
        print(
            f"  {fmt:9} export {fast_rate:>9,.0f} records/s ({fast_s:5.1f} s, {size:,.0f} MB, peak traced "
            f"{peak:5.1f} MB) | naive {naive_rate:>7,.0f} records/s | {fast_rate / naive_rate:5.1f}x"
        )
        assert manifest["counts"]["records"] == n
        if fmt == "openai":
            count, problems = check_openai_jsonl(OUT / "export.openai.jsonl")
            skipped = sum(manifest["files"][0]["skipped"].values())  # records without an answer
            assert count == n - skipped and not problems, problems[:3]
    command_s, rss = _command_rss(name, OUT / "command.openai.jsonl")
    print(
        f"  export_dataset --format openai: {n:,} records in {command_s:.1f} s = {n / command_s:,.0f} records/s "
        f"(whole command, start-up included); peak RSS {rss:,.0f} MB"
    )
