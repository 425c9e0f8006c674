"""Admin for split inference: nodes, configured and measured links, plans, policy, decisions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from inference.planner import PlanError
from inference.split.coordinator import SplitUnavailable
from inference.split.services import split_plan_approve, split_plan_validate
from inference.split_models import (
    LinkMeasurement,
    NodeLink,
    OrchestratorDecision,
    OrchestratorPolicy,
    PlanAcknowledgement,
    SplitNode,
    SplitPlan,
)


@admin.register(SplitNode)
class SplitNodeAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "trust", "trusted", "status", "utilisation", "last_heartbeat_at"]
    list_filter = ["status", "trust"]

    @admin.display(boolean=True)
    def trusted(self, node: SplitNode) -> bool:
        return node.is_trusted


@admin.register(NodeLink)
class NodeLinkAdmin(admin.ModelAdmin):
    """Configured link figures; a fresh measurement of the pair overrides them."""

    list_display = ["a", "b", "bandwidth_mbps", "rtt_ms", "updated_at"]


@admin.register(LinkMeasurement)
class LinkMeasurementAdmin(admin.ModelAdmin):
    """Measured by the nodes' link probes; read-only here."""

    list_display = ["source", "target", "bandwidth_mbps", "rtt_ms", "measured_at", "fresh"]
    readonly_fields = [
        "source",
        "target",
        "bandwidth_mbps",
        "rtt_ms",
        "payload_bytes",
        "measured_at",
        "expires_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(boolean=True)
    def fresh(self, measurement: LinkMeasurement) -> bool:
        return measurement.is_fresh()


class SplitPlanForm(forms.ModelForm):
    class Meta:
        model = SplitPlan
        fields = ["ai_model", "partitions", "reason"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ai_model") and "partitions" in cleaned:
            try:
                split_plan_validate(ai_model=cleaned["ai_model"], partitions=cleaned["partitions"])
            except PlanError as exc:
                raise forms.ValidationError({"partitions": str(exc)}) from exc
        return cleaned


class AcknowledgementInline(admin.TabularInline):
    model = PlanAcknowledgement
    extra = 0
    readonly_fields = ["node", "layers", "acked_at"]


@admin.register(SplitPlan)
class SplitPlanAdmin(admin.ModelAdmin):
    form = SplitPlanForm
    list_display = ["ai_model", "version", "route", "state", "created_by", "created_at", "activated_at"]
    list_filter = ["state", "ai_model"]
    readonly_fields = [
        "state",
        "created_by",
        "evidence",
        "error",
        "created_at",
        "activated_at",
        "approved_by",
    ]
    inlines = [AcknowledgementInline]
    actions = ["approve"]

    def save_model(self, request, obj, form, change):
        if not change:
            from django.db.models import Max

            # Validated by the form; it waits for approval like an orchestrator proposal.
            latest = SplitPlan.objects.filter(ai_model=obj.ai_model).aggregate(v=Max("version"))["v"] or 0
            obj.version = latest + 1
            obj.created_by = request.user.get_username()
            obj.state = SplitPlan.State.AWAITING_APPROVAL
        super().save_model(request, obj, form, change)

    @admin.action(description="Approve and broadcast the selected plans")
    def approve(self, request, queryset):
        for plan in queryset:
            try:
                split_plan_approve(plan=plan, user=request.user)
            except (PlanError, SplitUnavailable) as exc:
                self.message_user(request, f"v{plan.version}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"v{plan.version} is being broadcast", messages.SUCCESS)


@admin.register(OrchestratorPolicy)
class OrchestratorPolicyAdmin(admin.ModelAdmin):
    list_display = ["latency_ms", "utilisation", "bandwidth_mbps", "cooldown_s", "auto_apply", "updated_at"]


@admin.register(OrchestratorDecision)
class OrchestratorDecisionAdmin(admin.ModelAdmin):
    list_display = ["ai_model", "action", "created_at", "plan_from", "plan_to"]
    list_filter = ["action", "ai_model"]
    readonly_fields = [
        "ai_model",
        "action",
        "triggers",
        "reasons",
        "metrics",
        "plan_from",
        "plan_to",
        "created_at",
    ]
