"""Where AI work can run and what runs there (patent FIG. 1.1-1.3, paragraphs 21-64)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from console.celery import environment_queue
from placement.validators import validate_non_negative, validate_positive


class ProductionEnvironment(models.Model):
    """A place AI workloads run: on-premise cluster, core site, cloud region or edge node."""

    class Kind(models.TextChoices):
        ON_PREMISE = "on_premise", "On-premise"
        CORE = "core", "Core site"
        CLOUD = "cloud", "Cloud"
        EDGE = "edge", "Edge"

    class Trust(models.TextChoices):
        SECURED = "secured", "Secured"
        PUBLIC = "public", "Public"

    class NetworkPath(models.TextChoices):
        PRIVATE = "private", "Private (VPN / dedicated link)"
        PUBLIC = "public", "Public network"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAINING = "draining", "Draining"
        OFFLINE = "offline", "Offline"

    class Interconnect(models.TextChoices):
        NONE = "none", "None (single device)"
        NVLINK = "nvlink", "NVLink"
        PCIE = "pcie", "PCIe"
        INFINIBAND = "infiniband", "InfiniBand"
        ETHERNET = "ethernet", "Ethernet"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True, help_text="Workers consume queue env.<slug>.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    trust = models.CharField(max_length=8, choices=Trust.choices, default=Trust.PUBLIC)
    network_path = models.CharField(max_length=8, choices=NetworkPath.choices, default=NetworkPath.PUBLIC)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    description = models.TextField(blank=True)

    # Hardware causal variables (paragraph 62).
    gpu_model = models.CharField(max_length=64, blank=True, help_text="e.g. H100 SXM, L4, none")
    gpu_architecture = models.CharField(max_length=32, blank=True, help_text="e.g. hopper, ampere, ada, none")
    gpu_count = models.PositiveIntegerField(default=0)
    gpu_clock_mhz = models.PositiveIntegerField(default=0, help_text="Boost clock in MHz.")
    gpu_memory_gb = models.FloatField(
        default=0, validators=[validate_non_negative], help_text="Memory per GPU in GB."
    )
    interconnect = models.CharField(max_length=16, choices=Interconnect.choices, default=Interconnect.NONE)
    interconnect_gbps = models.FloatField(
        default=0, validators=[validate_non_negative], help_text="GPU-to-GPU link speed in Gbit/s."
    )
    cpu_cores = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    memory_gb = models.FloatField(default=1, validators=[validate_positive])
    storage_gb = models.FloatField(default=0, validators=[validate_non_negative])

    last_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gpu_memory_gb__gte=0) & Q(interconnect_gbps__gte=0) & Q(memory_gb__gt=0),
                name="environment_sizes_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.gpu_count > 0 and not self.gpu_clock_mhz:
            errors["gpu_clock_mhz"] = "An environment with GPUs needs their clock speed."
        if self.gpu_count > 0 and not self.gpu_memory_gb:
            errors["gpu_memory_gb"] = "An environment with GPUs needs their memory size."
        if self.interconnect != self.Interconnect.NONE and not self.interconnect_gbps:
            errors["interconnect_gbps"] = "Give the interconnect speed in Gbit/s."
        if self.trust == self.Trust.SECURED and self.network_path != self.NetworkPath.PRIVATE:
            errors["network_path"] = "A secured environment must be reached over a private path."
        if errors:
            raise ValidationError(errors)

    @property
    def queue_name(self) -> str:
        """Return the Celery queue this environment's workers consume."""
        return environment_queue(self.slug)

    @property
    def is_trusted(self) -> bool:
        """Return True when secured data may be processed here."""
        return self.trust == self.Trust.SECURED

    @property
    def accepts_work(self) -> bool:
        """Return True when new workloads may be placed here."""
        return self.status == self.Status.ACTIVE

    def causal_variables(self) -> dict[str, float | str]:
        """Return the hardware causal variables as plain values (placement model features)."""
        return {
            "gpu_architecture": self.gpu_architecture or "none",
            "gpu_count": self.gpu_count,
            "gpu_clock_mhz": self.gpu_clock_mhz,
            "gpu_memory_gb": self.gpu_memory_gb,
            "interconnect": self.interconnect,
            "interconnect_gbps": self.interconnect_gbps,
            "cpu_cores": self.cpu_cores,
            "memory_gb": self.memory_gb,
            "storage_gb": self.storage_gb,
        }


