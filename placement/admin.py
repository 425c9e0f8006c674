from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html

from placement.models import (
    AIModel,
    ApprovalDecision,
    AutoApprovePolicy,
    CausalVariable,
    FrontEndDevice,
    InitialPlacementPolicy,
    Migration,
    MigrationEvent,
    NetworkLink,
    PlacementModelVersion,
    PlacementRecord,
    ProductionEnvironment,
    Recommendation,
    Workload,
)


class IncomingLinkInline(admin.TabularInline):
    model = NetworkLink
    fk_name = "environment"
    extra = 0
    fields = ["front_end_device", "source_environment", "bandwidth_mbps", "rtt_ms", "figures_source"]


@admin.register(ProductionEnvironment)
class ProductionEnvironmentAdmin(admin.ModelAdmin):
    list_display = [
        "name", "slug", "kind", "trust", "network_path", "status",
        "gpu_model", "gpu_count", "gpu_clock_mhz", "interconnect", "last_heartbeat_at",
    ]  # fmt: skip
    list_filter = ["kind", "trust", "network_path", "status", "interconnect", "gpu_architecture"]
    search_fields = ["name", "slug", "gpu_model", "description"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["last_heartbeat_at", "created_at", "updated_at"]
    inlines = [IncomingLinkInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "status", "description"]}),
        ("Security", {"fields": ["trust", "network_path"]}),
        (
            "Hardware causal variables",
            {
                "fields": [
                    ("gpu_model", "gpu_architecture"),
                    ("gpu_count", "gpu_clock_mhz", "gpu_memory_gb"),
                    ("interconnect", "interconnect_gbps"),
                    ("cpu_cores", "memory_gb", "storage_gb"),
                ]
            },
        ),
        ("Liveness", {"fields": ["last_heartbeat_at", "created_at", "updated_at"]}),
    ]


@admin.register(FrontEndDevice)
class FrontEndDeviceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "location", "client_network"]
    list_filter = ["kind"]
    search_fields = ["name", "slug", "location"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(NetworkLink)
class NetworkLinkAdmin(admin.ModelAdmin):
    list_display = ["__str__", "bandwidth_mbps", "rtt_ms", "figures_source", "measured_at"]
    list_filter = ["figures_source", "environment"]
    search_fields = ["front_end_device__name", "source_environment__name", "environment__name"]
    list_select_related = ["front_end_device", "source_environment", "environment"]


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = ["name", "architecture", "layer_count", "parameter_count", "directory"]
    list_filter = ["architecture"]
    search_fields = ["name", "directory"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["fingerprint", "created_at"]


class PlacementRecordInline(admin.TabularInline):
    model = PlacementRecord
    extra = 0
    can_delete = False
    fields = ["created_at", "from_environment", "to_environment", "decided_by", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workload)
class WorkloadAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "ai_model", "objective", "environment", "state", "batch_size"]
    list_filter = ["kind", "objective", "state", "environment", "handles_secured_data"]
    search_fields = ["name", "ai_model__name"]
    filter_horizontal = ["front_end_devices"]
    list_select_related = ["ai_model", "environment"]
    inlines = [PlacementRecordInline]


@admin.register(InitialPlacementPolicy)
class InitialPlacementPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "order",
        "enabled",
        "match_kind",
        "match_model",
        "strategy",
        "environment",
        "trusted_only",
        "secured_data_only",
    ]
    list_editable = ["order", "enabled"]
    list_filter = ["enabled", "strategy", "match_kind", "trusted_only"]
    search_fields = ["name"]


