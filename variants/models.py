"""Security-based variant selection (patent FIG. 2.3, FIG. 6, Example 3, claims 1-20).

A *variant* ties a production environment and an AI model to a kind: secured (private
network path, nothing kept) or public (prompts and payloads kept for retraining, claim 2).
The *eligibility policy* is the initial classification (FIG. 6); the *sensitivity model*
is the trained payload classifier (FIG. 2.3 step 242). A *prompt request* row keeps the
metadata of one request; its text never lands in the database for a secured request.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Max, Q
from django.utils import timezone

from placement.models import AIModel, ProductionEnvironment
from variants.eligibility import EligibilityRules, NetworkRule, PolicyError, split_lines, split_phrases


class Variant(models.Model):
    """Where requests of one kind for one model are served (secured 760 / public 770 in FIG. 7)."""

    class Kind(models.TextChoices):
        SECURED = "secured", "Secured"
        PUBLIC = "public", "Public"

    class Serving(models.TextChoices):
        WHOLE = "whole", "Whole model on the environment's workers"
        SPLIT = "split", "The model's active split plan (split-inference nodes)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    environment = models.ForeignKey(ProductionEnvironment, on_delete=models.PROTECT, related_name="variants")
    ai_model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="variants")
    serving = models.CharField(
        max_length=8,
        choices=Serving.choices,
        default=Serving.WHOLE,
        help_text=(
            "Split: the request runs through the model's active split plan, coordinated by the web "
            "process over the data-plane Redis. Only public variants: the split data plane is shared "
            "with untrusted nodes, so a secured variant always runs whole on its private path."
        ),
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ai_model__name", "kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="secured", serving="split"),
                name="variant_secured_serves_whole",
                violation_error_message=(
                    "A secured variant runs the whole model on its private path; split serving is "
                    "for public variants."
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.SECURED and self.serving == self.Serving.SPLIT:
            raise ValidationError(
                {
                    "serving": (
                        "A secured variant runs the whole model on its private path: the split data "
                        "plane is shared with untrusted nodes."
                    )
                }
            )
        if self.kind == self.Kind.SECURED and self.environment_id:
            environment = self.environment
            if not environment.is_trusted or environment.network_path != environment.NetworkPath.PRIVATE:
                raise ValidationError(
                    {
                        "environment": (
                            "A secured variant needs a secured environment reached over the private path."
                        )
                    }
                )

    @property
    def is_secured(self) -> bool:
        """Return True for the secured kind."""
        return self.kind == self.Kind.SECURED

    @property
    def is_split(self) -> bool:
        """Return True when requests run through the model's active split plan."""
        return self.serving == self.Serving.SPLIT