class FrontEndDevice(models.Model):
    """A site or device that sends requests: an office, an application server, a browser fleet."""

    class Kind(models.TextChoices):
        SITE = "site", "Site"
        APPLICATION = "application", "Application server"
        BROWSER = "browser", "Browser fleet (plug-in)"
        DEVICE = "device", "Edge device"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SITE)
    location = models.CharField(max_length=100, blank=True)
    client_network = models.CharField(
        max_length=64, blank=True, help_text="CIDR the device's requests come from, if known."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NetworkLink(models.Model):
    """A link between a front-end device or an environment and a production environment."""

    class Source(models.TextChoices):
        CONFIGURED = "configured", "Configured by an administrator"
        MEASURED = "measured", "Measured by the monitoring agent"

    front_end_device = models.ForeignKey(
        FrontEndDevice, null=True, blank=True, on_delete=models.CASCADE, related_name="links"
    )
    source_environment = models.ForeignKey(
        ProductionEnvironment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outgoing_links",
    )
    environment = models.ForeignKey(
        ProductionEnvironment, on_delete=models.CASCADE, related_name="incoming_links"
    )
    bandwidth_mbps = models.FloatField(validators=[validate_positive])
    rtt_ms = models.FloatField(validators=[validate_non_negative])
    figures_source = models.CharField(max_length=16, choices=Source.choices, default=Source.CONFIGURED)
    measured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["environment__name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(front_end_device__isnull=False, source_environment__isnull=True)
                    | Q(front_end_device__isnull=True, source_environment__isnull=False)
                ),
                name="link_has_exactly_one_source",
            ),
            models.CheckConstraint(condition=Q(bandwidth_mbps__gt=0), name="link_bandwidth_positive"),
            models.CheckConstraint(condition=Q(rtt_ms__gte=0), name="link_rtt_non_negative"),
            models.UniqueConstraint(
                fields=["front_end_device", "environment"],
                condition=Q(front_end_device__isnull=False),
                name="unique_device_link",
            ),
            models.UniqueConstraint(
                fields=["source_environment", "environment"],
                condition=Q(source_environment__isnull=False),
                name="unique_environment_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_name} -> {self.environment}"

    @property
    def source_name(self) -> str:
        """Return the name of the device or environment the link starts from."""
        source = self.front_end_device or self.source_environment
        return str(source) if source else "?"

    def clean(self) -> None:
        if bool(self.front_end_device_id) == bool(self.source_environment_id):
            raise ValidationError("A link starts at exactly one front-end device or environment.")
        if self.source_environment_id and self.source_environment_id == self.environment_id:
            raise ValidationError({"environment": "A link cannot join an environment to itself."})


class AIModel(models.Model):
    """A model that workloads serve or adapt: a save_pretrained directory in the model store."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    directory = models.CharField(
        max_length=500, help_text="Directory under MODEL_DIR (or an absolute path every host sees)."
    )
    architecture = models.CharField(max_length=64, blank=True, help_text="e.g. llama, gpt2")
    layer_count = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    parameter_count = models.PositiveBigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, blank=True, help_text="sha256 of the weights.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "AI model"

    def __str__(self) -> str:
        return self.name

    @property
    def path(self):
        """Return the absolute model directory."""
        from pathlib import Path

        directory = Path(self.directory)
        return directory if directory.is_absolute() else settings.MODEL_DIR / directory


class Workload(models.Model):
    """An AI workload (inferencing, training or model adaptation) and where it runs now."""

    class Kind(models.TextChoices):
        INFERENCING = "inferencing", "Inferencing"
        TRAINING = "training", "Training"
        ADAPTATION = "adaptation", "Model adaptation (PEFT)"

    class Objective(models.TextChoices):
        LATENCY = "latency", "Latency"
        COMPLETION_TIME = "completion_time", "Completion time"

    class State(models.TextChoices):
        PENDING = "pending", "Pending placement"
        PLACED = "placed", "Placed"
        RUNNING = "running", "Running"
        MIGRATING = "migrating", "Migrating"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    ai_model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="workloads")
    objective = models.CharField(max_length=16, choices=Objective.choices)
    batch_size = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    gpus_required = models.PositiveIntegerField(default=1)
    handles_secured_data = models.BooleanField(
        default=False, help_text="Secured data may only be placed in trusted environments."
    )
    front_end_devices = models.ManyToManyField(
        FrontEndDevice, blank=True, related_name="workloads", help_text="Who sends it requests."
    )
    environment = models.ForeignKey(
        ProductionEnvironment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="workloads",
        help_text="Current placement.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    config = models.JSONField(default=dict, blank=True, help_text="Kind-specific settings.")
    # Start of the current monitoring window (FIG. 2.1 step 204): reset by every placement.
    monitoring_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    inference_workload = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="adaptation_workloads",
        help_text="Model adaptation (FIG. 4.1): the inferencing workload it adapts the model for.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.handles_secured_data and self.environment_id and not self.environment.is_trusted:
            raise ValidationError(
                {"environment": "A workload that handles secured data needs a secured environment."}
            )


class InitialPlacementPolicy(models.Model):
    """An ordered rule for the first placement of a new workload (paragraph 64, FIG. 2.1 step 202)."""

    class Strategy(models.TextChoices):
        FIXED = "fixed", "A fixed environment"
        MOST_FREE_GPUS = "most_free_gpus", "The environment with the most free GPUs"
        NEAREST_FRONT_END = "nearest_front_end", "Nearest to the workload's front-end devices"

    name = models.CharField(max_length=100, unique=True)
    order = models.PositiveIntegerField(default=100, help_text="Lower numbers are tried first.")
    enabled = models.BooleanField(default=True)
    match_kind = models.CharField(
        max_length=16, choices=Workload.Kind.choices, blank=True, help_text="Blank matches any kind."
    )
    match_model = models.ForeignKey(
        AIModel, null=True, blank=True, on_delete=models.CASCADE, help_text="Blank matches any model."
    )
    strategy = models.CharField(max_length=24, choices=Strategy.choices)
    environment = models.ForeignKey(
        ProductionEnvironment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="The environment for the fixed strategy.",
    )
    trusted_only = models.BooleanField(default=False, help_text="Only consider secured environments.")
    secured_data_only = models.BooleanField(
        default=False, help_text="Only match workloads that handle secured data."
    )

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "initial placement policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.strategy == self.Strategy.FIXED and not self.environment_id:
            raise ValidationError({"environment": "The fixed strategy needs an environment."})
        if self.strategy != self.Strategy.FIXED and self.environment_id:
            raise ValidationError({"environment": "Only the fixed strategy names an environment."})
        if (
            self.strategy == self.Strategy.FIXED
            and self.trusted_only
            and self.environment_id
            and not self.environment.is_trusted
        ):
            raise ValidationError({"environment": "Trusted-only rules must name a secured environment."})

    def matches(self, workload: Workload) -> bool:
        """Return True when this rule applies to the workload."""
        if self.match_kind and self.match_kind != workload.kind:
            return False
        if self.secured_data_only and not workload.handles_secured_data:
            return False
        return not (self.match_model_id and self.match_model_id != workload.ai_model_id)


class PlacementRecord(models.Model):
    """One change of a workload's placement, with who or what decided it and why."""

    workload = models.ForeignKey(Workload, on_delete=models.CASCADE, related_name="placements")
    from_environment = models.ForeignKey(
        ProductionEnvironment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_environment = models.ForeignKey(ProductionEnvironment, on_delete=models.PROTECT, related_name="+")
    decided_by = models.CharField(max_length=150, help_text="A user name, or the policy or task.")
    policy = models.ForeignKey(InitialPlacementPolicy, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.workload} -> {self.to_environment}"


# -- The placement loop (FIG. 2.1, 2.2, 4.1, 4.2): model, recommendations, approvals, migrations --


class CausalVariable(models.Model):
    """A variable the placement model may use (paragraph 62); administrators switch them on or off.

    The keys come from ``placement.features.FEATURE_CATALOGUE``, which knows how to compute
    each one; a trained model version keeps the list it was trained with.
    """

    class Group(models.TextChoices):
        HARDWARE = "hardware", "Hardware"
        LINK = "link", "Network link"
        WORKLOAD = "workload", "Workload"
        TELEMETRY = "telemetry", "Telemetry"

    key = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=120)
    group = models.CharField(max_length=16, choices=Group.choices)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="Used by the next trained model version.")
    paragraph_62 = models.BooleanField(default=False, editable=False, help_text="Named in paragraph 62.")
    order = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["order", "key"]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        from placement.features import FEATURES_BY_KEY

        if self.key not in FEATURES_BY_KEY:
            raise ValidationError({"key": "Unknown causal variable: the placement model cannot compute it."})


