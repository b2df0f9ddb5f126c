"""Agreement between reviewers: percent agreement and kappa, per queue, per reviewer pair and per reviewer
against the resolution.

The pure functions take counts, never rows. The selectors let the database count: votes are aggregated
per task and decision (or per pair of decisions) in SQL first, so a queue of millions of verdicts sends
back a handful of rows. A vote is a reviewer's submitted assignment (his latest verdict on the task); the
categories are the decisions (an edit counts as "edit", whatever its text).

Formulas (n: rated items; p_o: observed agreement; p_e: agreement expected by chance):
- Cohen's kappa for two raters A and B: p_o = sum_c n_cc / n, p_e = sum_c (n_c. / n)(n_.c / n), each rater
  with his own marginals; kappa = (p_o - p_e) / (1 - p_e).
- A queue (many reviewers, k votes per task): every pair of votes on one task is one comparison; p_o =
  agreeing pairs / pairs, p_e = sum_c p_c^2 with p_c the share of category c among those votes. With the
  same k on every task this is Fleiss' kappa; for k = 2 it is Scott's pi.
- kappa is None when p_e = 1 (every vote in one category: chance explains everything), and every figure
  is None when there is nothing to compare.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F

from apps.reviews.kinds import check_kind
from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict

SUBMITTED = ReviewAssignment.Status.SUBMITTED


@dataclass(frozen=True)
class Agreement:
    n: int  # items (two raters) or vote pairs (a queue)
    percent: float | None  # observed agreement, 0..100
    kappa: float | None
    tasks: int = 0  # a queue: tasks with at least two votes


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: str
    reviewer_b: str
    agreement: Agreement


@dataclass(frozen=True)
class ReviewerAgreement:
    reviewer: str
    agreement: Agreement


def _kappa(p_o: float, p_e: float) -> float | None:
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def cohen_kappa(table: Mapping[tuple[str, str], int]) -> Agreement:
    """Two raters' agreement from their contingency table {(category by A, category by B): count}."""
    n = sum(table.values())
    if n == 0:
        return Agreement(0, None, None)
    rows: dict[str, int] = defaultdict(int)
    cols: dict[str, int] = defaultdict(int)
    for (a, b), count in table.items():
        rows[a] += count
        cols[b] += count
    p_o = sum(count for (a, b), count in table.items() if a == b) / n
    p_e = sum(rows[c] * cols.get(c, 0) for c in rows) / (n * n)
    return Agreement(n, 100.0 * p_o, _kappa(p_o, p_e))


def pooled_kappa(*, category_votes: Mapping[str, int], agreeing_pairs: int, pairs: int, tasks: int = 0) -> Agreement:
    """Many raters' agreement from counts: votes per category, and (unordered) vote pairs on the same
    task, all of them and those that agree."""
    if pairs == 0:
        return Agreement(0, None, None, tasks)
    total = sum(category_votes.values())
    p_o = agreeing_pairs / pairs
    p_e = sum((count / total) ** 2 for count in category_votes.values()) if total else 1.0
    return Agreement(pairs, 100.0 * p_o, _kappa(p_o, p_e), tasks)


def fleiss_counts(per_task: Iterable[Mapping[str, int]]) -> dict:
    """The arguments of `pooled_kappa` from per-task vote counts {category: votes} (for small inputs and
    tests; the selector computes the same sums in SQL)."""
    votes: dict[str, int] = defaultdict(int)
    agreeing = pairs = tasks = 0
    for counts in per_task:
        m = sum(counts.values())
        if m < 2:
            continue
        tasks += 1
        pairs += m * (m - 1) // 2
        for category, count in counts.items():
            votes[category] += count
            agreeing += count * (count - 1) // 2
    return {"category_votes": dict(votes), "agreeing_pairs": agreeing, "pairs": pairs, "tasks": tasks}


# --- selectors ------------------------------------------------------------------------------------------
def _round_clause(round_ids: Iterable[int] | None, column: str) -> tuple[str, list]:
    if round_ids is None:
        return "", []
    ids = [int(pk) for pk in round_ids]
    if not ids:
        return " AND 1 = 0", []
    return f" AND {column} IN ({', '.join(['%s'] * len(ids))})", ids


