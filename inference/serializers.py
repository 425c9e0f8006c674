"""Input and output shapes of the adaptation, training and adapter APIs.

Error messages name fields and counts, never an example's text.
"""

from __future__ import annotations

from rest_framework import serializers

from console.progress import progress_read
from inference.models import AdaptationJob, AdapterArtifact, Promotion

# Errors with these codes mean "well-formed but out of range" (HTTP 422); others are 400.
RANGE_ERROR_CODES = frozenset({"min_value", "max_value"})


class LoraSerializer(serializers.Serializer):
    """LoRA settings; anything left out takes inference.adaptation.LoraSettings' default."""

    rank = serializers.IntegerField(required=False, help_text="LoRA rank r (> 0).")
    alpha = serializers.FloatField(required=False)
    dropout = serializers.FloatField(required=False)
    target_modules = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    steps = serializers.IntegerField(required=False)
    learning_rate = serializers.FloatField(required=False)
    warmup_steps = serializers.IntegerField(required=False)
    min_lr_ratio = serializers.FloatField(required=False)
    weight_decay = serializers.FloatField(required=False)
    grad_clip = serializers.FloatField(required=False)
    batch_size = serializers.IntegerField(required=False)
    seq_len = serializers.IntegerField(required=False)
    seed = serializers.IntegerField(required=False)
    checkpoint_every = serializers.IntegerField(required=False)
    heldout_fraction = serializers.FloatField(required=False)
    num_threads = serializers.IntegerField(required=False)


class DatasetSerializer(serializers.Serializer):
    """Exactly one of: a JSONL file under ARTIFACT_DIR/datasets, texts, or the feedback set."""

    file = serializers.CharField(
        required=False, max_length=300, help_text="Path under ARTIFACT_DIR/datasets."
    )
    texts = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, allow_blank=True), required=False, allow_empty=True
    )
    feedback = serializers.BooleanField(
        required=False, help_text="The public variant's feedback examples of the base model."
    )

    def validate(self, data: dict) -> dict:
        given = [name for name in ("file", "texts") if name in data] + (
            ["feedback"] if data.get("feedback") else []
        )
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of file, texts or feedback.", code="invalid")
        return data


class AdaptationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, help_text="Adapter name; every run adds a version.")
    model = serializers.CharField(max_length=100, help_text="Base model slug (or name).")
    dataset = DatasetSerializer()
    lora = LoraSerializer(required=False)
    variant = serializers.CharField(
        required=False,
        default="auto",
        max_length=100,
        help_text=(
            "auto (FIG. 4.3: secured when the data holds secured examples, else public), "
            "secured, public, or a variant name."
        ),
    )


class TrainingCreateSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=100, help_text="Base model slug (or name).")
    name = serializers.CharField(required=False, max_length=80)
    lora = LoraSerializer(required=False)


class PromotionCreateSerializer(serializers.Serializer):
    variant = serializers.CharField(max_length=100, help_text="Variant name or id.")
    adapter = serializers.CharField(max_length=120, help_text="name@version (or name for the newest).")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RollbackCreateSerializer(serializers.Serializer):
    variant = serializers.CharField(max_length=100, help_text="Variant name or id.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AdaptedPromptSerializer(serializers.Serializer):
    """FIG. 4.3: a prompt with the data to adapt the model on first."""

    prompt = serializers.CharField(trim_whitespace=False)
    model = serializers.CharField(required=False, allow_null=True, max_length=100)
    session_id = serializers.CharField(required=False, allow_null=True, max_length=200)
    max_new_tokens = serializers.IntegerField(required=False, default=64, min_value=1, max_value=2048)
    temperature = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=2.0)
    top_p = serializers.FloatField(required=False, default=1.0, min_value=0.01, max_value=1.0)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**63 - 1)
    adaptation = AdaptationCreateSerializer(
        help_text="name, dataset and lora; model and variant are ignored."
    )

    def validate_prompt(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The prompt is empty.", code="blank")
        return value

    def to_internal_value(self, data):
        # The adaptation's model is the prompt's, and its variant is chosen by FIG. 4.3.
        if isinstance(data, dict) and isinstance(data.get("adaptation"), dict):
            adaptation = {**data["adaptation"], "model": data.get("model") or "default", "variant": "auto"}
            data = {**data, "adaptation": adaptation}
        return super().to_internal_value(data)


class AdapterArtifactSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    model = serializers.CharField(source="ai_model.slug", read_only=True)
    variant = serializers.CharField(source="variant.name", default=None, read_only=True)
    environment = serializers.CharField(source="environment.slug", default=None, read_only=True)
    in_service_on = serializers.SerializerMethodField()

    class Meta:
        model = AdapterArtifact
        fields = [
            "id", "label", "name", "version", "kind", "model", "base_fingerprint", "path",
            "variant", "environment", "dataset_ref", "dataset_sha256", "secured", "rank",
            "metrics", "job", "created_at", "in_service_on",
        ]  # fmt: skip
        read_only_fields = fields

    def get_in_service_on(self, artifact: AdapterArtifact) -> list[str]:
        in_service = self.context.get("in_service", {})
        return sorted(name for name, artifact_id in in_service.items() if artifact_id == artifact.pk)


class AdaptationJobSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="ai_model.slug", read_only=True)
    variant = serializers.CharField(source="variant.name", default=None, read_only=True)
    variant_kind = serializers.CharField(source="variant.kind", default=None, read_only=True)
    environment = serializers.CharField(source="environment.slug", default=None, read_only=True)
    workload = serializers.CharField(source="workload.name", default=None, read_only=True)
    placed_in = serializers.CharField(source="workload.environment.slug", default=None, read_only=True)
    fraction_done = serializers.FloatField(read_only=True)
    adapter = serializers.CharField(source="artifact.label", default=None, read_only=True)
    metrics = serializers.JSONField(source="artifact.metrics", default=None, read_only=True)
    live = serializers.SerializerMethodField()

    class Meta:
        model = AdaptationJob
        fields = [
            "id", "name", "kind", "state", "model", "variant", "variant_kind", "environment",
            "workload", "placed_in", "origin", "dataset_source", "dataset_examples", "dataset_sha256",
            "sensitive_examples", "secured", "lora", "steps_done", "steps_total", "fraction_done",
            "last_loss", "seconds_per_step", "eta_s", "checkpoint_step", "resumed_from", "attempts",
            "cancel_requested", "error", "adapter", "metrics", "requested_by_name",
            "created_at", "started_at", "finished_at", "live",
        ]  # fmt: skip
        read_only_fields = fields

    def get_live(self, job: AdaptationJob) -> dict | None:
        """Return the latest progress event the worker published (refreshed every second)."""
        if job.is_finished or not self.context.get("live", False):
            return None
        return progress_read("adaptation", str(job.pk))


class PromotionSerializer(serializers.ModelSerializer):
    variant = serializers.CharField(source="variant.name", read_only=True)
    from_adapter = serializers.CharField(source="from_artifact.label", default=None, read_only=True)
    to_adapter = serializers.CharField(source="to_artifact.label", default=None, read_only=True)

    class Meta:
        model = Promotion
        fields = [
            "id",
            "variant",
            "action",
            "from_adapter",
            "to_adapter",
            "decided_by_name",
            "reason",
            "created_at",
        ]
        read_only_fields = fields