class PlacementModelVersion(models.Model):
    """One trained placement model (one objective), its artifact and its held-out quality."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    objective = models.CharField(max_length=16, choices=Workload.Objective.choices)
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0, help_text="Fraction done while training.")
    message = models.CharField(max_length=300, blank=True)
    artifact_path = models.CharField(max_length=300, blank=True, help_text="Relative to ARTIFACT_DIR.")
    feature_keys = models.JSONField(default=list)
    profiling_rows = models.PositiveIntegerField(default=0)
    telemetry_rows = models.PositiveIntegerField(default=0)
    held_out_mae = models.FloatField(null=True, blank=True)
    held_out_r2 = models.FloatField(null=True, blank=True, help_text="R2 of the logarithm of the objective.")
    held_out_median_relative_error = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=8, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["objective", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["objective", "version"], name="unique_model_version"),
        ]

    def __str__(self) -> str:
        return f"{self.get_objective_display()} model v{self.version}"

    @property
    def artifact(self):
        """Return the absolute path of the artifact file."""
        return settings.ARTIFACT_DIR / self.artifact_path


class AutoApprovePolicy(models.Model):
    """A rule that approves matching recommendations without an administrator (FIG. 2.1 step 210)."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=100, help_text="Lower numbers are tried first.")
    match_kind = models.CharField(
        max_length=16, choices=Workload.Kind.choices, blank=True, help_text="Blank matches any kind."
    )
    match_objective = models.CharField(
        max_length=16, choices=Workload.Objective.choices, blank=True, help_text="Blank matches any."
    )
    min_improvement = models.FloatField(
        default=0.5, help_text="Predicted improvement (fraction, 0.5 = 50 %) needed to approve."
    )
    allow_secured_data = models.BooleanField(
        default=False, help_text="Also approve moves of workloads that handle secured data."
    )

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "auto-approve policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not 0 <= self.min_improvement < 1:
            raise ValidationError({"min_improvement": "Give a fraction between 0 and 1."})


