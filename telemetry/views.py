"""The Prometheus endpoint: the telemetry figures in the text exposition format (version 0.0.4)."""

from __future__ import annotations

import hmac
import re

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from telemetry.conf import setting
from telemetry.selectors import latest_means

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(metric: str) -> str:
    """Return a valid Prometheus metric name for a telemetry metric."""
    name = _NAME_INVALID.sub("_", metric)
    return f"switchyard_{name}"


def label_value(value: object) -> str:
    """Escape a label value: backslash, double quote and line feed, as the format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, object]) -> str:
    return "{" + ",".join(f'{key}="{label_value(value)}"' for key, value in pairs.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value))


def exposition() -> str:
    """Return every figure as Prometheus text: telemetry means, links, and the loop's state."""
    from placement.models import Migration, NetworkLink, Recommendation

    lines: list[str] = []
    window_s = int(setting("TELEMETRY_METRICS_WINDOW_S"))
    families: dict[str, list[dict]] = {}
    for row in latest_means(window_s=window_s):
        families.setdefault(row["metric"], []).append(row)
    for metric, rows in sorted(families.items()):
        name = metric_name(metric)
        unit = rows[0]["unit"] or "1"
        lines.append(f"# HELP {name} Mean of {metric} ({unit}) over the last {window_s} s.")
        lines.append(f"# TYPE {name} gauge")
        for row in rows:
            labels = {
                "environment": row["environment__slug"],
                "workload": row["workload__name"] or "",
                "source": row["source"],
            }
            lines.append(f"{name}{_labels(labels)} {_number(row['mean'])}")
    links = list(NetworkLink.objects.select_related("front_end_device", "source_environment", "environment"))
    for field, help_text in (
        ("bandwidth_mbps", "Link bandwidth (Mbit/s)"),
        ("rtt_ms", "Link round-trip time (ms)"),
    ):
        name = f"switchyard_link_{field}"
        lines.append(f"# HELP {name} {help_text}; source says whether configured or measured.")
        lines.append(f"# TYPE {name} gauge")
        for link in links:
            labels = {"from": link.source_name, "to": link.environment.slug, "source": link.figures_source}
            lines.append(f"{name}{_labels(labels)} {_number(getattr(link, field))}")
    lines.append("# HELP switchyard_recommendations Placement recommendations by state.")
    lines.append("# TYPE switchyard_recommendations gauge")
    counts = {state: 0 for state, _ in Recommendation.State.choices}
    for state in Recommendation.objects.values_list("state", flat=True):
        counts[state] += 1
    for state, count in counts.items():
        lines.append(f"switchyard_recommendations{_labels({'state': state})} {count}")
    lines.append("# HELP switchyard_migrations Workload migrations by state.")
    lines.append("# TYPE switchyard_migrations gauge")
    counts = {state: 0 for state, _ in Migration.State.choices}
    for state in Migration.objects.values_list("state", flat=True):
        counts[state] += 1
    for state, count in counts.items():
        lines.append(f"switchyard_migrations{_labels({'state': state})} {count}")
    return "\n".join(lines) + "\n"


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint. With TELEMETRY_METRICS_TOKEN set, a Bearer token is required."""
    token = str(setting("TELEMETRY_METRICS_TOKEN"))
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("a Bearer token is required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
