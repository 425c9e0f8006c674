"""Console pages of the placement loop: recommendations with their evidence, approvals,
migration progress, and each workload's placement history."""

from __future__ import annotations

import functools
import hashlib
from datetime import timedelta

import plotly.graph_objects as go
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from placement.loop import (
    APPROVE_PERMISSION,
    RecommendationError,
    evidence_digest,
    recommendation_approve,
    recommendation_reject,
)
from placement.migration import migration_progress
from placement.models import (
    ApprovalDecision,
    Migration,
    PlacementModelVersion,
    PlacementRecord,
    Recommendation,
    Workload,
)
from telemetry.selectors import workload_latency_series

# Colours of the evidence chart: the current environment, the recommended one, the others.
_CURRENT, _TARGET, _OTHER, _OBSERVED = "#8a6d00", "#1f7a3a", "#9aa7b5", "#b3261e"


def evidence_figure_html(recommendation: Recommendation) -> str:
    """Return the plotly chart of observed vs predicted values per environment (a div + script)."""
    predicted = recommendation.predicted
    slugs = list(predicted)
    current = recommendation.from_environment.slug if recommendation.from_environment else None
    target = recommendation.to_environment.slug
    colours = [_CURRENT if s == current else _TARGET if s == target else _OTHER for s in slugs]
    figure = go.Figure()
    figure.add_bar(
        x=slugs,
        y=[predicted[s] for s in slugs],
        marker_color=colours,
        name="predicted",
        hovertemplate="%{x}: predicted %{y:.1f} " + recommendation.unit + "<extra></extra>",
    )
    if recommendation.observed_value is not None and current:
        figure.add_scatter(
            x=[current],
            y=[recommendation.observed_value],
            mode="markers",
            marker={"size": 14, "symbol": "diamond", "color": _OBSERVED},
            name=f"observed ({recommendation.observed_samples} samples)",
            hovertemplate="%{x}: observed %{y:.1f} " + recommendation.unit + "<extra></extra>",
        )
    figure.update_layout(
        height=300,
        margin={"l": 60, "r": 10, "t": 30, "b": 40},
        yaxis_title=f"{recommendation.get_objective_display()} ({recommendation.unit})",
        legend={"orientation": "h", "y": 1.15},
        barmode="group",
        template="plotly_white",
    )
    return figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"evidence-chart-{recommendation.pk}"
    )


def latency_figure_html(workload: Workload) -> str | None:
    """Return the plotly chart of the workload's recent latency split, or None without samples."""
    since = timezone.now() - timedelta(hours=24)
    samples = workload_latency_series(workload_id=workload.pk, since=since)
    if not samples:
        return None
    figure = go.Figure()
    names = {
        "latency_total_ms": "total",
        "latency_transfer_ms": "front-end transfer",
        "latency_queue_ms": "queueing",
        "latency_compute_ms": "compute",
    }
    for metric, name in names.items():
        points = [s for s in samples if s["metric"] == metric]
        if points:
            figure.add_scatter(
                x=[p["at"] for p in points],
                y=[p["value"] for p in points],
                mode="lines+markers",
                name=name,
                text=[p["environment__slug"] for p in points],
                hovertemplate="%{x}<br>%{y:.1f} ms on %{text}<extra>" + name + "</extra>",
            )
    for record in PlacementRecord.objects.filter(workload=workload, created_at__gte=since):
        figure.add_vline(x=record.created_at, line_dash="dot", line_color="#1f3a5f")
    figure.update_layout(
        height=320,
        margin={"l": 60, "r": 10, "t": 30, "b": 40},
        yaxis_title="latency (ms)",
        legend={"orientation": "h", "y": 1.15},
        template="plotly_white",
    )
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id="latency-chart")


