"""evaluate: the round's checkpoint against the teacher on the eval set, then the round's figures.

Two parts, each walking the eval set (capped at params.eval.max_items, lowest ids first) through the usual
submit → wait → collect phases:

1. answers: the student answers through the answerer interface (its served endpoint, or local generation
   with the round's newest checkpoint); when the experiment has a judge, the teacher answers too, through
   the ledger (a request another round or stage already made costs nothing).
2. judgments: the judge compares both answers in both orders; rows are Judgment kind=evaluation, which
   never collide with (or are read as) discrimination judgments of the same instruction and round.

Then finalize computes the win rate, interval, per-category rates, length-controlled rate and accuracy
(apps.experiments.evaluation over workers.algorithms.evaluation) and stores them. Params: `prompt`
("answer" or "predict": step-by-step's label prompt), `dataset_kind` (how gold labels compare; inferred
when absent), `generation` (LocalStudent's generation params).
"""

from apps.datasets.models import Instruction
from apps.experiments.answerers import EndpointAnswerer, answerer_for
from apps.experiments.evaluation import eval_instructions, evaluation_compute, evaluation_record, predicted_label
from apps.experiments.machine import R, StageError, set_round_status
from apps.experiments.stages.base import Context, GatewayMixin, Outcome, P, StageKind
from apps.experiments.stages.judge import ORDERS, _scores
from apps.judging.models import Judgment, Response
from apps.llm.selectors import llm_call_template, llm_request_for
from workers.algorithms.discrimination import discriminate
from workers.algorithms.step_by_step.inputs import PREDICT_PREFIX
from workers.llm.prompts import get_template, task_text

ANSWERS, JUDGMENTS = "answers", "judgments"


