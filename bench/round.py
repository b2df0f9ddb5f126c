"""Lion rounds through the experiment engine against the local test server, and the kept novelty index.

    python bench/round.py [--latency 0.2] [--seeds 1000] [--scale 1.0] [--skip a,b,c] [--query-times]

(a) a Lion round of `--seeds` seed instructions (1,000) at concurrency 32; (b) a Lion round at the paper's
scale — a 52,000-item cache pool (teacher, student and both judge orders: 104,000 judge calls) and 6,000
new instructions — at concurrency 128, `--scale` shrinking both sizes (0.1: 5,200 and 600); (c) the
novelty filter for 6,000 candidates against a 64,000-item pool of real texts, with the experiment's kept
index against re-tokenising the pool for every batch, in the same run.

The engine runs as the workers would: this process advances the experiment (one bounded step at a time,
every stage's bookkeeping and database writes included) and a forked process runs the gateway's runner
whenever calls are pending (as the `llm` worker does once the enqueue commits); a stage
waiting for its calls is looked at again every 50 ms (the workers are woken by the settled signal). The
training job is reported done at once (training is not what is measured). For each LLM stage the wall time
from its start to its end is compared with the ideal concurrency bound: calls × latency / concurrency.
The ratio printed is Σ ideal / Σ wall over the LLM stages. The engine's own CPU time (this process:
stage steps, novelty filter, ORM, queries sent; not the runner's nor the test server's) is given per item,
and each LLM stage's wall and engine CPU per phase (submit, wait, collect); `--query-times` adds the
engine's slowest statement shapes with their wall time, the database server's included.
PostgreSQL when DATABASE_URL is set (a throw-away test database on that server), else SQLite.
"""

import argparse
import multiprocessing
import os
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if not os.environ.get("DATABASE_URL"):
    os.environ.setdefault("RETORT_VAR_DIR", str(ROOT / "var" / "bench"))
os.environ.setdefault("DEBUG", "0")

from bench.llm_throughput import start_server  # noqa: E402

PAPER_POOL, PAPER_NEW, NOVELTY_POOL, NOVELTY_NEW, BATCH = 52_000, 6_000, 64_000, 6_000, 256
LLM_KINDS = ("answer", "judge", "generate")


def _seed_dataset(name: str, texts: list[str]):
    from apps.datasets.formats.records import content_hash
    from apps.datasets.models import Dataset, Instruction

    dataset = Dataset.objects.create(name=name)
    Instruction.objects.bulk_create(
        [Instruction(dataset=dataset, text=t, content_hash=content_hash(t, "")) for t in texts],
        batch_size=5000,
        ignore_conflicts=True,
    )
    dataset.size = dataset.instructions.count()
    dataset.save(update_fields=["size"])
    return dataset


def _run_pending(stopping) -> None:
    """The `llm` worker's loop, in its own process: run every endpoint with pending calls until told to stop."""
    from django.db import connection

    from apps.llm.lease import lease_acquire, lease_release
    from apps.llm.models import LLMCall, LLMEndpoint
    from apps.llm.runner import run_endpoint

    try:
        while not stopping.is_set():
            pending = set(LLMCall.objects.filter(status="pending").values_list("endpoint_id", flat=True))
            if not pending:
                time.sleep(0.01)
                continue
            for endpoint in LLMEndpoint.objects.filter(pk__in=pending):
                assert lease_acquire(endpoint_id=endpoint.pk, owner="bench", ttl_s=600)
                try:
                    run_endpoint(endpoint, owner="bench")
                finally:
                    lease_release(endpoint_id=endpoint.pk, owner="bench")
    finally:
        connection.close()


class Runner:
    """The gateway's runner in a forked process, as the `llm` worker is a process of its own beside the
    worker that advances the experiment (sharing one interpreter would put both behind one GIL)."""

    def __init__(self):
        from django.db import connections

        context = multiprocessing.get_context("fork")
        self.stopping = context.Event()
        connections.close_all()  # the child opens its own connection
        self.process = context.Process(target=_run_pending, args=(self.stopping,))
        self.process.start()

    def failed(self) -> bool:
        return self.process.exitcode not in (None, 0)

    def stop(self) -> None:
        self.stopping.set()
        self.process.join()