@admin.register(PlacementRecord)
class PlacementRecordAdmin(admin.ModelAdmin):
    list_display = ["workload", "from_environment", "to_environment", "decided_by", "created_at"]
    list_filter = ["to_environment"]
    search_fields = ["workload__name", "decided_by", "reason"]
    readonly_fields = [f.name for f in PlacementRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# -- the placement loop ------------------------------------------------------------------------


@admin.register(CausalVariable)
class CausalVariableAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "group", "enabled", "paragraph_62", "order"]
    list_editable = ["enabled"]
    list_filter = ["group", "enabled", "paragraph_62"]
    search_fields = ["key", "label", "description"]
    readonly_fields = ["key", "paragraph_62"]
    actions = ["retrain_models"]

    def has_add_permission(self, request) -> bool:
        # Every variable the model can compute already has a row; new ones need code.
        return False

    @admin.action(description="Retrain the placement models with the enabled variables")
    def retrain_models(self, request, queryset) -> None:
        _queue_retraining(self, request)


def _queue_retraining(model_admin: admin.ModelAdmin, request) -> None:
    from placement.training import model_version_request

    versions = [
        model_version_request(objective=objective, requested_by=request.user.get_username())
        for objective in ("latency", "completion_time")
    ]
    model_admin.message_user(
        request,
        "Queued " + ", ".join(str(v) for v in versions) + "; progress shows in the model versions list.",
        messages.SUCCESS,
    )


@admin.register(PlacementModelVersion)
class PlacementModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__", "state", "progress_bar", "held_out_mae", "held_out_r2", "profiling_rows",
        "telemetry_rows", "requested_by", "trained_at",
    ]  # fmt: skip
    list_filter = ["objective", "state"]
    readonly_fields = [f.name for f in PlacementModelVersion._meta.fields] + ["progress_bar"]
    actions = ["retrain_models"]
    # Adds a "Retrain now" button above the list (works when no version exists yet).
    change_list_template = "admin/placement/placementmodelversion/change_list.html"

    def get_urls(self):
        retrain = path(
            "retrain/",
            self.admin_site.admin_view(self.retrain_view),
            name="placement_placementmodelversion_retrain",
        )
        return [retrain, *super().get_urls()]

    def retrain_view(self, request):
        """Queue a new version of both models (POST; needs the right to edit causal variables)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("placement.change_causalvariable"):
            raise PermissionDenied
        _queue_retraining(self, request)
        return redirect("admin:placement_placementmodelversion_changelist")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress_bar(self, obj: PlacementModelVersion):
        percent = round(obj.progress * 100)
        return format_html(
            '<progress max="100" value="{}"></progress> {} % <span class="help">{}</span>',
            percent,
            percent,
            obj.message,
        )

    @admin.action(description="Retrain both placement models now")
    def retrain_models(self, request, queryset) -> None:
        _queue_retraining(self, request)


@admin.register(AutoApprovePolicy)
class AutoApprovePolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "order",
        "enabled",
        "match_kind",
        "match_objective",
        "min_improvement",
        "allow_secured_data",
    ]
    list_editable = ["order", "enabled"]
    list_filter = ["enabled", "match_kind", "match_objective"]


class _ReadOnlyAdmin(admin.ModelAdmin):
    """The loop's records are evidence: created by services, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recommendation)
class RecommendationAdmin(_ReadOnlyAdmin):
    list_display = [
        "workload",
        "from_environment",
        "to_environment",
        "objective",
        "margin",
        "state",
        "created_at",
    ]
    list_filter = ["state", "objective", "figure"]
    search_fields = ["workload__name", "reason"]
    readonly_fields = [f.name for f in Recommendation._meta.fields]


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(_ReadOnlyAdmin):
    list_display = ["recommendation", "decision", "decided_by_name", "decided_at", "reason"]
    list_filter = ["decision"]
    search_fields = ["decided_by_name", "reason", "recommendation__workload__name"]
    readonly_fields = [f.name for f in ApprovalDecision._meta.fields]


class MigrationEventInline(admin.TabularInline):
    model = MigrationEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_state", "to_state", "detail", "runner"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Migration)
class MigrationAdmin(_ReadOnlyAdmin):
    list_display = [
        "workload",
        "from_environment",
        "to_environment",
        "state",
        "progress",
        "attempts",
        "created_at",
    ]
    list_filter = ["state"]
    search_fields = ["workload__name"]
    readonly_fields = [f.name for f in Migration._meta.fields]
    inlines = [MigrationEventInline]
