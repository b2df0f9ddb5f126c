"""Serializers of the experiments API: an instruction's provenance (apps/experiments/provenance.py)."""

from rest_framework import serializers


class UserNameField(serializers.Field):
    """A user as the username, or None."""

    def to_representation(self, value):
        return value.get_username()


class InstructionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    dataset = serializers.IntegerField(source="dataset_id")


class RoundRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    experiment = serializers.IntegerField(source="experiment_id")
    experiment_name = serializers.CharField(source="experiment.name")


class LineageSerializer(serializers.Serializer):
    experiment = serializers.IntegerField(source="experiment_id")
    experiment_name = serializers.CharField(source="experiment.name")
    round = serializers.IntegerField(source="round.index")
    origin = serializers.CharField()
    seed = InstructionRefSerializer()
    nearest = InstructionRefSerializer(allow_null=True)
    nearest_rouge_l = serializers.FloatField(source="nearest_score", allow_null=True)
    call = serializers.IntegerField(source="call_id", allow_null=True)


class MadeFromItSerializer(serializers.Serializer):
    instruction = InstructionRefSerializer()
    experiment = serializers.IntegerField(source="experiment_id")
    round = serializers.IntegerField(source="round.index")
    origin = serializers.CharField()


class AnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    round = RoundRefSerializer(allow_null=True)
    stage = serializers.CharField()
    endpoint = serializers.CharField(source="endpoint.name", allow_null=True, default=None)
    model = serializers.CharField()
    checkpoint = serializers.CharField()
    style = serializers.CharField()
    rewrites = serializers.IntegerField(source="rewrites_id", allow_null=True)
    text = serializers.CharField()
    parsed_label = serializers.CharField()
    llm_call = serializers.IntegerField(source="llm_call_id", allow_null=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=8)
    created_at = serializers.DateTimeField()


class JudgmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    round = RoundRefSerializer()
    kind = serializers.CharField()
    judge_model = serializers.CharField()
    endpoint = serializers.CharField(source="endpoint.name", allow_null=True, default=None)
    teacher_response = serializers.IntegerField(source="teacher_response_id")
    student_response = serializers.IntegerField(source="student_response_id")
    teacher_first = serializers.SerializerMethodField(help_text="Order A: the teacher's answer shown first.")
    student_first = serializers.SerializerMethodField(help_text="Order B: the student's answer shown first.")
    teacher_score = serializers.FloatField(allow_null=True)
    student_score = serializers.FloatField(allow_null=True)
    gap = serializers.FloatField(allow_null=True)
    verdict = serializers.CharField()
    contested = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_teacher_first(self, j) -> dict:
        return {
            "call": j.call_teacher_first_id,
            "teacher_score": j.teacher_first_teacher_score,
            "student_score": j.teacher_first_student_score,
            "reply": j.raw_teacher_first,
        }

    def get_student_first(self, j) -> dict:
        return {
            "call": j.call_student_first_id,
            "teacher_score": j.student_first_teacher_score,
            "student_score": j.student_first_student_score,
            "reply": j.raw_student_first,
        }


class VerdictSerializer(serializers.Serializer):
    reviewer = UserNameField()
    decision = serializers.CharField()
    edited_text = serializers.CharField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    subject = serializers.CharField(source="subject_label")
    round = RoundRefSerializer(allow_null=True)
    status = serializers.CharField()
    required_reviews = serializers.IntegerField()
    decision = serializers.CharField(help_text="The resolution: what the votes agreed on or an operator settled.")
    edited_text = serializers.CharField()
    note = serializers.CharField()
    resolved_by = UserNameField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    verdicts = VerdictSerializer(many=True, source="verdicts.all")


class TaskLabelSerializer(serializers.Serializer):
    experiment = serializers.IntegerField(source="experiment_id")
    experiment_name = serializers.CharField(source="experiment.name")
    category = serializers.CharField()
    source = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    call = serializers.IntegerField(source="call_id", allow_null=True)
    created_at = serializers.DateTimeField()


class PoolMemberSerializer(serializers.Serializer):
    experiment = serializers.IntegerField(source="experiment_id")
    experiment_name = serializers.CharField(source="experiment.name")
    pool = serializers.CharField()
    joined_round = serializers.IntegerField()
    left_round = serializers.IntegerField(allow_null=True)


class SeedSelectionSerializer(serializers.Serializer):
    round = RoundRefSerializer()
    mfd = serializers.FloatField()
    hard = serializers.BooleanField()
    alpha = serializers.FloatField()


class SnapshotUseSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField(source="item.snapshot_id")
    hash = serializers.CharField(source="item.snapshot.hash")
    round = RoundRefSerializer(source="item.snapshot.round")
    kinds = serializers.ListField(child=serializers.CharField())
    positions = serializers.ListField(child=serializers.IntegerField())
    frozen_at = serializers.DateTimeField(source="item.snapshot.frozen_at")
    approved_by = serializers.SerializerMethodField(help_text="Who approved the round's training.")

    def get_approved_by(self, use) -> str | None:
        snapshot = use.item.snapshot
        user = snapshot.approved_by or snapshot.round.approved_by
        return user.get_username() if user else None


class InstructionDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    input = serializers.CharField()
    dataset = serializers.IntegerField(source="dataset_id")
    dataset_name = serializers.CharField(source="dataset.name")
    origin = serializers.CharField()
    task_category = serializers.CharField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    created_in_round = RoundRefSerializer(allow_null=True)


class ProvenanceSerializer(serializers.Serializer):
    """Each list holds at most apps.experiments.provenance.LIMIT rows; `truncated` names the lists that had more."""

    instruction = InstructionDetailSerializer()
    lineage = LineageSerializer(allow_null=True)
    made_from_it = MadeFromItSerializer(many=True, source="made_from_it.rows")
    answers = AnswerSerializer(many=True, source="answers.rows")
    judgments = JudgmentSerializer(many=True, source="judgments.rows")
    reviews = ReviewSerializer(many=True, source="reviews.rows")
    task_labels = TaskLabelSerializer(many=True, source="task_labels.rows")
    pools = PoolMemberSerializer(many=True, source="pools.rows")
    seed_selections = SeedSelectionSerializer(many=True, source="seed_selections.rows")
    snapshots = SnapshotUseSerializer(many=True)
    truncated = serializers.SerializerMethodField()

    def get_truncated(self, p) -> list[str]:
        lists = ("made_from_it", "answers", "judgments", "reviews", "task_labels", "pools", "seed_selections")
        cut = [name for name in lists if getattr(p, name).more]
        return cut + (["snapshots"] if p.snapshots_more else [])
