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