def _overview_context(request: HttpRequest) -> dict:
    pending = list(
        Recommendation.objects.filter(state=Recommendation.State.PENDING).select_related(
            "workload", "from_environment", "to_environment", "model_version"
        )
    )
    for recommendation in pending:
        recommendation.chart_html = evidence_figure_html(recommendation)
        recommendation.digest = evidence_digest(recommendation.evidence())
        recommendation.breakdown_items = [
            (k, v) for k, v in recommendation.observed_breakdown.items() if not isinstance(v, dict)
        ]
    return {
        "pending": pending,
        "can_approve": request.user.has_perm(APPROVE_PERMISSION),
        "migrations": Migration.objects.select_related("workload", "from_environment", "to_environment")[:20],
        "decisions": ApprovalDecision.objects.select_related(
            "recommendation__workload", "recommendation__to_environment"
        )[:20],
        "workloads": Workload.objects.select_related("environment", "ai_model"),
        "model_versions": PlacementModelVersion.objects.all()[:10],
    }


@staff_member_required
@require_GET
def placement_overview(request: HttpRequest) -> HttpResponse:
    """The pending recommendations with their evidence, migrations, decisions and models."""
    return render(request, "placement/overview.html", _overview_context(request))


def _decide(request: HttpRequest, pk: int, decide) -> HttpResponse:
    if not request.user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied("You need the approve_recommendation permission.")
    get_object_or_404(Recommendation, pk=pk)
    try:
        outcome = decide()
    except RecommendationError as exc:
        messages.error(request, f"Recommendation {pk}: {exc}")
        context = _overview_context(request)
        return render(request, "placement/overview.html", context, status=exc.status)
    return outcome


@login_required
@require_POST
def recommendation_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """FIG. 2.1 step 210: the administrator approves; the migration starts."""

    def approve() -> HttpResponse:
        migration = recommendation_approve(
            recommendation_id=pk,
            user=request.user,
            reason=request.POST.get("reason", ""),
            evidence_seen=request.POST.get("evidence") or None,
        )
        messages.success(request, f"Approved: migration {migration.pk} of {migration.workload} has started.")
        return redirect(f"{_overview_url()}#migration-{migration.pk}")

    return _decide(request, pk, approve)


@login_required
@require_POST
def recommendation_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    """FIG. 2.1 step 210: the administrator rejects, saying why."""

    def reject() -> HttpResponse:
        decision = recommendation_reject(
            recommendation_id=pk,
            user=request.user,
            reason=request.POST.get("reason", ""),
            evidence_seen=request.POST.get("evidence") or None,
        )
        messages.success(request, f"Rejected recommendation {pk} for {decision.recommendation.workload}.")
        return redirect(_overview_url())

    return _decide(request, pk, reject)


def _overview_url() -> str:
    from django.urls import reverse

    return reverse("console:placement")


@staff_member_required
@require_GET
def migration_progress_json(request: HttpRequest, pk: int) -> JsonResponse:
    """The migration's state and events, polled by the console while it runs."""
    migration = get_object_or_404(
        Migration.objects.select_related("workload__environment", "from_environment", "to_environment"), pk=pk
    )
    return JsonResponse(migration_progress(migration))


@staff_member_required
@require_GET
def workload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One workload: where it runs, its placement history, recommendations and migrations."""
    workload = get_object_or_404(Workload.objects.select_related("environment", "ai_model"), pk=pk)
    context = {
        "workload": workload,
        "devices": workload.front_end_devices.all(),
        "placements": workload.placements.select_related("from_environment", "to_environment"),
        "recommendations": workload.recommendations.select_related(
            "from_environment", "to_environment", "decision"
        )[:30],
        "migrations": workload.migrations.select_related(
            "from_environment", "to_environment"
        ).prefetch_related("events")[:10],
        "latency_chart": latency_figure_html(workload),
    }
    return render(request, "placement/workload.html", context)


@functools.cache
def _plotly_bundle() -> tuple[bytes, str]:
    from plotly.offline import get_plotlyjs

    body = get_plotlyjs().encode()
    return body, hashlib.sha256(body).hexdigest()[:16]


@require_GET
def plotly_js(request: HttpRequest) -> HttpResponse:
    """Serve the plotly.js bundle that ships inside the plotly package (no CDN, no internet)."""
    body, etag = _plotly_bundle()
    if request.headers.get("If-None-Match") == f'"{etag}"':
        return HttpResponse(status=304)
    response = HttpResponse(body, content_type="application/javascript")
    response["ETag"] = f'"{etag}"'
    response["Cache-Control"] = "public, max-age=86400"
    return response
