"""A round's evaluation: the student's win rate against the teacher on the eval set, its accuracy on a
labelled one, per task category, and the categories that fell back since the previous round."""

from django.db import models

from apps.experiments.models.core import Experiment, Round


class Evaluation(models.Model):
    """One evaluation of a round's checkpoint (one evaluate stage). Rates are None when not measured: no
    judge (no win rate) or no gold labels (no accuracy)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="evaluations")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="evaluations")
    stage = models.CharField(max_length=32, help_text="The evaluate stage run that measured it.")
    checkpoint = models.CharField(max_length=128, blank=True, help_text="Artifact sha256; blank for the base model.")
    n = models.PositiveIntegerField(default=0, help_text="Eval items answered.")
    # Pairwise win rate against the teacher (ties count half), valid judgements only.
    judged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0, help_text="Judgements that failed to parse in an order.")
    wins = models.PositiveIntegerField(default=0)
    ties = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    win_rate = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True, help_text="95% bootstrap interval of the win rate.")
    ci_high = models.FloatField(null=True, blank=True)
    lc_win_rate = models.FloatField(null=True, blank=True, help_text="Length-controlled win rate.")
    # Accuracy against gold labels.
    dataset_kind = models.CharField(max_length=16, blank=True, help_text="svamp, cqa, anli, esnli or generic.")
    labelled = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    accuracy_ci_low = models.FloatField(null=True, blank=True)
    accuracy_ci_high = models.FloatField(null=True, blank=True)
    per_category = models.JSONField(default=dict, blank=True, help_text="{category: {n, rate, ci_low, …}}")
    report = models.JSONField(default=dict, blank=True, help_text="The full win-rate report (counts, LC fit).")
    regressions = models.JSONField(default=list, blank=True, help_text="Categories that fell since the last round.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "round__index", "id"]
        constraints = [models.UniqueConstraint(fields=["round", "stage"], name="evaluation_once_per_stage")]
        indexes = [models.Index(fields=["experiment", "round"], name="evaluation_experiment_round")]

    def __str__(self):
        return f"evaluation of {self.round} ({self.stage})"


class EvaluationCategory(models.Model):
    """One task category of an evaluation, a row each so charts across rounds read one indexed table."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="categories")
    category = models.CharField(max_length=64)
    n = models.PositiveIntegerField(default=0, help_text="Valid judgements in the category.")
    invalid = models.PositiveIntegerField(default=0)
    win_rate = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    labelled = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    regressed = models.BooleanField(default=False, help_text="Fell back since the previous round's evaluation.")

    class Meta:
        ordering = ["evaluation", "category"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "category"], name="evaluationcategory_once"),
        ]

    def __str__(self):
        return f"{self.evaluation_id}: {self.category}"