def queue_agreement(*, kind: str, round_ids: Iterable[int] | None = None) -> Agreement:
    """Agreement between all reviewers of a queue (one kind, optionally some rounds), over the tasks with
    two or more votes."""
    check_kind(kind)
    q = connection.ops.quote_name
    assignment, verdict, task = (q(m._meta.db_table) for m in (ReviewAssignment, ReviewVerdict, ReviewTask))
    rounds, round_params = _round_clause(round_ids, "t.round_id")
    # Table names come from the models and every value is a parameter.
    votes = (
        "WITH votes AS ("  # noqa: S608
        " SELECT a.task_id AS task_id, v.decision AS decision, COUNT(*) AS n"
        f" FROM {assignment} a JOIN {verdict} v ON v.id = a.verdict_id JOIN {task} t ON t.id = a.task_id"
        f" WHERE a.status = %s AND t.kind = %s{rounds}"
        " GROUP BY a.task_id, v.decision"
        "), sizes AS (SELECT task_id, SUM(n) AS m FROM votes GROUP BY task_id HAVING SUM(n) >= 2)"
    )
    # One statement: PostgreSQL computes the votes once for both the per-decision sums and the totals
    # (two statements over the same CTE cost 0.25 s each on the overview at 200,000 tasks). With no task
    # of two votes there is no row, and the totals are zero.
    query = (
        votes + ", agg AS (SELECT votes.decision AS decision, SUM(votes.n) AS n,"  # noqa: S608
        " SUM(votes.n * (votes.n - 1) / 2) AS agree FROM votes JOIN sizes ON sizes.task_id = votes.task_id"
        " GROUP BY votes.decision)"
        " SELECT decision, n, agree, (SELECT COUNT(*) FROM sizes),"
        " (SELECT COALESCE(SUM(m * (m - 1) / 2), 0) FROM sizes) FROM agg"
    )
    params = [SUBMITTED, kind, *round_params]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        found = cursor.fetchall()
    rows = [(decision, n, agree) for decision, n, agree, _, _ in found]
    tasks, pairs = (found[0][3], found[0][4]) if found else (0, 0)
    return pooled_kappa(
        category_votes={decision: int(n) for decision, n, _ in rows},
        agreeing_pairs=sum(int(agree) for _, _, agree in rows),
        pairs=int(pairs),
        tasks=int(tasks),
    )


def _names(ids: set[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))


def _votes(kind: str, round_ids: Iterable[int] | None):
    qs = ReviewAssignment.objects.filter(status=SUBMITTED, task__kind=check_kind(kind))
    if round_ids is not None:
        qs = qs.filter(task__round_id__in=[int(pk) for pk in round_ids])
    return qs.order_by()


def pair_agreement(*, kind: str, round_ids: Iterable[int] | None = None) -> list[PairAgreement]:
    """Cohen's kappa for every two reviewers who voted on the same tasks of a queue, most shared first."""
    rows = (
        _votes(kind, round_ids)
        .filter(task__assignments__status=SUBMITTED, task__assignments__reviewer_id__gt=F("reviewer_id"))
        .values_list(
            "reviewer_id", "task__assignments__reviewer_id", "verdict__decision", "task__assignments__verdict__decision"
        )
        .annotate(n=Count("pk"))
    )
    tables: dict[tuple[int, int], dict[tuple[str, str], int]] = defaultdict(dict)
    for a, b, decision_a, decision_b, n in rows:
        tables[(a, b)][(decision_a, decision_b)] = n
    names = _names({pk for pair in tables for pk in pair})
    out = [PairAgreement(names[a], names[b], cohen_kappa(table)) for (a, b), table in tables.items()]
    return sorted(out, key=lambda p: (-p.agreement.n, p.reviewer_a, p.reviewer_b))


def resolution_agreement(*, kind: str, round_ids: Iterable[int] | None = None) -> list[ReviewerAgreement]:
    """Each reviewer's votes against the decided tasks' resolutions (Cohen's kappa), most votes first.
    Telling only with overlap or operators' resolutions: a lone vote is its task's resolution."""
    rows = (
        _votes(kind, round_ids)
        .filter(task__status=ReviewTask.Status.DONE)
        .values_list("reviewer_id", "verdict__decision", "task__decision")
        .annotate(n=Count("pk"))
    )
    tables: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for reviewer_id, vote, resolution, n in rows:
        tables[reviewer_id][(vote, resolution)] = n
    names = _names(set(tables))
    out = [ReviewerAgreement(names[pk], cohen_kappa(table)) for pk, table in tables.items()]
    return sorted(out, key=lambda r: (-r.agreement.n, r.reviewer))
