"""The administrator console's pages."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from placement.models import NetworkLink, ProductionEnvironment, Workload

# A worker that has not answered two heartbeat rounds (30 s apart) is shown as silent.
HEARTBEAT_STALE_AFTER = timedelta(seconds=75)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("console:dashboard")


def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database and Redis answer (for load balancers and `make run`)."""
    from django.core.cache import cache

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("healthz", "1", 5)
        checks["redis"] = "ok" if cache.get("healthz") == "1" else "error: no echo"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    environments = list(ProductionEnvironment.objects.all())
    for environment in environments:
        beat = environment.last_heartbeat_at
        environment.worker_alive = bool(beat and now - beat < HEARTBEAT_STALE_AFTER)
    context = {
        "environments": environments,
        "workloads": Workload.objects.select_related("ai_model", "environment"),
        "links": NetworkLink.objects.select_related("front_end_device", "source_environment", "environment"),
    }
    return render(request, "console/dashboard.html", context)
