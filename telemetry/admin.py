from django.contrib import admin

from telemetry.models import TelemetryAggregate, TelemetrySample


@admin.register(TelemetrySample)
class TelemetrySampleAdmin(admin.ModelAdmin):
    list_display = ["at", "metric", "value", "unit", "source", "environment", "workload", "front_end_device"]
    list_filter = ["source", "metric", "environment"]
    search_fields = ["metric", "workload__name"]
    list_select_related = ["environment", "workload", "front_end_device"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TelemetryAggregate)
class TelemetryAggregateAdmin(admin.ModelAdmin):
    list_display = [
        "minute",
        "metric",
        "count",
        "mean_value",
        "minimum",
        "maximum",
        "source",
        "environment",
        "workload",
    ]
    list_filter = ["source", "metric", "environment"]
    list_select_related = ["environment", "workload"]
    date_hierarchy = "minute"

    @admin.display(description="mean")
    def mean_value(self, obj: TelemetryAggregate) -> float:
        return round(obj.mean, 3)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
