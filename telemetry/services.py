"""Writes for telemetry: recording samples, rolling them up, and pruning old ones.

``request_latency_record`` and ``progress_record`` are the entry points other parts call: the
gateway and the workers for every request, training and adaptation jobs for their progress.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Min, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from telemetry.agent import Reading
from telemetry.conf import setting
from telemetry.models import Source, TelemetryAggregate, TelemetrySample

LATENCY_METRICS = ("latency_transfer_ms", "latency_queue_ms", "latency_compute_ms", "latency_total_ms")
# Two rollups at once would count the same samples twice; this lock keeps it single-flight.
_ROLLUP_LOCK_KEY = "telemetry:rollup-lock"
_ROLLUP_LOCK_S = 300


def sample_record(
    *,
    environment_id: int,
    metric: str,
    value: float,
    unit: str = "",
    workload_id: int | None = None,
    front_end_device_id: int | None = None,
    source: str = Source.MEASURED,
    at: datetime | None = None,
) -> TelemetrySample:
    """Store one measurement."""
    return TelemetrySample.objects.create(
        environment_id=environment_id,
        workload_id=workload_id,
        front_end_device_id=front_end_device_id,
        metric=metric,
        value=float(value),
        unit=unit,
        source=source,
        at=at or timezone.now(),
    )


def readings_record(
    *,
    environment_id: int,
    readings: list[Reading],
    workload_id: int | None = None,
    at: datetime | None = None,
) -> int:
    """Store many measured readings of one environment at one moment; return how many."""
    at = at or timezone.now()
    TelemetrySample.objects.bulk_create(
        TelemetrySample(
            environment_id=environment_id,
            workload_id=workload_id,
            metric=reading.metric,
            value=float(reading.value),
            unit=reading.unit,
            source=Source.MEASURED,
            at=at,
        )
        for reading in readings
    )
    return len(readings)


def request_latency_record(
    *,
    workload_id: int,
    environment_id: int,
    transfer_ms: float,
    queue_ms: float,
    compute_ms: float,
    front_end_device_id: int | None = None,
    request_bytes: int | None = None,
    response_bytes: int | None = None,
    transfer_source: str = Source.MEASURED,
    at: datetime | None = None,
) -> None:
    """Record one request's latency split (FIG. 2.1 step 204): front-end transfer, queueing, compute.

    ``transfer_source`` is ``configured`` when the transfer time came from a link's configured
    figures (the one-machine demo) rather than from the wire.
    """
    at = at or timezone.now()
    total_ms = transfer_ms + queue_ms + compute_ms
    values = [
        ("latency_transfer_ms", transfer_ms, transfer_source),
        ("latency_queue_ms", queue_ms, Source.MEASURED),
        ("latency_compute_ms", compute_ms, Source.MEASURED),
        # The total inherits "configured" when part of it was.
        ("latency_total_ms", total_ms, transfer_source),
    ]
    samples = [
        TelemetrySample(
            environment_id=environment_id,
            workload_id=workload_id,
            front_end_device_id=front_end_device_id,
            metric=metric,
            value=float(value),
            unit="ms",
            source=source,
            at=at,
        )
        for metric, value, source in values
    ]
    if request_bytes is not None and response_bytes is not None:
        samples.append(
            TelemetrySample(
                environment_id=environment_id,
                workload_id=workload_id,
                front_end_device_id=front_end_device_id,
                metric="payload_bytes",
                value=float(request_bytes + response_bytes),
                unit="bytes",
                at=at,
            )
        )
    TelemetrySample.objects.bulk_create(samples)


def progress_record(
    *,
    workload_id: int,
    fraction_done: float,
    seconds_per_step: float,
    steps_done: int | None = None,
    steps_total: int | None = None,
    environment_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Record a training or adaptation job's progress (FIG. 2.2 step 224, FIG. 4.2 step 424)."""
    from placement.models import Workload

    if not 0.0 <= fraction_done <= 1.0:
        raise ValueError("fraction_done must lie between 0 and 1")
    if seconds_per_step < 0:
        raise ValueError("seconds_per_step must not be negative")
    if environment_id is None:
        environment_id = Workload.objects.values_list("environment_id", flat=True).get(pk=workload_id)
        if environment_id is None:
            raise ValueError("the workload is not placed; say which environment reports its progress")
    at = at or timezone.now()
    values = [("progress_fraction", fraction_done, "fraction"), ("seconds_per_step", seconds_per_step, "s")]
    if steps_done is not None:
        values.append(("steps_done", float(steps_done), "steps"))
    if steps_total is not None:
        values.append(("steps_total", float(steps_total), "steps"))
    TelemetrySample.objects.bulk_create(
        TelemetrySample(
            environment_id=environment_id,
            workload_id=workload_id,
            metric=metric,
            value=value,
            unit=unit,
            at=at,
        )
        for metric, value, unit in values
    )


def telemetry_rollup(*, now: datetime | None = None) -> int:
    """Fold raw samples of finished minutes into minute aggregates; return the samples folded.

    Samples are marked once counted, so a late sample (written after its minute was rolled
    up) is folded into the same aggregate on the next run rather than lost or counted twice.
    """
    now = now or timezone.now()
    current_minute = now.replace(second=0, microsecond=0)
    if not cache.add(_ROLLUP_LOCK_KEY, "1", _ROLLUP_LOCK_S):
        return 0
    try:
        with transaction.atomic():
            pending = TelemetrySample.objects.filter(rolled_up=False, at__lt=current_minute)
            ids = list(pending.values_list("id", flat=True)[:200_000])
            if not ids:
                return 0
            groups = (
                TelemetrySample.objects.filter(id__in=ids)
                .annotate(minute=TruncMinute("at"))
                .values("environment_id", "workload_id", "metric", "unit", "source", "minute")
                .annotate(count=Count("id"), total=Sum("value"), minimum=Min("value"), maximum=Max("value"))
            )
            for group in groups:
                key = {
                    "environment_id": group["environment_id"],
                    "workload_id": group["workload_id"],
                    "metric": group["metric"],
                    "source": group["source"],
                    "minute": group["minute"],
                }
                aggregate = TelemetryAggregate.objects.select_for_update().filter(**key).first()
                if aggregate is None:
                    TelemetryAggregate.objects.create(
                        **key,
                        unit=group["unit"],
                        count=group["count"],
                        total=group["total"],
                        minimum=group["minimum"],
                        maximum=group["maximum"],
                    )
                else:
                    aggregate.count += group["count"]
                    aggregate.total += group["total"]
                    aggregate.minimum = min(aggregate.minimum, group["minimum"])
                    aggregate.maximum = max(aggregate.maximum, group["maximum"])
                    aggregate.save(update_fields=["count", "total", "minimum", "maximum"])
            TelemetrySample.objects.filter(id__in=ids).update(rolled_up=True)
            return len(ids)
    finally:
        cache.delete(_ROLLUP_LOCK_KEY)


def telemetry_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete raw samples and aggregates past their retention; return how many of each."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(hours=int(setting("TELEMETRY_RAW_RETENTION_HOURS")))
    aggregate_cutoff = now - timedelta(days=int(setting("TELEMETRY_AGGREGATE_RETENTION_DAYS")))
    # Only rolled-up samples go: an unrolled old one (rollup was down) is folded in first.
    raw_deleted, _ = TelemetrySample.objects.filter(at__lt=raw_cutoff, rolled_up=True).delete()
    aggregates_deleted, _ = TelemetryAggregate.objects.filter(minute__lt=aggregate_cutoff).delete()
    return {"samples": raw_deleted, "aggregates": aggregates_deleted}