class EvaluateStage(GatewayMixin, StageKind):
    name = "evaluate"
    uses_calls = True

    # --- set-up ------------------------------------------------------------------------------------------
    def start(self, ctx: Context) -> None:
        cap = (ctx.params.get("eval") or {}).get("max_items")
        ids = eval_instructions(experiment=ctx.experiment).values_list("pk", flat=True)
        ids = list(ids[: int(cap)] if cap else ids)
        if not ids:
            raise StageError("The eval set has no instructions to evaluate the student on.")
        judged = ctx.endpoint("judge") is not None and ctx.endpoint("teacher") is not None
        ctx.run.total = len(ids)
        ctx.run.state = {**ctx.run.state, "part": ANSWERS, "last_id": ids[-1], "judged": judged}
        set_round_status(ctx.round, R.EVALUATING)

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        ids = eval_instructions(experiment=ctx.experiment).filter(pk__gt=after, pk__lte=ctx.run.state["last_id"])
        return list(ids.values_list("pk", flat=True)[:limit])

    def _part(self, ctx: Context) -> str:
        return ctx.run.state.get("part", ANSWERS)

    def _student(self, ctx: Context):
        return answerer_for(ctx, "student")

    def _teacher(self, ctx: Context) -> EndpointAnswerer:
        return answerer_for(ctx, "teacher")

    def _questions(self, ctx: Context, ids: list[int]) -> list[Instruction]:
        rows = Instruction.objects.in_bulk(ids)
        return [rows[pk] for pk in ids if pk in rows]

    def _asked(self, ctx: Context, instructions: list[Instruction]) -> list[Instruction]:
        """What the student is asked: the instruction, or step-by-step's `predict: <input>` prompt (an unsaved
        copy with the same id, so the answerers key it as the instruction)."""
        if ctx.run.params.get("prompt") != "predict":
            return instructions
        return [Instruction(pk=i.pk, text=PREDICT_PREFIX + task_text(i.text, i.input), input="") for i in instructions]

    # --- phases ------------------------------------------------------------------------------------------
    def process(self, ctx: Context, ids: list[int]) -> None:
        instructions = self._questions(ctx, ids)
        if self._part(ctx) == ANSWERS:
            self._student(ctx).submit(ctx, self._asked(ctx, instructions))
            if ctx.run.state.get("judged"):
                self._teacher(ctx).submit(ctx, instructions)
            return
        self._judge(ctx, instructions)

    def outstanding(self, ctx: Context) -> int:
        left = super().outstanding(ctx)
        student = self._student(ctx)
        if self._part(ctx) == ANSWERS and not isinstance(student, EndpointAnswerer):
            left += student.outstanding(ctx)
        return left

    def collect(self, ctx: Context, ids: list[int]) -> None:
        instructions = self._questions(ctx, ids)
        if self._part(ctx) == JUDGMENTS:
            self._collect_judgments(ctx, instructions)
            return
        student = self._student(ctx).results(ctx, self._asked(ctx, instructions))
        self._store(ctx, "student", student)
        if ctx.run.state.get("judged"):
            self._store(ctx, "teacher", self._teacher(ctx).results(ctx, instructions))
        missing = sum(1 for answer in student.values() if answer is None)
        ctx.run.done += len(student) - missing
        ctx.run.failed += missing

    def finalize(self, ctx: Context) -> Outcome:
        if self._part(ctx) == ANSWERS and ctx.run.state.get("judged"):
            ctx.run.state = {**ctx.run.state, "part": JUDGMENTS}
            ctx.run.phase, ctx.run.cursor, ctx.run.done, ctx.run.failed = P.SUBMIT, 0, 0, 0
            return Outcome()
        ids = list(self.units(ctx, 0, ctx.run.total))
        figures = evaluation_compute(
            experiment=ctx.experiment,
            round_=ctx.round,
            instruction_ids=ids,
            dataset_kind=ctx.run.params.get("dataset_kind", ""),
            mode=ctx.run.params.get("prompt", "answer"),
        )
        checkpoint = (
            Response.objects.filter(round=ctx.round, role="student", instruction_id__in=ids)
            .values_list("checkpoint", flat=True)
            .first()
        )
        evaluation_record(
            experiment=ctx.experiment,
            round_=ctx.round,
            stage=ctx.run.name,
            checkpoint=checkpoint or "",
            figures=figures,
        )
        set_round_status(ctx.round, R.RUNNING)
        return Outcome(done=True)

    # --- answers -----------------------------------------------------------------------------------------
    def _store(self, ctx: Context, role: str, answers: dict) -> None:
        mode, kind = ctx.run.params.get("prompt", "answer"), ctx.run.params.get("dataset_kind", "")
        rows = [
            Response(
                instruction_id=pk,
                role=role,
                round=ctx.round,
                stage=ctx.run.name,
                checkpoint=answer.checkpoint,
                model=answer.model,
                endpoint_id=answer.endpoint_id,
                llm_call=answer.call,
                text=answer.text,
                # The student's label as the evaluation reads it (predict prompt), for reviewers to see.
                parsed_label=(predicted_label(answer.text, kind, mode=mode) or "")[:500]
                if role == "student" and mode == "predict"
                else "",
                template_id=answer.template_id,
                template_version=answer.template_version,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                cost=answer.cost,
                request_hash=answer.call.request_hash if answer.call else "",
            )
            for pk, answer in answers.items()
            if answer is not None
        ]
        # One answer per (round, instruction, role): an answer another stage of this round stored for the
        # same instruction (same checkpoint, same ledger request) stands.
        Response.objects.bulk_create(rows, ignore_conflicts=True)

    # --- judgments ---------------------------------------------------------------------------------------
    def _pairs(self, ctx: Context, ids: list[int]) -> dict[int, dict[str, Response]]:
        found: dict[int, dict[str, Response]] = {}
        for response in Response.objects.filter(
            round=ctx.round, instruction_id__in=ids, role__in=["teacher", "student"], style=""
        ):
            found.setdefault(response.instruction_id, {})[response.role] = response
        return {pk: pair for pk, pair in found.items() if len(pair) == 2}

    def _judge(self, ctx: Context, instructions: list[Instruction]) -> None:
        endpoint = ctx.endpoint("judge")
        template = get_template("judge_pairwise")
        by_id = {i.pk: i for i in instructions}
        keyed = []
        for pk, pair in sorted(self._pairs(ctx, list(by_id)).items()):
            teacher, student = pair["teacher"].text, pair["student"].text
            base = {"instruction": by_id[pk].text, "input": by_id[pk].input}
            for order, (first, second) in zip(ORDERS, ((teacher, student), (student, teacher)), strict=True):
                request = llm_request_for(endpoint, template, {**base, "answer_1": first, "answer_2": second})
                keyed.append((ctx.item(pk, order), request))
        self.enqueue(ctx, endpoint, "judge", keyed)

    def _collect_judgments(self, ctx: Context, instructions: list[Instruction]) -> None:
        pairs = self._pairs(ctx, [i.pk for i in instructions])
        finals = self.finals(ctx, [ctx.item(pk, order) for pk in pairs for order in ORDERS])
        rows = []
        for pk, pair in sorted(pairs.items()):
            tf, sf = finals.get(ctx.item(pk, "tf")), finals.get(ctx.item(pk, "sf"))
            if tf is None or sf is None:
                ctx.run.failed += 1
                continue
            t1, s1 = _scores(tf)
            s2, t2 = _scores(sf)
            # The averaged scores and gap, for display; the verdict stays unset (evaluation decides no seed).
            judged = discriminate(None if t1 is None else (t1, s1), None if s2 is None else (s2, t2))
            template_id, version = llm_call_template(tf)
            rows.append(
                Judgment(
                    instruction_id=pk,
                    round=ctx.round,
                    kind=Judgment.Kind.EVALUATION,
                    teacher_response=pair["teacher"],
                    student_response=pair["student"],
                    judge_model=tf.model,
                    endpoint_id=ctx.experiment.judge_endpoint_id,
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
                    teacher_score=judged.teacher_score,
                    student_score=judged.student_score,
                    gap=judged.gap,
                    contested=judged.contested,
                )
            )
            ctx.run.done += 1
            ctx.run.failed += int(t1 is None or s2 is None)
        Judgment.objects.bulk_create(rows, ignore_conflicts=True)
