"""Reads of telemetry: the summaries the placement loop analyses and the figures /metrics shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Max, Min, Sum
from django.utils import timezone

from telemetry.models import TelemetryAggregate, TelemetrySample


@dataclass(frozen=True)
class LatencySummary:
    """A workload's observed request latency in one environment over a window (ms)."""

    count: int
    transfer_ms: float
    queue_ms: float
    compute_ms: float
    total_ms: float
    transfer_source: str
    payload_bytes: float | None
    per_device_total_ms: dict[int, float] = field(default_factory=dict)

    def breakdown(self) -> dict[str, float]:
        """Return the split as plain numbers, for evidence and charts."""
        return {
            "transfer_ms": round(self.transfer_ms, 3),
            "queue_ms": round(self.queue_ms, 3),
            "compute_ms": round(self.compute_ms, 3),
            "total_ms": round(self.total_ms, 3),
            "samples": self.count,
            "transfer_figures": self.transfer_source,
        }


@dataclass(frozen=True)
class ProgressSummary:
    """A job's observed progress in one environment over a window."""

    count: int
    fraction_done: float
    seconds_per_step: float
    steps_done: float | None
    steps_total: float | None


def _window(workload_id: int, environment_id: int, since: datetime):
    return TelemetrySample.objects.filter(
        workload_id=workload_id, environment_id=environment_id, at__gte=since
    )


def workload_latency_summary(
    *, workload_id: int, environment_id: int, since: datetime
) -> LatencySummary | None:
    """Return the mean latency split of a workload's requests in an environment since a time."""
    samples = _window(workload_id, environment_id, since)
    means = dict(
        samples.filter(metric__startswith="latency_").values_list("metric").annotate(mean=Avg("value"))
    )
    count = samples.filter(metric="latency_total_ms").count()
    if not count:
        return None
    configured = samples.filter(metric="latency_transfer_ms", source="configured").exists()
    payload = samples.filter(metric="payload_bytes").aggregate(mean=Avg("value"))["mean"]
    per_device = dict(
        samples.filter(metric="latency_total_ms", front_end_device__isnull=False)
        .values_list("front_end_device_id")
        .annotate(mean=Avg("value"))
    )
    return LatencySummary(
        count=count,
        transfer_ms=means.get("latency_transfer_ms", 0.0),
        queue_ms=means.get("latency_queue_ms", 0.0),
        compute_ms=means.get("latency_compute_ms", 0.0),
        total_ms=means.get("latency_total_ms", 0.0),
        transfer_source="configured" if configured else "measured",
        payload_bytes=payload,
        per_device_total_ms={int(k): float(v) for k, v in per_device.items()},
    )


def workload_metric_mean(
    *, workload_id: int, environment_id: int, metric: str, since: datetime
) -> tuple[float, int] | None:
    """Return the mean and count of one metric of a workload in an environment since a time."""
    row = (
        _window(workload_id, environment_id, since)
        .filter(metric=metric)
        .aggregate(mean=Avg("value"), n=Count("id"))
    )
    return (row["mean"], row["n"]) if row["n"] else None


def workload_progress_summary(
    *, workload_id: int, environment_id: int, since: datetime
) -> ProgressSummary | None:
    """Return a job's latest progress and its mean time per step in an environment since a time."""
    samples = _window(workload_id, environment_id, since)
    latest = samples.filter(metric="progress_fraction").order_by("-at", "-id").first()
    if latest is None:
        return None
    step_time = samples.filter(metric="seconds_per_step").aggregate(mean=Avg("value"), n=Count("id"))
    steps_done = samples.filter(metric="steps_done").aggregate(v=Max("value"))["v"]
    steps_total = samples.filter(metric="steps_total").aggregate(v=Max("value"))["v"]
    return ProgressSummary(
        count=step_time["n"],
        fraction_done=latest.value,
        seconds_per_step=step_time["mean"] or 0.0,
        steps_done=steps_done,
        steps_total=steps_total,
    )


def environment_utilization(
    *, environment_id: int, window_s: float = 300.0, now: datetime | None = None
) -> float:
    """Return the environment's measured busy fraction: GPU utilisation where known, else CPU."""
    now = now or timezone.now()
    since = now - timedelta(seconds=window_s)
    samples = TelemetrySample.objects.filter(
        environment_id=environment_id, workload__isnull=True, at__gte=since
    )
    for metric in ("gpu_utilization_percent", "cpu_percent"):
        mean = samples.filter(metric=metric).aggregate(mean=Avg("value"))["mean"]
        if mean is not None:
            return max(0.0, min(float(mean) / 100.0, 1.0))
    return 0.0


def latest_means(*, window_s: float, now: datetime | None = None) -> list[dict]:
    """Return the mean of each (metric, environment, workload, source) over the recent window."""
    now = now or timezone.now()
    since = now - timedelta(seconds=window_s)
    return list(
        TelemetrySample.objects.filter(at__gte=since)
        .values("metric", "unit", "source", "environment__slug", "workload__name")
        .annotate(mean=Avg("value"), count=Count("id"))
        .order_by("metric", "environment__slug", "workload__name")
    )


def workload_latency_series(*, workload_id: int, since: datetime) -> list[dict]:
    """Return the workload's latency samples since a time, oldest first (for charts)."""
    return list(
        TelemetrySample.objects.filter(workload_id=workload_id, metric__startswith="latency_", at__gte=since)
        .order_by("at", "id")
        .values("at", "metric", "value", "environment__slug")[:5000]
    )


def workload_latency_minutes(*, workload_id: int, since: datetime) -> list[dict]:
    """Return the workload's per-minute latency aggregates since a time, oldest first."""
    return list(
        TelemetryAggregate.objects.filter(
            workload_id=workload_id, metric__startswith="latency_", minute__gte=since
        )
        .order_by("minute")
        .values("minute", "metric", "count", "total", "minimum", "maximum", "environment__slug")
    )


def sample_time_range() -> dict:
    """Return the oldest and newest raw sample times (for the retention display)."""
    return TelemetrySample.objects.aggregate(oldest=Min("at"), newest=Max("at"), count=Count("id"))


def metric_history(*, metric: str, since: datetime) -> list[dict]:
    """Return, per (workload, environment), the mean and count of a metric since a time.

    Reads the minute aggregates and the raw samples not yet rolled up, so nothing is counted
    twice and nothing recent is missed. Environment-level samples (no workload) are left out.
    """
    totals: dict[tuple[int, int], list[float]] = {}
    aggregates = (
        TelemetryAggregate.objects.filter(metric=metric, minute__gte=since, workload__isnull=False)
        .values("workload_id", "environment_id")
        .annotate(n=Sum("count"), total=Sum("total"))
    )
    for row in aggregates:
        key = (row["workload_id"], row["environment_id"])
        totals.setdefault(key, [0.0, 0.0])
        totals[key][0] += row["total"]
        totals[key][1] += row["n"]
    raw = (
        TelemetrySample.objects.filter(metric=metric, at__gte=since, rolled_up=False, workload__isnull=False)
        .values("workload_id", "environment_id")
        .annotate(n=Count("id"), total=Sum("value"))
    )
    for row in raw:
        key = (row["workload_id"], row["environment_id"])
        totals.setdefault(key, [0.0, 0.0])
        totals[key][0] += row["total"]
        totals[key][1] += row["n"]
    return [
        {"workload_id": w, "environment_id": e, "mean": total / n, "count": int(n)}
        for (w, e), (total, n) in sorted(totals.items())
        if n
    ]
