from django.contrib import admin

from placement.models import (
    AIModel,
    FrontEndDevice,
    InitialPlacementPolicy,
    NetworkLink,
    PlacementRecord,
    ProductionEnvironment,
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
