"""Models of this app: model adaptation and training jobs, their adapters, and promotions.

A model adaptation workload (patent paragraph 33, FIG. 4.1-4.3) and a training workload
(paragraph 32, claim 2, Example 3) are both an :class:`AdaptationJob`: a LoRA run over a
dataset, placed in a production environment through its ``placement.Workload``. Training
jobs are the ones that learn from the public variant's feedback; :class:`TrainingJob` is
the same table seen through that filter. The output of a run, the *model adaptation
payload*, is an :class:`AdapterArtifact`, a versioned directory under ARTIFACT_DIR. A
:class:`Promotion` records an administrator putting an artifact in service on a variant,
or taking it back out (rollback).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class AdaptationJob(models.Model):
    """One LoRA run: what it adapts, on which data, where it runs, how far it got."""

    class Kind(models.TextChoices):
        ADAPTATION = "adaptation", "Model adaptation (PEFT / LoRA)"
        TRAINING = "training", "Training on the public variant's feedback"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused (checkpoint written)"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class DatasetSource(models.TextChoices):
        FILE = "file", "JSONL file under ARTIFACT_DIR/datasets"
        UPLOAD = "upload", "Texts sent with the request (kept as a JSONL file)"
        PRIVATE = "private", "Secured texts held on the private path only (never written to disk)"
        FEEDBACK = "feedback", "The public variant's feedback examples (snapshot file)"

    name = models.SlugField(max_length=80, help_text="The adapter's name; each run makes a new version.")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.ADAPTATION)
    ai_model = models.ForeignKey(
        "placement.AIModel", on_delete=models.PROTECT, related_name="adaptation_jobs", help_text="Base model."
    )
    workload = models.OneToOneField(
        "placement.Workload",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="adaptation_job",
        help_text="The placement workload that places and migrates this run.",
    )
    variant = models.ForeignKey(
        "variants.Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The variant chosen to produce the adapter (FIG. 4.3 step 444).",
    )
    environment = models.ForeignKey(
        "placement.ProductionEnvironment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where the run was last started.",
    )
    dataset_source = models.CharField(max_length=10, choices=DatasetSource.choices)
    dataset_ref = models.CharField(
        max_length=300, help_text="File under ARTIFACT_DIR, or the private key, the data comes from."
    )
    dataset_examples = models.PositiveIntegerField(default=0)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    # FIG. 4.3 step 442: how many examples the sensitivity classifier put at or above the
    # policy threshold, and so whether the run and its adapter are secured.
    sensitive_examples = models.PositiveIntegerField(default=0)
    secured = models.BooleanField(
        default=False, help_text="Trained on secured data: runs and is served on secured variants only."
    )
    lora = models.JSONField(default=dict, help_text="LoRA settings (inference.adaptation.LoraSettings).")
    origin = models.CharField(
        max_length=16, default="api", help_text="api, admin, schedule, or fig-4.3 (an adapted prompt)."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    pause_requested = models.BooleanField(default=False)
    # The worker running the job holds it by a lease renewed with every progress report; a
    # lease that runs out means the worker died and the job may be resumed elsewhere.
    runner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    last_loss = models.FloatField(null=True, blank=True)
    seconds_per_step = models.FloatField(null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    checkpoint_step = models.PositiveIntegerField(default=0)
    resumed_from = models.JSONField(default=list, blank=True, help_text="Steps the run resumed from.")
    error = models.TextField(blank=True)
    artifact = models.ForeignKey(
        "AdapterArtifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        """Return True once the job can no longer change."""
        return self.state in {self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED}

    @property
    def fraction_done(self) -> float:
        """Return the share of steps done, in [0, 1]."""
        return min(self.steps_done / self.steps_total, 1.0) if self.steps_total else 0.0

    @property
    def checkpoint_dir(self) -> Path:
        """Return where the job's checkpoints are written (a directory every host sees)."""
        return Path(settings.ARTIFACT_DIR) / "checkpoints" / f"adaptation-job-{self.pk}"


class TrainingJobManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind=AdaptationJob.Kind.TRAINING)


class TrainingJob(AdaptationJob):
    """A training workload (claim 2, Example 3): a run over the public variant's feedback."""

    objects = TrainingJobManager()

    class Meta:
        proxy = True
        verbose_name = "training job"


class AdapterArtifact(models.Model):
    """A model adaptation payload: one version of a named adapter, with where it came from."""

    name = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    kind = models.CharField(max_length=12, choices=AdaptationJob.Kind.choices)
    path = models.CharField(max_length=500, help_text="Directory under ARTIFACT_DIR (or an absolute path).")
    ai_model = models.ForeignKey("placement.AIModel", on_delete=models.PROTECT, related_name="adapters")
    base_fingerprint = models.CharField(max_length=64, help_text="sha256 of the base model's weights.")
    job = models.ForeignKey(
        AdaptationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    variant = models.ForeignKey(
        "variants.Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    environment = models.ForeignKey(
        "placement.ProductionEnvironment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset_ref = models.CharField(max_length=300, blank=True)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    secured = models.BooleanField(default=False, help_text="Served by secured variants only.")
    rank = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="adapter_version_unique")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """Return ``name@version``, how requests name it."""
        return f"{self.name}@{self.version}"

    @property
    def directory(self) -> Path:
        """Return the absolute artifact directory."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(settings.ARTIFACT_DIR) / path


class Promotion(models.Model):
    """An administrator putting an adapter in service on a variant, or rolling one back."""

    class Action(models.TextChoices):
        PROMOTE = "promote", "Promote"
        ROLLBACK = "rollback", "Roll back"

    variant = models.ForeignKey("variants.Variant", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    from_artifact = models.ForeignKey(
        AdapterArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_artifact = models.ForeignKey(
        AdapterArtifact,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Blank: the variant serves the base model alone.",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action="rollback") | Q(to_artifact__isnull=False),
                name="promotion_names_an_artifact",
            )
        ]

    def __str__(self) -> str:
        target = self.to_artifact.label if self.to_artifact_id else "base model"
        return f"{self.get_action_display()} {self.variant} -> {target}"


class AdapterUse(models.Model):
    """Which adapter served a prompt request (metadata only, like the request row itself)."""

    request = models.OneToOneField(
        "variants.PromptRequest", on_delete=models.CASCADE, related_name="adapter_use"
    )
    artifact = models.ForeignKey(AdapterArtifact, on_delete=models.PROTECT, related_name="uses")
    promoted = models.BooleanField(default=False, help_text="Chosen by the variant's promotion, not named.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id} used {self.artifact}"


# Split inference's models (nodes, plans, acknowledgements, orchestrator) belong to this app.
from inference.split_models import *  # noqa: F401,F403,E402
