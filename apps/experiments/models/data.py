"""What an experiment makes and decides: pools, lineage, task labels, selected seeds, snapshots."""

from django.conf import settings
from django.db import models

from apps.experiments.models.core import Experiment, Round


class PoolMember(models.Model):
    """An instruction in one of an experiment's pools (Lion's train and cache pools) from a round on.
    The train pool of round r is the members that joined it in round r; the cache pool of round r is every
    member that joined by round r and has not left."""

    class Pool(models.TextChoices):
        TRAIN = "train", "train pool"
        CACHE = "cache", "cache pool"
        HELDOUT = "heldout", "held-out set"  # mos: a skill's items kept out of training, for its evaluation

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="pool_members")
    pool = models.CharField(max_length=8, choices=Pool.choices)
    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="+")
    joined_round = models.PositiveIntegerField()
    left_round = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "pool", "instruction", "joined_round"], name="poolmember_once_per_round"
            )
        ]
        indexes = [
            # A stage walks a round's pool by instruction id (keyset).
            models.Index(fields=["experiment", "pool", "joined_round", "instruction"], name="poolmember_walk"),
        ]

    def __str__(self):
        return f"{self.pool} #{self.instruction_id} from round {self.joined_round}"


class Lineage(models.Model):
    """Where a generated or expanded instruction came from."""

    class Origin(models.TextChoices):
        HARD = "hard", "from a hard seed"
        EASY = "easy", "from an easy seed"
        EXPANDED = "expanded", "expanded from a seed"

    instruction = models.OneToOneField("datasets.Instruction", on_delete=models.CASCADE, related_name="lineage")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="lineages")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="lineages")
    seed = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=8, choices=Origin.choices)
    nearest = models.ForeignKey(
        "datasets.Instruction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    nearest_score = models.FloatField(null=True, blank=True, help_text="ROUGE-L against the nearest item.")
    call = models.ForeignKey("llm.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["experiment", "round", "origin"], name="lineage_round_origin")]

    def __str__(self):
        return f"#{self.instruction_id} ({self.origin} from #{self.seed_id})"


class TaskLabel(models.Model):
    """A task category for an instruction, as one experiment sees it, with who said so."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "imported"
        LOCAL = "local", "local classifier"
        LLM = "llm", "LLM classifier"
        REVIEW = "review", "reviewer"

    # Highest first: what an experiment takes as an instruction's category.
    PRIORITY = (Source.REVIEW, Source.LLM, Source.LOCAL, Source.IMPORTED)

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="task_labels")
    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=64)
    confidence = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    call = models.ForeignKey("llm.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "instruction", "source"], name="tasklabel_once_per_source")
        ]

    def __str__(self):
        return f"#{self.instruction_id}: {self.category} ({self.source})"


class SeedSelection(models.Model):
    """A seed TAPIR picked in a round, with its difficulty and the hard share it was drawn under."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="seed_selections")
    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="+")
    mfd = models.FloatField()
    hard = models.BooleanField()
    alpha = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "instruction"], name="seedselection_once_per_round")]

    def __str__(self):
        return f"round {self.round_id} seed #{self.instruction_id}"


class Snapshot(models.Model):
    """A round's training data, frozen when an operator approved it: the items, their hash and counts."""

    round = models.OneToOneField(Round, on_delete=models.CASCADE, related_name="snapshot")
    hash = models.CharField(max_length=64)
    size = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="{by_source, by_category, by_kind}")
    frozen_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self):
        return f"snapshot of {self.round} ({self.hash[:12]})"


class SnapshotItem(models.Model):
    """One training example exactly as frozen (reviewers' edits applied)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    instruction = models.ForeignKey("datasets.Instruction", on_delete=models.CASCADE, related_name="+")
    response = models.ForeignKey(
        "judging.Response", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # "skill:" + a dataset name (up to 200 characters)
    kind = models.CharField(max_length=210, default="sft", help_text="sft, predict, explain or skill:<name>")
    prompt = models.TextField()
    target = models.TextField()

    class Meta:
        ordering = ["snapshot", "position"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "position"], name="snapshotitem_unique_position")]

    def __str__(self):
        return f"{self.snapshot_id}[{self.position}]"
