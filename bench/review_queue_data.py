"""The review-queue benchmark's data: a million instructions, two million judgments (both orders each), four
million answers and a million verdict review tasks on PostgreSQL, built inside the server.

Real texts from ../shared/data (bench/corpus.py's instructions and answer sentences, the recorded answers
of GPT-4, text-davinci-003 and Alpaca-7B) are copied into a small side table once; every big table is
then filled by `INSERT … SELECT` over `generate_series`, joined to those texts, so no row crosses the
socket. The tables keep every index and constraint their migrations define while they are filled; only
the foreign keys' row-by-row triggers are off on the generator's own connections (it writes ids by
arithmetic, and `_check_ids` checks every table's ids and references afterwards). Two connections write
at a time (the machine has two cores).

Layout for size N (default 1,000,000; all ids explicit so the tables join by arithmetic):

- one imported dataset of N instructions (a real text with a numbered variant, a task category, a
  sha256 content hash), ids 1..N;
- experiments A and B (Lion), rounds 1 and 2 each. Round 1 of each judges instructions 1..N/2, round 2
  the rest, so every instruction is judged twice (2N judgments). Each judgment has its round's teacher
  and student answers (4N responses) and both orders' judge replies, scores, gap and verdict;
- a verdict review task for every other judgment (N tasks; contested ones at priority 2): A's round 1 is
  done (one reviewer's vote each, like a finished queue), A's round 2 and B's round 2 are open with one
  review each, B's round 1 is open with two (overlap).

A marker (the dataset's description, written last) records the size and the load time; a database
without it, or with another size, is rebuilt.

The SQL is built with f-strings (hence the S608 waivers): every value put into it is an int or a
constant of this module, none comes from outside.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

DATASET = "review-bench-seeds"
MARKER_VERSION = 1
CHUNK = 20_000  # rows of a round per transaction: small enough that its pages stay in shared_buffers
REVIEWERS = [f"bench-reviewer-{i:02d}" for i in range(1, 21)]
OPERATOR = "bench-operator"
CATEGORIES = ("Math", "Reasoning", "Code Generation", "Writing", "Common-Sense", "Roleplay", "Biology", "Others")
# (experiment, round index, first instruction half (0) or second (1), required reviews, done)
ROUNDS = (("review-bench-a", 1, 0, 1, True), ("review-bench-a", 2, 1, 1, False),
          ("review-bench-b", 1, 0, 2, False), ("review-bench-b", 2, 1, 1, False))  # fmt: skip


@dataclass
class Layout:
    """Where everything is for size n (ids are explicit, so they follow from n)."""

    n: int

    @property
    def half(self) -> int:
        return self.n // 2

    def response_base(self, k: int) -> int:  # teacher answers base+1..base+M, students base+M+1..base+2M
        return k * 2 * self.half

    def judgment_base(self, k: int) -> int:
        return k * self.half

    def task_base(self, k: int) -> int:
        return k * (self.half // 2)

    def first_instruction(self, k: int) -> int:  # the instruction of the round's j-th judgment is this + j
        return ROUNDS[k][2] * self.half


def _texts(shared: Path) -> dict[int, list[str]]:
    """Pools of real texts: 0 instructions, 1 teachers' answers, 2 students' answers, 3 judge sentences."""
    from corpus import _answer_sentences, _instructions, _json, _jsonl

    def clean(texts):
        return list(dict.fromkeys(" ".join(t.split()) for t in texts if t and t.strip()))

    def keep(texts):  # answers keep their line breaks (they are markdown)
        return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))

    teacher = [r["output"] for r in _json(shared / "LLaMA-Factory_alpaca_en_demo.json")]
    teacher += [r["output"] for r in _json(shared / "alpaca_eval_results_gpt4_model_outputs.json")]
    student = [r["output"] for r in _json(shared / "alpaca_eval_results_alpaca-7b_model_outputs.json")]
    student += [r["output"] for r in _json(shared / "alpaca_eval_results_text_davinci_003_model_outputs.json")]
    student += [r["response"] for r in _jsonl(shared / "self-instruct_text-davinci-003_predictions.jsonl")]
    return {0: clean(_instructions(shared)), 1: keep(teacher), 2: keep(student), 3: clean(_answer_sentences(shared))}


def _load_texts(conn: psycopg.Connection, shared: Path) -> dict[int, int]:
    pools = _texts(shared)
    conn.execute("DROP TABLE IF EXISTS bench_rq_text")
    conn.execute("CREATE TABLE bench_rq_text (pool smallint, idx int, body text, PRIMARY KEY (pool, idx))")
    with conn.cursor().copy("COPY bench_rq_text (pool, idx, body) FROM STDIN") as copy:
        for pool, texts in pools.items():
            for idx, body in enumerate(texts):
                copy.write_row((pool, idx, body))
    conn.execute("ANALYZE bench_rq_text")
    # A deterministic pseudo-random non-negative number from an id (inlined by the planner).
    conn.execute(
        "CREATE OR REPLACE FUNCTION bench_rq_h(bigint) RETURNS bigint"
        " AS 'SELECT hashint8($1)::bigint & 2147483647' LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    )
    return {pool: len(texts) for pool, texts in pools.items()}


def _t(pool: int, expr: str) -> str:
    """A scalar subquery: pool text number `expr` (taken modulo the pool's size by the caller)."""
    return f"(SELECT body FROM bench_rq_text WHERE pool = {pool} AND idx = {expr})"  # noqa: S608


def _instructions_sql(dataset_id: int, start: int, stop: int, sizes: dict[int, int]) -> str:
    cats = "(ARRAY[" + ",".join(f"'{c}'" for c in CATEGORIES) + "])"
    return f"""
    INSERT INTO datasets_instruction (id, dataset_id, text, input, reference_output, gold_label, task_category,
        origin, content_hash, metadata, created_at)
    SELECT g, {dataset_id}, s.text, s.input, '', '', {cats}[1 + (bench_rq_h(g) % {len(CATEGORIES)})],
        'imported', encode(sha256(convert_to(s.text || E'\\n' || s.input, 'UTF8')), 'hex'), '{{}}', now()
    FROM generate_series({start}, {stop}) g,
    LATERAL (SELECT {_t(0, f"(g % {sizes[0]})")} || ' (variant ' || g || ')' AS text,
                    CASE WHEN g % 5 = 0 THEN {_t(3, f"(g % {sizes[3]})")} ELSE '' END AS input) s
    """  # noqa: S608


def _responses_sql(lay: Layout, k: int, round_id: int, start: int, stop: int, sizes: dict[int, int]) -> str:
    base, first, m = lay.response_base(k), lay.first_instruction(k), lay.half
    common = "model, text, parsed_label, rationale, style, template_id, prompt_tokens, completion_tokens, cost, request_hash, created_at, instruction_id, round_id, checkpoint, stage"  # noqa: E501
    return f"""
    INSERT INTO judging_response (id, role, {common})
    SELECT {base} + j, 'teacher', 'gpt-4', {_t(1, f"((({first} + j) * 7 + {k}) % {sizes[1]})")}, '', '', '',
        'answer', 60 + j % 200, 150 + j % 500, 0.0042, '', now(), {first} + j, {round_id}, '', 'answer_teacher'
    FROM generate_series({start}, {stop}) j
    UNION ALL
    SELECT {base} + {m} + j, 'student', 'builtin:tiny', {_t(2, f"((({first} + j) * 13 + {k}) % {sizes[2]})")},
        '', '', '', 'answer', 0, 0, 0, '', now(), {first} + j, {round_id}, 'sha256-bench', 'answer_student'
    FROM generate_series({start}, {stop}) j
    """  # noqa: S608


def _judgments_sql(lay: Layout, k: int, round_id: int, start: int, stop: int, sizes: dict[int, int]) -> str:
    rbase, jbase, first, m = lay.response_base(k), lay.judgment_base(k), lay.first_instruction(k), lay.half
    # Scores on 1..10 from a hash of the judgment id; the second order moves each by up to two points,
    # so close calls are contested (the orders disagree on which answer is better).
    return f"""
    INSERT INTO judging_judgment (id, judge_model, template_id, template_version, raw_teacher_first,
        raw_student_first, teacher_first_teacher_score, teacher_first_student_score,
        student_first_student_score, student_first_teacher_score, teacher_score, student_score, gap, verdict,
        contested, created_at, instruction_id, round_id, student_response_id, teacher_response_id, kind)
    SELECT id, 'gpt-4-judge', 'judge_pair', 1,
        {_t(3, f"(id % {sizes[3]})")} || E'\\nScore of Assistant 1: ' || a1 || E'\\nScore of Assistant 2: ' || a2,
        {_t(3, f"((id * 3 + 1) % {sizes[3]})")} || E'\\nScore of Assistant 1: ' || b2 || E'\\nScore of Assistant 2: ' || b1,
        a1, a2, b2, b1, (a1 + b1) / 2.0, (a2 + b2) / 2.0, (a1 + b1 - a2 - b2) / 2.0,
        CASE WHEN (a1 + b1 - a2 - b2) / 2.0 >= 1 THEN 'hard' ELSE 'easy' END,
        sign(a1 - a2) * sign(b1 - b2) < 0, now(), {first} + j, {round_id}, {rbase} + {m} + j, {rbase} + j,
        'discrimination'
    FROM (SELECT j, {jbase} + j AS id,
                 4 + bench_rq_h({jbase} + j) % 7 AS a1, 3 + bench_rq_h({jbase} + j + 7) % 7 AS a2,
                 bench_rq_h({jbase} + j + 13) % 5 - 2 AS d1, bench_rq_h({jbase} + j + 29) % 5 - 2 AS d2
          FROM generate_series({start}, {stop}) j) s0,
    LATERAL (SELECT LEAST(10, GREATEST(1, a1 + d1)) AS b1, LEAST(10, GREATEST(1, a2 + d2)) AS b2) s
    """  # noqa: E501, S608


def _reviewer(reviewer_ids: list[int]) -> str:
    """The bench reviewer who voted on finished task number t, in turn."""
    return "(ARRAY[" + ",".join(map(str, reviewer_ids)) + f"])[1 + (t % {len(reviewer_ids)})]"


def _tasks_sql(lay: Layout, k: int, round_id: int, content_type: int, reviewer_ids, start: int, stop: int) -> str:
    _, _, _, required, done = ROUNDS[k]
    status = "'done'" if done else "'open'"
    decision = "(ARRAY['accept','accept','accept','accept','flip','flip','invalid'])[1 + t % 7]" if done else "''"
    resolved, resolver = ("now()", _reviewer(reviewer_ids)) if done else ("NULL", "NULL")
    # Every other judgment of the round (j = 2t) is reviewed.
    return f"""
    INSERT INTO reviews_reviewtask (id, created_at, updated_at, kind, subject_id, status, priority, round_id,
        subject_type_id, decision, edited_text, note, required_reviews, resolved_at, resolved_by_id)
    SELECT {lay.task_base(k)} + t, now(), now(), 'verdict', jd.id, {status}, CASE WHEN jd.contested THEN 2 ELSE 0 END,
        {round_id}, {content_type}, {decision}, '', '', {required}, {resolved}, {resolver}
    FROM generate_series({start}, {stop}) t JOIN judging_judgment jd ON jd.id = {lay.judgment_base(k)} + 2 * t
    """  # noqa: S608


def _votes_sql(lay: Layout, k: int, reviewer_ids: list[int], start: int, stop: int) -> list[str]:
    """A finished round: one verdict and one submitted assignment per task, by the bench reviewers in turn."""
    base, who = lay.task_base(k), _reviewer(reviewer_ids)
    return [
        f"""INSERT INTO reviews_reviewverdict (id, task_id, reviewer_id, decision, edited_text, note, created_at)
        SELECT {base} + t, {base} + t, {who}, rt.decision, '', '', now()
        FROM generate_series({start}, {stop}) t JOIN reviews_reviewtask rt ON rt.id = {base} + t""",  # noqa: S608
        f"""INSERT INTO reviews_reviewassignment (id, created_at, updated_at, status, lease_expires_at, submitted_at,
            reviewer_id, task_id, verdict_id)
        SELECT {base} + t, now(), now(), 'submitted', NULL, now(), {who}, {base} + t, {base} + t
        FROM generate_series({start}, {stop}) t""",  # noqa: S608
    ]


def _chunks(start: int, stop: int, size: int):
    for lo in range(start, stop + 1, size):
        yield lo, min(stop, lo + size - 1)


def _run_parallel(url: str, transactions: list[list[str]]) -> None:
    """Run the transactions (each a list of statements, committed together) on two connections."""
    errors: list[psycopg.Error] = []
    lock = threading.Lock()
    queue = list(transactions)

    def worker():
        with psycopg.connect(url) as conn:
            # Ours only: no wait for the disk at each commit, full-page images in the WAL compressed, and
            # no foreign-key trigger per row (ids are written by arithmetic; _check_ids checks them after).
            # Indexes, unique and check constraints all work as usual.
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET wal_compression = lz4")
            conn.execute("SET session_replication_role = replica")
            conn.commit()
            while True:
                with lock:
                    if not queue or errors:
                        return
                    statements = queue.pop(0)
                try:
                    for sql in statements:
                        conn.execute(sql)
                    conn.commit()
                except psycopg.Error as exc:  # reported by the main thread
                    with lock:
                        errors.append(exc)
                    return

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def build(url: str, n: int, shared: Path, log=print) -> dict:
    """Fill a freshly migrated database (Django set up against `url`); returns the marker's figures."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from apps.core.roles import Role
    from apps.core.services import user_grant_role
    from apps.datasets.models import Dataset
    from apps.experiments.models import Experiment, Round
    from apps.judging.models import Judgment

    if n < 1000 or n % 4:
        raise SystemExit(f"--size must be a multiple of 4 and at least 1,000 instructions, got {n:,}")
    lay = Layout(n)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    User = get_user_model()
    for name in [*REVIEWERS, OPERATOR]:
        User.objects.create_user(name, password=None)
        user_grant_role(username=name, role=Role.OPERATOR if name == OPERATOR else Role.REVIEWER)
    reviewer_ids = list(User.objects.filter(username__in=REVIEWERS).order_by("pk").values_list("pk", flat=True))
    dataset = Dataset.objects.create(name=DATASET, source="bench/review_queue.py")
    rounds = []
    for exp_name, index, _, required, done in ROUNDS:
        experiment, _ = Experiment.objects.get_or_create(
            name=exp_name,
            defaults={"recipe": "lion", "dataset": dataset, "status": Experiment.Status.WAITING_REVIEW,
                      "config": {"recipe": "lion", "review": {"overlap": required}}},
        )  # fmt: skip
        status = Round.Status.FINISHED if done else Round.Status.WAITING_REVIEW
        rounds.append(Round.objects.create(experiment=experiment, index=index, status=status).pk)
    content_type = ContentType.objects.get_for_model(Judgment).pk
    connection.close()

    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = _load_texts(conn, shared)
    log(f"  real texts: {sizes[0]:,} instructions, {sizes[1]:,} teacher and {sizes[2]:,} student answers")

    def phase(name, transactions):
        t = time.perf_counter()
        _run_parallel(url, transactions)
        timings[name] = time.perf_counter() - t
        log(f"  {name}: {timings[name]:.1f} s")

    phase("instructions", [[_instructions_sql(dataset.pk, lo, hi, sizes)] for lo, hi in _chunks(1, n, CHUNK)])
    # A round's answers, judgments and tasks are written chunk by chunk, each chunk in one transaction,
    # so the rows that refer to each other are written while their pages are in memory.
    chunks = []
    for lo, hi in _chunks(1, lay.half, CHUNK):
        for k in range(len(ROUNDS)):
            chunk = [_responses_sql(lay, k, rounds[k], lo, hi, sizes), _judgments_sql(lay, k, rounds[k], lo, hi, sizes)]
            t_lo, t_hi = (lo + 1) // 2, hi // 2  # tasks t review judgments j = 2t
            chunk.append(_tasks_sql(lay, k, rounds[k], content_type, reviewer_ids, t_lo, t_hi))
            if ROUNDS[k][4]:
                chunk += _votes_sql(lay, k, reviewer_ids, t_lo, t_hi)
            chunks.append(chunk)
    phase("answers, judgments, tasks and votes", chunks)
    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("datasets_instruction", "judging_response", "judging_judgment", "reviews_reviewtask",
                      "reviews_reviewverdict", "reviews_reviewassignment"):  # fmt: skip
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(max(id), 1) FROM {table}))"  # noqa: S608
            )
        conn.execute("DROP TABLE bench_rq_text")
        conn.execute("DROP FUNCTION bench_rq_h(bigint)")
        # What autovacuum does on a live server (this one runs without it): statistics, the visibility
        # map that index-only scans need, and hint bits set once rather than by the first reads.
        conn.execute("VACUUM (ANALYZE)")
    timings["VACUUM (ANALYZE)"] = time.perf_counter() - t
    log(f"  sequences, VACUUM (ANALYZE): {timings['VACUUM (ANALYZE)']:.1f} s")
    _dataset_counts(dataset.pk, n)
    _check_ids(url, n)
    load_s = time.perf_counter() - t0
    marker = {"bench": "review_queue", "version": MARKER_VERSION, "size": n, "load_s": round(load_s, 1),
              "timings": {k: round(v, 1) for k, v in timings.items()},
              "total_s": round(time.perf_counter() - started, 1), "max_verdict": reviews_max_ids(url)}  # fmt: skip
    Dataset.objects.filter(pk=dataset.pk).update(description=json.dumps(marker))
    return marker


# (table, column, referenced table): every reference the generator writes.
REFERENCES = (
    ("judging_response", "instruction_id", "datasets_instruction"),
    ("judging_judgment", "instruction_id", "datasets_instruction"),
    ("judging_judgment", "teacher_response_id", "judging_response"),
    ("judging_judgment", "student_response_id", "judging_response"),
    ("reviews_reviewtask", "subject_id", "judging_judgment"),
    ("reviews_reviewverdict", "task_id", "reviews_reviewtask"),
    ("reviews_reviewassignment", "task_id", "reviews_reviewtask"),
    ("reviews_reviewassignment", "verdict_id", "reviews_reviewverdict"),
)


def _check_ids(url: str, n: int) -> None:
    """Every table holds the rows the layout says, with ids 1..count, and every reference the generator
    wrote falls inside its table's ids, so no foreign key dangles (they were not checked row by row)."""
    expected = {
        "datasets_instruction": n,
        "judging_response": 4 * n,
        "judging_judgment": 2 * n,
        "reviews_reviewtask": n,
        "reviews_reviewverdict": n // 4,
        "reviews_reviewassignment": n // 4,
    }
    with psycopg.connect(url) as conn:
        for table, count in expected.items():
            found = conn.execute(f"SELECT count(*), min(id), max(id) FROM {table}").fetchone()  # noqa: S608
            if found != (count, 1, count):
                raise SystemExit(f"{table} holds {found[0]:,} rows with ids {found[1]}..{found[2]}, not 1..{count:,}")
        for table, column, target in REFERENCES:
            low, high = conn.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()  # noqa: S608
            if low < 1 or high > expected[target]:
                raise SystemExit(f"{table}.{column} runs {low}..{high}, outside {target}'s ids")
        rounds = [r for (r,) in conn.execute("SELECT id FROM experiments_round ORDER BY id")]
        for table in ("judging_response", "judging_judgment", "reviews_reviewtask"):
            low, high = conn.execute(f"SELECT min(round_id), max(round_id) FROM {table}").fetchone()  # noqa: S608
            if rounds != list(range(rounds[0], rounds[0] + len(rounds))) or low < rounds[0] or high > rounds[-1]:
                raise SystemExit(f"{table}.round_id runs {low}..{high}, outside the rounds {rounds}")


def _dataset_counts(dataset_id: int, n: int) -> None:
    """The dataset's size and, where the datasets app keeps them, its per-category counts."""
    from apps.datasets.models import Dataset

    Dataset.objects.filter(pk=dataset_id).update(size=n)
    try:
        from apps.datasets.categories import dataset_category_counts_rebuild
    except ImportError:
        return
    dataset_category_counts_rebuild(dataset_id=dataset_id)


def reviews_max_ids(url: str) -> dict[str, int]:
    """The highest assignment and verdict ids the generated data holds (later ones are the bench's own)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT COALESCE(max(id), 0) FROM reviews_reviewassignment),"
            " (SELECT COALESCE(max(id), 0) FROM reviews_reviewverdict)"
        ).fetchone()
    return {"assignment": row[0], "verdict": row[1]}


def read_marker() -> dict | None:
    from django.db import DatabaseError

    from apps.datasets.models import Dataset

    try:
        description = Dataset.objects.filter(name=DATASET).values_list("description", flat=True).first()
    except DatabaseError:
        return None
    if not description:
        return None
    try:
        marker = json.loads(description)
    except ValueError:
        return None
    return marker if marker.get("bench") == "review_queue" and marker.get("version") == MARKER_VERSION else None


def reset_reviews(url: str, marker: dict) -> int:
    """Undo what earlier runs of the benchmark did to the queues (their claims, votes, drafts and
    decisions), so every run starts from the generated state. Returns how many tasks were reset."""
    top = marker["max_verdict"]
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM reviews_reviewdraft")
        conn.execute("DELETE FROM reviews_reviewassignment WHERE id > %s", (top["assignment"],))
        conn.execute("DELETE FROM reviews_reviewverdict WHERE id > %s", (top["verdict"],))
        cur = conn.execute(
            "UPDATE reviews_reviewtask SET status = 'open', decision = '', edited_text = '', note = '',"
            " resolved_at = NULL, resolved_by_id = NULL"
            " WHERE id NOT IN (SELECT task_id FROM reviews_reviewassignment) AND status <> 'open'"
        )
        return cur.rowcount
