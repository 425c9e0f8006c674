"""Telemetry settings with their defaults; settings.py may override any of them."""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS: dict[str, object] = {
    # Raw samples older than this are deleted (after being rolled up into minute aggregates).
    "TELEMETRY_RAW_RETENTION_HOURS": 24,
    # Minute aggregates older than this are deleted.
    "TELEMETRY_AGGREGATE_RETENTION_DAYS": 30,
    # Bearer token /metrics requires; empty means the endpoint is open (scrapers on a private network).
    "TELEMETRY_METRICS_TOKEN": "",
    # The window /metrics averages raw samples over, in seconds.
    "TELEMETRY_METRICS_WINDOW_S": 300,
}


def setting(name: str):
    """Return a telemetry setting: from settings.py, else the environment variable, else the default."""
    if hasattr(settings, name):
        return getattr(settings, name)
    default = DEFAULTS[name]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc
