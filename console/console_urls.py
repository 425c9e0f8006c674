from django.urls import path

from console import views
from inference.split import views as split_views
from placement import views as placement_views
from telemetry import views as telemetry_views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # The placement loop: recommendations, approvals, migrations, workloads (placement/views.py).
    path("placement/", placement_views.placement_overview, name="placement"),
    path(
        "placement/recommendations/<int:pk>/approve",
        placement_views.recommendation_approve_view,
        name="recommendation-approve",
    ),
    path(
        "placement/recommendations/<int:pk>/reject",
        placement_views.recommendation_reject_view,
        name="recommendation-reject",
    ),
    path(
        "placement/migrations/<int:pk>.json",
        placement_views.migration_progress_json,
        name="migration-progress",
    ),
    path("placement/workloads/<int:pk>/", placement_views.workload_detail, name="workload"),
    path("placement/plotly.js", placement_views.plotly_js, name="plotly-js"),
    # Split inference: plans, approvals, orchestrator decisions (inference/split/views.py).
    path("split/", split_views.split_overview, name="split"),
    path("split/plans/<int:pk>/approve", split_views.split_plan_approve_view, name="split-plan-approve"),
    # Prometheus scrape endpoint (telemetry/views.py).
    path("metrics", telemetry_views.metrics, name="metrics"),
]
