"""Reads for placement decisions."""

from __future__ import annotations

from django.db.models import Sum

from placement.initial import Candidate
from placement.models import NetworkLink, ProductionEnvironment, Workload

_OCCUPYING_STATES = [
    Workload.State.PLACED,
    Workload.State.RUNNING,
    Workload.State.MIGRATING,
    Workload.State.PAUSED,
]


def placement_candidates() -> list[Candidate]:
    """Return every active environment with its GPU occupancy and front-end links."""
    environments = list(ProductionEnvironment.objects.filter(status=ProductionEnvironment.Status.ACTIVE))
    in_use = dict(
        Workload.objects.filter(state__in=_OCCUPYING_STATES, environment__isnull=False)
        .values_list("environment_id")
        .annotate(total=Sum("gpus_required"))
        .values_list("environment_id", "total")
    )
    links: dict[int, dict[int, tuple[float, float]]] = {env.id: {} for env in environments}
    for link in NetworkLink.objects.filter(front_end_device__isnull=False):
        if link.environment_id in links:
            links[link.environment_id][link.front_end_device_id] = (link.bandwidth_mbps, link.rtt_ms)
    return [
        Candidate(
            id=env.id,
            slug=env.slug,
            trusted=env.is_trusted,
            gpu_count=env.gpu_count,
            gpus_in_use=in_use.get(env.id, 0) or 0,
            links=links[env.id],
        )
        for env in environments
    ]
