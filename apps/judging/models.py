from decimal import Decimal

from django.db import models


class Response(models.Model):
    """An answer to an instruction: the teacher's, the student's, a style rewrite or a rationale."""

    class Role(models.TextChoices):
        TEACHER = "teacher", "teacher"
        STUDENT = "student", "student"
        REWRITE = "rewrite", "style rewrite"
        RATIONALE = "rationale", "rationale"

    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="responses")
    role = models.CharField(max_length=16, choices=Role.choices)
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.CASCADE, related_name="responses"
    )
    model = models.CharField(max_length=200)
    endpoint = models.ForeignKey("llm.LLMEndpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    llm_call = models.ForeignKey("llm.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stage = models.CharField(max_length=32, blank=True, help_text="The stage run that asked for it.")
    checkpoint = models.CharField(
        max_length=128,
        blank=True,
        help_text="The student checkpoint (artifact sha256) that wrote it; blank for an endpoint.",
    )
    text = models.TextField()
    parsed_label = models.CharField(max_length=500, blank=True)
    rationale = models.TextField(blank=True)
    style = models.CharField(max_length=32, blank=True, help_text="chain_of_thought, commented_code, detailed…")
    rewrites = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rewritten_as",
        help_text="For a style rewrite: the response it rewrites.",
    )
    template_id = models.CharField(max_length=64, blank=True)
    template_version = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    request_hash = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A stage records each result once: re-running it finds the row and makes no new call.
            models.UniqueConstraint(fields=["round", "instruction", "role", "style"], name="response_once_per_round"),
        ]
        indexes = [models.Index(fields=["instruction", "role"], name="response_instruction_role")]

    def __str__(self):
        return f"{self.role} answer to #{self.instruction_id}"


class Judgment(models.Model):
    """The referee's comparison of the teacher's and the student's answers, asked in both orders."""

    class Kind(models.TextChoices):
        DISCRIMINATION = "discrimination", "discrimination (hard or easy)"
        EVALUATION = "evaluation", "evaluation (win rate)"

    class Verdict(models.TextChoices):
        PENDING = "pending", "not decided yet"
        HARD = "hard", "hard"
        EASY = "easy", "easy"
        INVALID = "invalid", "invalid"

    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="judgments")
    round = models.ForeignKey("experiments.Round", on_delete=models.CASCADE, related_name="judgments")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DISCRIMINATION)
    teacher_response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    student_response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    judge_model = models.CharField(max_length=200)
    endpoint = models.ForeignKey("llm.LLMEndpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template_id = models.CharField(max_length=64, blank=True)
    template_version = models.PositiveIntegerField(null=True, blank=True)
    # Order A: teacher shown first. Order B: student shown first.
    call_teacher_first = models.ForeignKey(
        "llm.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    call_student_first = models.ForeignKey(
        "llm.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    raw_teacher_first = models.TextField(blank=True)
    raw_student_first = models.TextField(blank=True)
    teacher_first_teacher_score = models.FloatField(null=True, blank=True)
    teacher_first_student_score = models.FloatField(null=True, blank=True)
    student_first_student_score = models.FloatField(null=True, blank=True)
    student_first_teacher_score = models.FloatField(null=True, blank=True)
    teacher_score = models.FloatField(null=True, blank=True)
    student_score = models.FloatField(null=True, blank=True)
    gap = models.FloatField(null=True, blank=True, help_text="teacher score − student score")
    verdict = models.CharField(max_length=8, choices=Verdict.choices, default=Verdict.PENDING)
    contested = models.BooleanField(default=False, help_text="The two orders disagree on which answer is better.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Discrimination and evaluation judge the same instruction in one round without colliding.
            models.UniqueConstraint(fields=["round", "instruction", "kind"], name="judgment_once_per_round_kind")
        ]
        indexes = [
            models.Index(fields=["round", "verdict"], name="judgment_round_verdict"),
            models.Index(fields=["round", "-gap"], name="judgment_round_gap"),
        ]

    def __str__(self):
        return f"{self.verdict} #{self.instruction_id} (gap {self.gap})"
