"""Models of split inference: nodes, links, versioned split plans, the orchestrator's policy and decisions.

Imported at the bottom of ``inference/models.py`` so Django registers them in this app.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class SplitNode(models.Model):
    """A worker process that can hold one partition of a model (``run_split_node``)."""

    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"

    class Trust(models.TextChoices):
        ENVIRONMENT = "environment", "As its environment"
        TRUSTED = "trusted", "Trusted"
        UNTRUSTED = "untrusted", "Untrusted"

    name = models.SlugField(max_length=80, unique=True, help_text="Reads inbox split:inbox:<name>.")
    environment = models.ForeignKey(
        "placement.ProductionEnvironment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="split_nodes",
    )
    trust = models.CharField(
        max_length=12,
        choices=Trust.choices,
        default=Trust.ENVIRONMENT,
        help_text="Only trusted nodes may run P1 (raw tokens) and PK (LM head, sampling).",
    )
    memory_bytes = models.PositiveBigIntegerField(
        default=8 * 2**30, help_text="Memory the node may use for weights and KV caches."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OFFLINE)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    utilisation = models.FloatField(default=0.0, help_text="Last reported busy share (0..1).")
    profile = models.JSONField(
        default=dict,
        blank=True,
        help_text="Measured per-layer costs: decode_ms_per_layer, prefill_ms_per_layer (lists or numbers).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_trusted(self) -> bool:
        """Return True when the node may hold P1 or PK."""
        if self.trust == self.Trust.ENVIRONMENT:
            return bool(self.environment_id and self.environment.is_trusted)
        return self.trust == self.Trust.TRUSTED


class NodeLink(models.Model):
    """A link between two split nodes (either direction) as an administrator configured it.

    The planner uses these figures only while the link has no fresh measurement
    (``LinkMeasurement``); pairs with neither run on the LAN default.
    """

    a = models.ForeignKey(SplitNode, on_delete=models.CASCADE, related_name="+")
    b = models.ForeignKey(SplitNode, on_delete=models.CASCADE, related_name="+")
    bandwidth_mbps = models.FloatField(validators=[MinValueValidator(0.0)])
    rtt_ms = models.FloatField(validators=[MinValueValidator(0.0)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["a", "b"], name="node_link_unique_pair")]

    def __str__(self) -> str:
        return f"{self.a}-{self.b} {self.bandwidth_mbps:g} Mbit/s (configured)"


class LinkMeasurement(models.Model):
    """The latest probe of ``source``'s link to ``target`` through the data plane (``split.links``).

    Copied from the data-plane Redis by ``split_links_sync``; used by the planner and the
    orchestrator's bandwidth trigger until ``expires_at``.
    """

    source = models.ForeignKey(SplitNode, on_delete=models.CASCADE, related_name="link_measurements")
    target = models.ForeignKey(SplitNode, on_delete=models.CASCADE, related_name="+")
    rtt_ms = models.FloatField(validators=[MinValueValidator(0.0)], help_text="Median echo round trip.")
    bandwidth_mbps = models.FloatField(
        validators=[MinValueValidator(0.0)], help_text="Payload bits over the round trip minus the RTT."
    )
    payload_bytes = models.PositiveIntegerField(default=0)
    measured_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="After this the configured figure applies again.")

    class Meta:
        ordering = ["source__name", "target__name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="link_measurement_unique_direction")
        ]

    def __str__(self) -> str:
        return f"{self.source_id}->{self.target_id} {self.bandwidth_mbps:g} Mbit/s, {self.rtt_ms:g} ms"

    def is_fresh(self, now=None) -> bool:
        """Return True while the measurement has not expired."""
        from django.utils import timezone

        return self.expires_at > (now or timezone.now())


class SplitPlan(models.Model):
    """A versioned split of one model into contiguous partitions, each on one node."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        BROADCASTING = "broadcasting", "Broadcasting"
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed (nodes did not acknowledge)"

    ai_model = models.ForeignKey("placement.AIModel", on_delete=models.CASCADE, related_name="split_plans")
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PROPOSED)
    partitions = models.JSONField(help_text='[{"start": 0, "end": 4, "node": "a"}, ...] in pipeline order.')
    created_by = models.CharField(max_length=150, blank=True, help_text="orchestrator, recovery or a user.")
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["ai_model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["ai_model", "version"], name="split_plan_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.ai_model} split v{self.version} ({self.state})"

    @property
    def route(self) -> str:
        """Return the partitions as 'a[0-3] -> b[4-7]'."""
        return " -> ".join(f"{p['node']}[{p['start']}-{p['end'] - 1}]" for p in self.partitions or [])


class PlanAcknowledgement(models.Model):
    """A node confirming it loaded its layers of a plan version (reconfiguration broadcast)."""

    plan = models.ForeignKey(SplitPlan, on_delete=models.CASCADE, related_name="acknowledgements")
    node = models.ForeignKey(SplitNode, on_delete=models.CASCADE, related_name="+")
    layers = models.JSONField(default=list)
    acked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "node"], name="plan_ack_unique")]

    def __str__(self) -> str:
        return f"{self.node_id} acknowledged plan {self.plan_id}"


class OrchestratorPolicy(models.Model):
    """Thresholds (paper Table 3) and objective weights (eq. 3) of the adaptive orchestrator; one row."""

    latency_ms = models.FloatField(default=150.0, validators=[MinValueValidator(0.0)])
    utilisation = models.FloatField(default=0.85, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    bandwidth_mbps = models.FloatField(default=50.0, validators=[MinValueValidator(0.0)])
    cooldown_s = models.FloatField(default=30.0, validators=[MinValueValidator(0.0)])
    ewma_alpha = models.FloatField(default=0.3, validators=[MinValueValidator(0.01), MaxValueValidator(1.0)])
    weight_latency = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    weight_imbalance = models.FloatField(default=10.0, validators=[MinValueValidator(0.0)])
    weight_privacy = models.FloatField(default=1000.0, validators=[MinValueValidator(0.0)])
    auto_apply = models.BooleanField(
        default=False, help_text="Apply plan changes at once; otherwise they wait for an administrator."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "orchestrator policy"

    def __str__(self) -> str:
        return "Orchestrator policy"

    @classmethod
    def current(cls) -> OrchestratorPolicy:
        """Return the policy row, creating it with the paper's defaults."""
        return cls.objects.order_by("pk").first() or cls.objects.create()


class OrchestratorDecision(models.Model):
    """One monitoring cycle's verdict (Algorithm 1) with the metrics that led to it."""

    class Action(models.TextChoices):
        KEEP = "keep", "Keep"
        REDISTRIBUTE = "redistribute", "Redistribute"
        RESPLIT = "resplit", "Re-split"

    ai_model = models.ForeignKey(
        "placement.AIModel", on_delete=models.CASCADE, related_name="split_decisions"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    triggers = models.JSONField(default=list)
    reasons = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, help_text="The monitoring snapshot of this cycle.")
    plan_from = models.ForeignKey(
        SplitPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    plan_to = models.ForeignKey(SplitPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.ai_model}: {self.action} at {self.created_at:%Y-%m-%d %H:%M:%S}"