class QueryTimes:
    """With --query-times: the engine's statements by shape (literals and parameter lists folded), with
    their count and wall time, database server time included: where the steps wait on the database."""

    def __init__(self):
        self.shapes: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"\((?:%s, )+%s\)", "(…)", sql)
            shape = re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "'…'", shape))
            entry = self.shapes.setdefault(shape, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - t

    def print(self, top: int = 12) -> None:
        print(f"slowest statement shapes of the engine (of {len(self.shapes)}): total s, count, statement")
        for shape, (n, seconds) in sorted(self.shapes.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"{seconds:8.1f} {n:>7,}  {shape[:220]}")


def lion_round(
    url: str, *, tag: str, seeds: list[str], new: int, concurrency: int, latency: float, queries: QueryTimes | None
) -> dict:
    from django.db import connection

    from apps.experiments import engine
    from apps.experiments.models import StageRun
    from apps.experiments.services import experiment_create, experiment_start
    from apps.llm.models import LLMCallUse
    from apps.training.models import TrainingJob

    dataset = _seed_dataset(f"bench-{tag}-seeds", seeds)

    def endpoint(model):
        return {"base_url": url, "model": model, "name": f"bench-{tag}-{model}", "max_concurrency": concurrency}

    config = {
        "name": f"bench-{tag}",
        "recipe": "lion",
        "dataset": dataset.name,
        "endpoints": {
            "teacher": endpoint("teacher-bench"),
            "judge": endpoint("judge-bench"),
            "generator": endpoint("generator-bench"),
            "student": endpoint("student-bench"),
        },
        "student": {"model": "builtin:tiny"},
        "params": {"rounds": 1, "new_per_round": new, "batch_size": BATCH, "max_items": len(seeds)},
        "review": {"hard_verdicts": "none", "generated": "none"},
        "seed": 1234,
    }
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    runner = Runner()
    child0, process0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    engine_cpu, steps, started = 0.0, 0, time.perf_counter()
    phases: dict[tuple[str, str], list[float]] = {}  # (stage, phase) -> [wall s, engine CPU s, steps]
    try:
        while True:
            where, w = _where(experiment.pk), time.perf_counter()
            t = time.thread_time()
            if queries is None:
                more = engine.advance(experiment.pk)
            else:
                with connection.execute_wrapper(queries):
                    more = engine.advance(experiment.pk)
            cpu = time.thread_time() - t
            engine_cpu += cpu
            steps += 1
            tally = phases.setdefault(where, [0.0, 0.0, 0])
            tally[1] += cpu
            tally[2] += 1
            if runner.failed():
                raise RuntimeError(f"{tag}: the runner process exited with {runner.process.exitcode}")
            if not more:
                experiment.refresh_from_db()
                if experiment.status in ("finished", "failed", "cancelled", "paused"):
                    break
                TrainingJob.objects.filter(round__experiment=experiment, status="queued").update(status="succeeded")
                time.sleep(0.05)
            tally[0] += time.perf_counter() - w
    finally:
        runner.stop()
    wall = time.perf_counter() - started
    child1, process1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    if experiment.status != "finished":
        raise RuntimeError(f"{tag}: {experiment.status}: {experiment.status_reason}")
    stages = []
    for run in StageRun.objects.filter(round__experiment=experiment).order_by("position"):
        calls = LLMCallUse.objects.filter(experiment=experiment, stage=run.name, paid=True).count()
        seconds = (run.finished_at - run.started_at).total_seconds()
        ideal = calls * latency / concurrency
        stages.append({"name": run.name, "kind": run.kind, "calls": calls, "seconds": seconds, "ideal": ideal})
    llm = [s for s in stages if s["kind"] in LLM_KINDS]
    calls = sum(s["calls"] for s in llm)
    return {
        "tag": tag,
        "pool": dataset.size,
        "new": new,
        "concurrency": concurrency,
        "stages": stages,
        "llm_seconds": sum(s["seconds"] for s in llm),
        "ideal": sum(s["ideal"] for s in llm),
        "calls": calls,
        "round_seconds": wall,
        "steps": steps,
        "engine_cpu": engine_cpu,
        # Everything else of this process and the runner's process (its client and the client's process).
        "runner_cpu": process1
        - process0
        - engine_cpu
        + (child1.ru_utime + child1.ru_stime)
        - (child0.ru_utime + child0.ru_stime),
        "kept": experiment.lineages.count(),
        "phases": phases,
        "queries": queries,
    }


def _where(experiment_id: int) -> tuple[str, str]:
    """The stage run and phase the next engine step works in (read outside the engine's measured time)."""
    from apps.experiments.models import StageRun

    row = (
        StageRun.objects.filter(round__experiment_id=experiment_id, status__in=("pending", "running", "waiting"))
        .order_by("round__index", "position")
        .values_list("name", "phase", "status")
        .first()
    )
    if row is None:
        return ("-", "")
    return (row[0], "start" if row[2] == "pending" else row[1])


def print_round(result: dict, target: float) -> None:
    ratio = result["ideal"] / result["llm_seconds"]
    print(
        f"\n({result['tag']}) Lion round: {result['pool']:,} pool items, {result['new']:,} new asked, "
        f"concurrency {result['concurrency']}: {result['calls']:,} calls"
    )
    print(f"{'stage':>15} {'kind':>13} {'calls':>8} {'seconds':>9} {'ideal s':>9} {'ratio':>7}")
    for s in result["stages"]:
        share = f"{100 * s['ideal'] / s['seconds']:.1f}%" if s["calls"] else "-"
        print(f"{s['name']:>15} {s['kind']:>13} {s['calls']:>8,} {s['seconds']:>9.2f} {s['ideal']:>9.2f} {share:>7}")
    order = ("start", "submit", "wait", "collect", "finalize")
    print("LLM stages by phase: wall s / engine CPU s (engine steps)")
    for s in result["stages"]:
        if s["kind"] not in LLM_KINDS:
            continue
        parts = [
            f"{phase} {wall:.1f}/{cpu:.1f} ({n:,})"
            for phase in order
            for wall, cpu, n in [result["phases"].get((s["name"], phase), (0.0, 0.0, 0))]
            if n
        ]
        print(f"{s['name']:>15}: " + ", ".join(parts))
    print(
        f"LLM stages: {result['llm_seconds']:.1f} s against an ideal {result['ideal']:.1f} s = {100 * ratio:.1f}% "
        f"of ideal (target {100 * target:.0f}%: {'met' if ratio >= target else 'NOT met'}); whole round "
        f"{result['round_seconds']:.1f} s in {result['steps']:,} engine steps; {result['kept']:,} new instructions kept"
    )
    print(
        f"engine CPU {result['engine_cpu']:.1f} s = {1000 * result['engine_cpu'] / result['calls']:.2f} ms per call, "
        f"{1000 * result['engine_cpu'] / result['pool']:.2f} ms per pool item; gateway runner and client CPU "
        f"{result['runner_cpu']:.1f} s = {1000 * result['runner_cpu'] / result['calls']:.2f} ms per call"
    )
    if result["queries"] is not None:
        result["queries"].print()


def novelty(shared: Path) -> None:
    from bench.corpus import novelty_workload
    from workers.algorithms.novelty import GrowingNoveltyIndex, NoveltyConfig, novelty_filter

    work = novelty_workload(shared, NOVELTY_POOL, NOVELTY_NEW, seed=3)
    config = NoveltyConfig(processes=1)
    batches = [work.candidates[i : i + BATCH] for i in range(0, len(work.candidates), BATCH)]
    print(f"\n(c) novelty filter: {len(work.candidates):,} candidates in batches of {BATCH} against {len(work.pool):,}")
    t = time.perf_counter()
    index = GrowingNoveltyIndex(work.pool, config)
    build = time.perf_counter() - t
    kept_decisions, t = [], time.perf_counter()
    for batch in batches:
        decisions = index.filter(batch)
        index.commit([k for k, d in enumerate(decisions) if d.kept])
        kept_decisions += decisions
    kept_s = time.perf_counter() - t
    pool, naive_decisions, t = list(work.pool), [], time.perf_counter()
    for batch in batches:  # what a stage without the kept index does: the whole pool tokenised per batch
        decisions = novelty_filter(batch, pool, config)
        pool += [text for text, d in zip(batch, decisions, strict=True) if d.kept]
        naive_decisions += decisions
    naive_s = time.perf_counter() - t
    t = time.perf_counter()
    once = novelty_filter(work.candidates, work.pool, config)  # one call over the round's candidates
    once_s = time.perf_counter() - t
    assert [d.kept for d in kept_decisions] == [d.kept for d in naive_decisions] == [d.kept for d in once]
    kept = sum(d.kept for d in once)
    print(f"decisions identical in all three ways: {kept:,} kept, {len(once) - kept:,} rejected")
    print(f"kept index: {kept_s:.2f} s for the batches (built once from the pool in {build:.2f} s, a restart's cost)")
    print(f"re-tokenising the pool per batch: {naive_s:.2f} s = {naive_s / kept_s:.1f}x the kept index")
    print(f"one novelty_filter over all candidates (pool tokenised once per round): {once_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, default=1000, help="(a): seed instructions")
    parser.add_argument("--scale", type=float, default=1.0, help="(b): fraction of the paper's 52,000 / 6,000")
    parser.add_argument("--skip", default="", help="parts to leave out, e.g. b or a,c")
    parser.add_argument("--query-times", action="store_true", help="print the engine's slowest statement shapes")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from bench.corpus import real_texts

    shared = Path(os.environ.get("RETORT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    texts = real_texts(shared)
    settings.RETORT_TRAINING_ROOT = Path(settings.MEDIA_ROOT) / "bench-training"
    print(
        f"database: {connection.vendor}; server latency {args.latency * 1000:.0f} ms; python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores; batch {BATCH}"
    )
    server, url = start_server(args.latency)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        if "a" not in skip:
            a = lion_round(
                url,
                tag="a",
                seeds=texts[: args.seeds],
                new=round(args.seeds * PAPER_NEW / PAPER_POOL),  # the paper's ratio of new items to the pool
                concurrency=32,
                latency=args.latency,
                queries=QueryTimes() if args.query_times else None,
            )
            print_round(a, 0.85)
        if "b" not in skip:
            pool, new = round(PAPER_POOL * args.scale), round(PAPER_NEW * args.scale)
            start = args.seeds if "a" not in skip else 0
            b = lion_round(
                url,
                tag="b",
                seeds=texts[start : start + pool],
                new=new,
                concurrency=128,
                latency=args.latency,
                queries=QueryTimes() if args.query_times else None,
            )
            print_round(b, 0.70)
            if args.scale < 1.0:
                print(f"(b) measured at scale {args.scale}: the full size (52,000 / 6,000) was not run here")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        server.terminate()
    if "c" not in skip:
        novelty(shared)


if __name__ == "__main__":
    main()
