"""The monitoring agent's tasks. Control tasks fan out to every environment's own queue, so each
environment's worker measures its own host and its own path to the broker and database."""

from __future__ import annotations

import os
import socket
import time

from celery import shared_task
from django.core.cache import cache
from django.db import connection

from telemetry.agent import NetworkCounters, Reading, gpu_readings, host_readings, timed_ms

# The fan-out is dropped if no worker takes it within this time (the next round will).
COLLECT_EXPIRES_S = 60


@shared_task(soft_time_limit=30, time_limit=40)
def environments_collect() -> int:
    """Beat: ask every environment's worker for a round of telemetry."""
    from placement.dispatch import send_to_environment
    from placement.models import ProductionEnvironment

    count = 0
    for environment in ProductionEnvironment.objects.exclude(status=ProductionEnvironment.Status.OFFLINE):
        send_to_environment(
            environment, environment_collect, [environment.id, time.time()], expires=COLLECT_EXPIRES_S
        )
        count += 1
    return count


@shared_task(soft_time_limit=30, time_limit=40)
def environment_collect(environment_id: int, sent_at_epoch_s: float) -> int:
    """On an environment's queue: measure host, GPU, broker and database figures; store them."""
    from telemetry.services import readings_record

    # Time from the control plane's send to this worker's start: the queue's dispatch delay.
    readings = [Reading("dispatch_delay_ms", max(time.time() - sent_at_epoch_s, 0.0) * 1000.0, "ms")]
    counters_key = f"telemetry:net:{environment_id}:{socket.gethostname()}"
    previous = cache.get(counters_key)
    host, counters = host_readings(NetworkCounters(*previous) if previous else None)
    cache.set(counters_key, (counters.bytes_sent, counters.bytes_recv, counters.at_monotonic_s), 3600)
    readings += host
    readings += gpu_readings()
    readings.append(Reading("redis_rtt_ms", timed_ms(lambda: cache.get("telemetry:ping")), "ms"))

    def database_round_trip() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    readings.append(Reading("database_rtt_ms", timed_ms(database_round_trip), "ms"))
    return readings_record(environment_id=environment_id, readings=readings)


@shared_task(soft_time_limit=120, time_limit=150)
def telemetry_rollup() -> dict:
    """Beat: fold finished minutes into aggregates and delete what is past retention."""
    from telemetry.services import telemetry_prune
    from telemetry.services import telemetry_rollup as rollup

    folded = rollup()
    return {"folded": folded, **telemetry_prune()}


@shared_task(soft_time_limit=120, time_limit=150)
def workload_compute_probe(workload_id: int, enqueued_at_epoch_s: float, max_new_tokens: int = 1) -> dict:
    """On an environment's queue: serve one synthetic request with the real model; time it.

    The monitoring agent's active probe: the queueing time is the wait between the client's
    enqueue and this worker's start, the compute time a real generation with the warm model.
    """
    from inference.runtime import generate, get_model
    from placement.models import Workload

    started = time.time()
    queue_ms = max(started - enqueued_at_epoch_s, 0.0) * 1000.0
    workload = Workload.objects.select_related("ai_model").get(pk=workload_id)
    loaded = get_model(workload.ai_model.path)
    t0 = time.perf_counter()
    result = generate(loaded, "Describe the placement of this workload.", max_new_tokens=max_new_tokens)
    compute_ms = (time.perf_counter() - t0) * 1000.0
    return {
        "queue_ms": queue_ms,
        "compute_ms": compute_ms,
        "tokens": result.completion_tokens,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