class Recommendation(models.Model):
    """A placement recommendation with the evidence behind it (FIG. 2.1 steps 206-210)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"
        EXECUTED = "executed", "Executed"
        FAILED = "failed", "Migration failed"

    workload = models.ForeignKey(Workload, on_delete=models.CASCADE, related_name="recommendations")
    from_environment = models.ForeignKey(
        ProductionEnvironment, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    to_environment = models.ForeignKey(ProductionEnvironment, on_delete=models.PROTECT, related_name="+")
    objective = models.CharField(max_length=16, choices=Workload.Objective.choices)
    figure = models.CharField(
        max_length=8, help_text="The patent flowchart this follows (2.1, 2.2, 4.1, 4.2)."
    )
    unit = models.CharField(max_length=8)
    observed_value = models.FloatField(
        null=True, blank=True, help_text="Measured in the current environment."
    )
    observed_samples = models.PositiveIntegerField(default=0)
    observed_breakdown = models.JSONField(default=dict, blank=True, help_text="e.g. transfer/queue/compute.")
    predicted = models.JSONField(default=dict, help_text="Environment slug -> predicted value.")
    margin = models.FloatField(help_text="Predicted improvement over the current environment (fraction).")
    margin_required = models.FloatField(help_text="The configured margin it had to beat.")
    features = models.JSONField(default=dict, help_text="Causal variables used, and their values.")
    model_version = models.ForeignKey(
        PlacementModelVersion, on_delete=models.PROTECT, related_name="recommendations"
    )
    reason = models.CharField(max_length=300)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    auto_approve_policy = models.ForeignKey(
        AutoApprovePolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="recommendations"
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_recommendation", "Can approve or reject placement recommendations")]
        constraints = [
            # At most one open recommendation per workload: a new one supersedes the old.
            models.UniqueConstraint(
                fields=["workload"], condition=Q(state="pending"), name="one_pending_recommendation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workload}: {self.from_environment} -> {self.to_environment}"

    def evidence(self) -> dict:
        """Return the evidence an approver sees, as plain JSON."""
        return {
            "recommendation": self.pk,
            "workload": self.workload.name,
            "figure": self.figure,
            "objective": self.objective,
            "unit": self.unit,
            "from": self.from_environment.slug if self.from_environment else None,
            "to": self.to_environment.slug,
            "observed_value": self.observed_value,
            "observed_samples": self.observed_samples,
            "observed_breakdown": self.observed_breakdown,
            "predicted": self.predicted,
            "margin": self.margin,
            "margin_required": self.margin_required,
            "features": self.features,
            "model_version": str(self.model_version),
            "reason": self.reason,
        }


class ApprovalDecision(models.Model):
    """Who (or which auto-approve policy) decided a recommendation, when, why, and what they saw."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    recommendation = models.OneToOneField(Recommendation, on_delete=models.PROTECT, related_name="decision")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    auto_approve_policy = models.ForeignKey(
        AutoApprovePolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    decided_by_name = models.CharField(
        max_length=150, help_text="The user name or policy:<name>, kept as text."
    )
    reason = models.TextField(blank=True)
    evidence = models.JSONField(help_text="The evidence snapshot the decider was shown.")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(decided_by__isnull=False, auto_approve_policy__isnull=True)
                    | Q(decided_by__isnull=True, auto_approve_policy__isnull=False, decision="approve")
                ),
                name="decision_by_a_user_or_an_approving_policy",
            ),
            models.CheckConstraint(
                condition=~Q(decision="reject") | ~Q(reason=""), name="rejection_has_a_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.decided_by_name}"


class Migration(models.Model):
    """Moving a workload to another environment, step by step (FIG. 2.1 step 210)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        LOADING_TARGET = "loading_target", "Loading on the target"
        SWITCHING = "switching", "Switching routing"
        DRAINING = "draining", "Draining the source"
        COMPLETED = "completed", "Completed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"

    TERMINAL_STATES = (State.COMPLETED, State.ROLLED_BACK, State.FAILED)

    recommendation = models.OneToOneField(Recommendation, on_delete=models.PROTECT, related_name="migration")
    # No approval record, no migration: the column is NOT NULL.
    approval = models.OneToOneField(ApprovalDecision, on_delete=models.PROTECT, related_name="migration")
    workload = models.ForeignKey(Workload, on_delete=models.CASCADE, related_name="migrations")
    from_environment = models.ForeignKey(ProductionEnvironment, on_delete=models.PROTECT, related_name="+")
    to_environment = models.ForeignKey(ProductionEnvironment, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    progress = models.FloatField(default=0.0)
    detail = models.CharField(max_length=300, blank=True)
    routing_switched = models.BooleanField(default=False, help_text="The workload routes to the target.")
    checkpoint = models.JSONField(
        null=True, blank=True, help_text="Training/adaptation checkpoint reference."
    )
    workload_state_before = models.CharField(max_length=16, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Claim: the runner holding the migration and until when (a dead runner's lease expires).
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One migration at a time per workload.
            models.UniqueConstraint(
                fields=["workload"],
                condition=Q(state__in=["pending", "loading_target", "switching", "draining"]),
                name="one_active_migration_per_workload",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workload}: {self.from_environment} -> {self.to_environment} ({self.state})"

    @property
    def is_finished(self) -> bool:
        """Return True in a terminal state."""
        return self.state in self.TERMINAL_STATES


class MigrationEvent(models.Model):
    """One recorded transition or note of a migration."""

    migration = models.ForeignKey(Migration, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    detail = models.TextField(blank=True)
    runner = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state}"
