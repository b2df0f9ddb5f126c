from rest_framework import serializers

from apps.training.models import Artifact, MergeJob, TrainingJob, TrainingMetric
from apps.training.selectors import artifact_merge_refusal, training_metric_latest

_JOB_FIELDS = [
    "id",
    "status",
    "base_model",
    "attempts",
    "heartbeat_at",
    "worker",
    "exit_code",
    "cancel_requested",
    "error",
    "requested_by",
    "started_at",
    "finished_at",
    "created_at",
    "updated_at",
]


class TrainingJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingJob
        fields = [*_JOB_FIELDS[:1], "round", "snapshot", *_JOB_FIELDS[1:], "steps", "spec"]
        read_only_fields = fields


class TrainingJobDetailSerializer(TrainingJobSerializer):
    """A job with each metric's last logged value ({name: {step, value}})."""

    latest = serializers.SerializerMethodField()

    class Meta(TrainingJobSerializer.Meta):
        fields = [*TrainingJobSerializer.Meta.fields, "latest"]
        read_only_fields = fields

    def get_latest(self, job) -> dict[str, dict]:
        return {
            name: {"step": step, "value": value}
            for name, (step, value) in training_metric_latest(job_id=job.pk).items()
        }


class TrainingMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingMetric
        fields = ["id", "step", "name", "value"]
        read_only_fields = fields


class ArtifactSerializer(serializers.ModelSerializer):
    """An artifact the registry keeps: what it is, where it came from, its sha256 and whether it can be
    merged into its base (`merge_refusal` is null for a LoRA adapter that names its base)."""

    merge_refusal = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = [
            "id",
            "kind",
            "training_job",
            "round",
            "source",
            "sha256",
            "size_bytes",
            "base_model",
            "snapshot_hash",
            "spec",
            "metadata",
            "merge_refusal",
            "created_at",
        ]
        read_only_fields = fields

    def get_merge_refusal(self, artifact) -> str | None:
        return artifact_merge_refusal(artifact)


class MergeJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = MergeJob
        fields = [*_JOB_FIELDS[:1], "adapter", "merged", *_JOB_FIELDS[1:]]
        read_only_fields = fields
