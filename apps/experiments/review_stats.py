"""How often reviewers overturn the judge: per round, the decided verdict tasks (hard/easy calls of the
discriminate stage) by task category, counted in the database. A flip or a mark of invalid overturns the
judge's call; an accept confirms it. Tasks auto-approve accepted are left out: nobody looked at them."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.datasets.models import Instruction
from apps.experiments.models import Round, TaskLabel
from apps.experiments.stages.review_gate import AUTO_REVIEWER
from apps.judging.models import Judgment
from apps.reviews.kinds import Decision, Kind
from apps.reviews.models import ReviewTask

UNLABELLED = "(no category)"


@dataclass(frozen=True)
class JudgeOverturns:
    category: str
    reviewed: int
    confirmed: int
    flipped: int
    invalid: int

    @property
    def overturned(self) -> int:
        return self.flipped + self.invalid

    @property
    def rate(self) -> float | None:
        """Overturned share of the reviewed calls, 0..1 (None with none reviewed)."""
        return self.overturned / self.reviewed if self.reviewed else None


def judge_overturns(*, round_id: int) -> list[JudgeOverturns]:
    """One row per task category of the round's reviewed verdicts, most reviewed first, then one named
    "all" with the round's totals. An instruction's category is the experiment's label that counts
    (reviewer > LLM > local > imported), else the imported one."""
    round_ = Round.objects.only("experiment_id").get(pk=round_id)
    auto = get_user_model().objects.filter(username=AUTO_REVIEWER).values_list("pk", flat=True).first()
    # One join of the round's decided tasks to their judgments and instructions, grouped by category and
    # decision. The ORM's form (judgments whose id is among the tasks' subjects, each task's decision by a
    # correlated subquery joined to auth_user, counted three times) took 2.4 s per overview for a round
    # of 50,000 reviewed calls on PostgreSQL; the one task of each judgment in a round (the
    # review_task_once_per_round constraint) makes the join count the same.
    rank = " ".join(f"WHEN %s THEN {n}" for n in range(len(TaskLabel.PRIORITY)))
    sql = f"""
        SELECT COALESCE(
                 (SELECT l.category FROM {TaskLabel._meta.db_table} l
                  WHERE l.experiment_id = %s AND l.instruction_id = j.instruction_id
                  ORDER BY CASE l.source {rank} END LIMIT 1),
                 NULLIF(i.task_category, ''), %s),
               t.decision, COUNT(*)
        FROM {ReviewTask._meta.db_table} t
        JOIN {Judgment._meta.db_table} j ON j.id = t.subject_id AND j.round_id = t.round_id
        JOIN {Instruction._meta.db_table} i ON i.id = j.instruction_id
        WHERE t.round_id = %s AND t.kind = %s AND t.status = %s AND t.subject_type_id = %s
          AND (t.resolved_by_id IS NULL OR t.resolved_by_id <> %s)
        GROUP BY 1, 2"""  # noqa: S608 (table names from the models, every value a parameter)
    params = [round_.experiment_id, *TaskLabel.PRIORITY, UNLABELLED, round_id, Kind.VERDICT,
              ReviewTask.Status.DONE, ContentType.objects.get_for_model(Judgment).pk, auto or 0]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    tally: dict[str, dict[str, int]] = {}
    for category, decision, n in rows:
        tally.setdefault(category, {})[decision] = n
    out = [
        JudgeOverturns(
            category, sum(by.values()), *(by.get(d, 0) for d in (Decision.ACCEPT, Decision.FLIP, Decision.INVALID))
        )
        for category, by in tally.items()
    ]
    out.sort(key=lambda r: (-r.reviewed, r.category))
    if out:
        out.append(
            JudgeOverturns(
                "all",
                sum(r.reviewed for r in out),
                sum(r.confirmed for r in out),
                sum(r.flipped for r in out),
                sum(r.invalid for r in out),
            )
        )
    return out
