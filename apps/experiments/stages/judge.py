"""judge: the referee compares the teacher's and the student's answers in both orders (params: pool)."""

from apps.datasets.models import Instruction
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.stages.base import Context, GatewayMixin, StageKind
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall
from apps.llm.selectors import llm_call_template, llm_request_for
from workers.llm.prompts import get_template

ORDERS = ("tf", "sf")  # teacher shown first, student shown first


class JudgeStage(GatewayMixin, StageKind):
    name = "judge"
    uses_calls = True

    def _answers(self, ctx: Context, ids: list[int]) -> dict[int, dict[str, Response]]:
        """Instructions of `ids` that have both answers in this round: {instruction: {role: response}}."""
        found: dict[int, dict[str, Response]] = {}
        for response in Response.objects.filter(
            round=ctx.round, instruction_id__in=ids, role__in=["teacher", "student"], style=""
        ):
            found.setdefault(response.instruction_id, {})[response.role] = response
        return {pk: pair for pk, pair in found.items() if len(pair) == 2}

    def collects_early(self, ctx: Context) -> bool:
        return True  # verdicts come from finals; collect writes Judgment rows and counts

    def start(self, ctx: Context) -> None:
        # Three plain reads and a set intersection, whose cost follows the pool's size on any database: one
        # query with the pool's ids in a list and the teacher's answers in a subquery became a nested loop
        # on PostgreSQL (23 s for a 13,000-item pool, growing with its square).
        ids = set(
            pool_instruction_ids(
                experiment_id=ctx.experiment.pk, pool=ctx.run.params.get("pool", "cache"), round_index=ctx.round.index
            )
        )
        for role in ("teacher", "student"):
            answered = Response.objects.filter(round=ctx.round, role=role, style="")
            ids &= set(answered.values_list("instruction_id", flat=True))
        ctx.run.total = len(ids)

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return pool_instruction_ids(
            experiment_id=ctx.experiment.pk,
            pool=ctx.run.params.get("pool", "cache"),
            round_index=ctx.round.index,
            after=after,
            limit=limit,
        )

    def process(self, ctx: Context, ids: list[int]) -> None:
        endpoint = ctx.endpoint("judge")
        template = get_template("judge_pairwise")
        instructions = Instruction.objects.in_bulk(ids)
        keyed = []
        for pk, pair in sorted(self._answers(ctx, ids).items()):
            teacher, student = pair["teacher"].text, pair["student"].text
            base = {"instruction": instructions[pk].text, "input": instructions[pk].input}
            keyed.append(
                (
                    ctx.item(pk, "tf"),
                    llm_request_for(endpoint, template, {**base, "answer_1": teacher, "answer_2": student}),
                )
            )
            keyed.append(
                (
                    ctx.item(pk, "sf"),
                    llm_request_for(endpoint, template, {**base, "answer_1": student, "answer_2": teacher}),
                )
            )
        self.enqueue(ctx, endpoint, "judge", keyed)

    def collect(self, ctx: Context, ids: list[int]) -> None:
        pairs = self._answers(ctx, ids)
        finals = self.finals(ctx, [ctx.item(pk, order) for pk in pairs for order in ORDERS])
        endpoint_id = ctx.experiment.judge_endpoint_id
        rows = []
        for pk, pair in sorted(pairs.items()):
            tf, sf = finals.get(ctx.item(pk, "tf")), finals.get(ctx.item(pk, "sf"))
            if tf is None or sf is None:
                continue
            t1, s1 = _scores(tf)
            s2, t2 = _scores(sf)
            template_id, version = llm_call_template(tf)
            rows.append(
                Judgment(
                    instruction_id=pk,
                    round=ctx.round,
                    kind=Judgment.Kind.DISCRIMINATION,
                    teacher_response=pair["teacher"],
                    student_response=pair["student"],
                    judge_model=tf.model,
                    endpoint_id=endpoint_id,
                    template_id=template_id,
                    template_version=version,
                    call_teacher_first=tf,
                    call_student_first=sf,
                    raw_teacher_first=tf.reply,
                    raw_student_first=sf.reply,
                    teacher_first_teacher_score=t1,
                    teacher_first_student_score=s1,
                    student_first_student_score=s2,
                    student_first_teacher_score=t2,
                )
            )
            ctx.run.done += 1
            ctx.run.failed += int(t1 is None or s2 is None)
        Judgment.objects.bulk_create(rows, ignore_conflicts=True)


def _scores(call: LLMCall) -> tuple[float | None, float | None]:
    """(first shown, second shown) when the reply parsed; (None, None) when it did not, never a default."""
    if call.status != LLMCall.Status.OK or not call.parsed:
        return None, None
    return float(call.parsed["assistant_1"]), float(call.parsed["assistant_2"])
