"""Recording telemetry, and the retention policy: raw samples for a day, minute aggregates for a month."""

from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry.models import TelemetryAggregate, TelemetrySample
from telemetry.services import (
    progress_record,
    request_latency_record,
    sample_record,
    telemetry_prune,
    telemetry_rollup,
)

pytestmark = pytest.mark.django_db


def test_a_request_is_recorded_as_its_latency_split(workload, environment):
    request_latency_record(
        workload_id=workload.pk,
        environment_id=environment.pk,
        transfer_ms=200.0,
        queue_ms=5.0,
        compute_ms=20.0,
        request_bytes=1_000,
        response_bytes=3_000,
        transfer_source="configured",
    )
    recorded = {s.metric: (s.value, s.source) for s in TelemetrySample.objects.filter(workload=workload)}
    assert recorded == {
        "latency_transfer_ms": (200.0, "configured"),
        "latency_queue_ms": (5.0, "measured"),
        "latency_compute_ms": (20.0, "measured"),
        "latency_total_ms": (225.0, "configured"),
        "payload_bytes": (4000.0, "measured"),
    }


def test_progress_is_recorded_where_the_job_runs_and_checked(workload, environment):
    progress_record(
        workload_id=workload.pk, fraction_done=0.25, seconds_per_step=0.5, steps_done=250, steps_total=1000
    )
    recorded = dict(TelemetrySample.objects.filter(environment=environment).values_list("metric", "value"))
    assert recorded == {
        "progress_fraction": 0.25,
        "seconds_per_step": 0.5,
        "steps_done": 250.0,
        "steps_total": 1000.0,
    }
    with pytest.raises(ValueError, match="between 0 and 1"):
        progress_record(workload_id=workload.pk, fraction_done=1.5, seconds_per_step=0.5)


def test_rollup_folds_finished_minutes_once_and_keeps_late_samples(environment):
    now = timezone.now().replace(second=30, microsecond=0)
    minute = now.replace(second=0) - timedelta(minutes=2)
    for value in (10.0, 30.0, 20.0):
        sample_record(
            environment_id=environment.pk, metric="cpu_percent", value=value, at=minute + timedelta(seconds=5)
        )
    sample_record(environment_id=environment.pk, metric="cpu_percent", value=99.0, at=now)  # current minute
    assert telemetry_rollup(now=now) == 3
    aggregate = TelemetryAggregate.objects.get()
    assert (aggregate.minute, aggregate.count, aggregate.mean, aggregate.minimum, aggregate.maximum) == (
        minute,
        3,
        20.0,
        10.0,
        30.0,
    )
    assert telemetry_rollup(now=now) == 0  # nothing counted twice
    # A sample that arrives late for an already rolled-up minute joins its aggregate
    sample_record(
        environment_id=environment.pk, metric="cpu_percent", value=60.0, at=minute + timedelta(seconds=50)
    )
    assert telemetry_rollup(now=now) == 1
    aggregate.refresh_from_db()
    assert (aggregate.count, aggregate.mean, aggregate.maximum) == (4, 30.0, 60.0)
    assert TelemetrySample.objects.filter(rolled_up=False).count() == 1


def test_retention_deletes_old_rolled_up_samples_and_old_aggregates(environment, settings):
    settings.TELEMETRY_RAW_RETENTION_HOURS = 24
    settings.TELEMETRY_AGGREGATE_RETENTION_DAYS = 30
    now = timezone.now()
    old = now - timedelta(hours=25)
    sample_record(environment_id=environment.pk, metric="cpu_percent", value=1.0, at=old)
    sample_record(environment_id=environment.pk, metric="cpu_percent", value=2.0, at=now - timedelta(hours=2))
    telemetry_rollup(now=now)
    TelemetryAggregate.objects.create(
        environment=environment,
        metric="cpu_percent",
        minute=now - timedelta(days=31),
        count=1,
        total=1,
        minimum=1,
        maximum=1,
    )
    assert telemetry_prune(now=now) == {"samples": 1, "aggregates": 1}
    assert list(TelemetrySample.objects.values_list("value", flat=True)) == [2.0]
    # The old sample's minute is still summarised for a month
    assert (
        TelemetryAggregate.objects.filter(
            minute__gte=old.replace(second=0, microsecond=0) - timedelta(minutes=1)
        ).count()
        == 2
    )


def test_an_old_sample_not_yet_rolled_up_is_kept_until_it_is(environment):
    now = timezone.now()
    sample_record(
        environment_id=environment.pk, metric="cpu_percent", value=1.0, at=now - timedelta(hours=30)
    )
    assert telemetry_prune(now=now) == {"samples": 0, "aggregates": 0}
    telemetry_rollup(now=now)
    assert telemetry_prune(now=now) == {"samples": 1, "aggregates": 0}
