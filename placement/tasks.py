"""Placement tasks. Each takes ids and plain values and calls one service."""

from __future__ import annotations

from celery import shared_task

from placement.models import ProductionEnvironment
from placement.services import environment_record_heartbeat


@shared_task(soft_time_limit=30, time_limit=40)
def environment_heartbeat(environment_id: int) -> str:
    """Run on an environment's own queue: record that one of its workers answered."""
    environment_record_heartbeat(environment_id=environment_id)
    return ProductionEnvironment.objects.values_list("slug", flat=True).get(pk=environment_id)


@shared_task(soft_time_limit=30, time_limit=40)
def environments_heartbeat() -> int:
    """Fan a heartbeat out to every active environment's queue; a silent one shows as stale."""
    environments = ProductionEnvironment.objects.exclude(status=ProductionEnvironment.Status.OFFLINE)
    count = 0
    for environment in environments:
        environment_heartbeat.apply_async(args=[environment.id], queue=environment.queue_name, expires=60)
        count += 1
    return count