class EligibilityPolicy(models.Model):
    """The administrator's initial-classification rules (FIG. 6 step 602) and the threshold.

    Exactly one policy is active; without any row the built-in defaults apply (every
    request eligible, threshold 0.5). ``version`` grows on every save across all policies,
    so a front-end device holding an older policy document can tell it is stale.
    """

    name = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    max_prompt_chars = models.PositiveIntegerField(
        default=32_000,
        validators=[MinValueValidator(1)],
        help_text="Longer prompts are refused with HTTP 413, eligible or not.",
    )
    bypass_max_chars = models.PositiveIntegerField(
        default=0, help_text="Prompts of at most this many characters skip classification (0: off)."
    )
    classify_phrases = models.TextField(
        blank=True, help_text="One per line; a prompt containing one is always classified."
    )
    bypass_phrases = models.TextField(
        blank=True, help_text="One per line; a prompt containing one skips classification."
    )
    network_rule = models.CharField(
        max_length=16,
        default=NetworkRule.ANY,
        choices=[
            (NetworkRule.ANY, "The network does not matter"),
            (NetworkRule.PRIVATE_ONLY, "Classify only requests from the private network"),
            (NetworkRule.PUBLIC_ONLY, "Classify only requests from outside the private network"),
        ],
    )
    private_networks = models.TextField(
        blank=True, help_text="Client networks that count as private, in CIDR notation, one per line."
    )
    vpn_header = models.CharField(
        max_length=64,
        blank=True,
        default="X-Switchyard-VPN",
        help_text="Header the VPN gateway adds; the edge proxy must strip it from outside traffic.",
    )
    vpn_header_value = models.CharField(
        max_length=200, blank=True, help_text="Expected header value (blank: any non-empty value)."
    )
    eligible_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="When set, only members of these groups are classified.",
    )
    bypass_groups = models.ManyToManyField(
        Group, blank=True, related_name="+", help_text="Members of these groups skip classification."
    )
    threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Sensitivity at or above which a prompt goes to the secured variant.",
    )
    default_model = models.ForeignKey(
        AIModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Model used when a request names none.",
    )
    bypass_environment = models.ForeignKey(
        ProductionEnvironment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=(
            "Serves requests that are not classification-eligible (FIG. 6 step 606). Blank: the "
            "environment where the model's inferencing workload is placed."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-active", "name"]
        verbose_name_plural = "eligibility policies"
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_policy"),
            models.CheckConstraint(
                condition=Q(threshold__gte=0.0) & Q(threshold__lte=1.0), name="policy_threshold_in_unit_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    def save(self, *args, **kwargs) -> None:
        # A global counter, not per row: switching the active policy must also look newer.
        latest = EligibilityPolicy.objects.aggregate(latest=Max("version"))["latest"] or 0
        self.version = latest + 1
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "version", "updated_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        try:
            self.rules(groups_known=False)
        except PolicyError as exc:
            raise ValidationError({"private_networks": str(exc)}) from exc
        if self.active:
            others = EligibilityPolicy.objects.filter(active=True).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError(
                    {"active": "Another policy is active; use the 'Make active' action to switch."}
                )

    def rules(self, *, groups_known: bool = True) -> EligibilityRules:
        """Return the policy as plain rules (group names read from the database when saved)."""
        eligible_groups: frozenset[str] = frozenset()
        bypass_groups: frozenset[str] = frozenset()
        if groups_known and self.pk:
            eligible_groups = frozenset(self.eligible_groups.values_list("name", flat=True))
            bypass_groups = frozenset(self.bypass_groups.values_list("name", flat=True))
        return EligibilityRules(
            version=self.version,
            max_prompt_chars=self.max_prompt_chars,
            bypass_max_chars=self.bypass_max_chars,
            classify_phrases=split_phrases(self.classify_phrases),
            bypass_phrases=split_phrases(self.bypass_phrases),
            network_rule=self.network_rule,
            private_networks=split_lines(self.private_networks),
            vpn_header=self.vpn_header.strip(),
            vpn_header_value=self.vpn_header_value,
            eligible_groups=eligible_groups,
            bypass_groups=bypass_groups,
            threshold=self.threshold,
        )


class SensitivityModel(models.Model):
    """A trained payload classifier (FIG. 2.3 step 242): a versioned artifact and its metrics."""

    version = models.PositiveIntegerField(unique=True)
    path = models.CharField(max_length=500, help_text="Directory under ARTIFACT_DIR (or an absolute path).")
    metrics = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    n_examples = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="one_active_sensitivity_model"
            ),
        ]

    def __str__(self) -> str:
        return f"sensitivity model v{self.version}{' (active)' if self.active else ''}"

    @property
    def directory(self) -> Path:
        """Return the absolute artifact directory."""
        path = Path(self.path)
        return path if path.is_absolute() else settings.ARTIFACT_DIR / path


class PromptRequest(models.Model):
    """The metadata of one prompt request. Never its text: see FeedbackExample for public ones."""

    class Route(models.TextChoices):
        SECURED = "secured", "Secured variant"
        PUBLIC = "public", "Public variant"
        BYPASS = "bypass", "Not eligible: default environment"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        API = "api", "REST API"
        OPENAI = "openai", "OpenAI-compatible API"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # When the request arrived (set by the gateway; the row itself is written at the end).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="prompt_requests"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    eligible = models.BooleanField()
    eligibility_reason = models.CharField(max_length=32, blank=True)
    private_network = models.BooleanField(default=False)
    route = models.CharField(max_length=8, choices=Route.choices)
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    environment = models.ForeignKey(
        ProductionEnvironment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ai_model = models.ForeignKey(AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sensitivity = models.FloatField(null=True, blank=True)
    categories = models.JSONField(default=list, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    classifier_version = models.PositiveIntegerField(null=True, blank=True)
    # Fail closed (classifier or policy error): routed to the secured variant or refused.
    fail_closed = models.BooleanField(default=False)
    fail_reason = models.CharField(max_length=200, blank=True)
    session_pinned = models.BooleanField(default=False, help_text="Secured because its session was.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error_code = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Milliseconds per stage.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sensitivity__isnull=True) | (Q(sensitivity__gte=0.0) & Q(sensitivity__lte=1.0)),
                name="prompt_sensitivity_in_unit_range",
            ),
            # Only eligible requests reach variant selection; the others are the bypass.
            models.CheckConstraint(
                condition=Q(eligible=True, route__in=["secured", "public"])
                | Q(eligible=False, route="bypass"),
                name="prompt_route_matches_eligibility",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} -> {self.route}"

    @property
    def is_secured(self) -> bool:
        """Return True when the request was served by a secured variant."""
        return self.route == self.Route.SECURED


class FeedbackExample(models.Model):
    """A public request's prompt and payload, kept for retraining the model (claim 2)."""

    request = models.OneToOneField(PromptRequest, on_delete=models.CASCADE, related_name="feedback")
    ai_model = models.ForeignKey(AIModel, null=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    payload = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"feedback for {self.request_id}"


class SessionPin(models.Model):
    """A conversation routed to a secured variant once: its later turns stay secured.

    The key is an HMAC of the user and the client's session id, so the id itself (which
    a client may build from anything) is not stored.
    """

    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    pinned_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-pinned_at"]

    def __str__(self) -> str:
        return f"pin {self.key[:12]}"
