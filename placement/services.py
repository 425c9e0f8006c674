"""Writes for placement: initial placement of new workloads (FIG. 2.1 step 202)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from placement.initial import choose_environment
from placement.models import (
    InitialPlacementPolicy,
    PlacementRecord,
    ProductionEnvironment,
    Workload,
)
from placement.selectors import placement_candidates


class PlacementError(Exception):
    """No environment satisfies the workload's rules."""


@transaction.atomic
def workload_place_initial(*, workload_id: int) -> PlacementRecord:
    """Place a pending workload by the first enabled policy that yields an environment."""
    workload = Workload.objects.select_for_update().get(pk=workload_id)
    if workload.environment_id is not None:
        raise PlacementError(f"workload {workload.name!r} is already placed")
    candidates = placement_candidates()
    front_end_ids = list(workload.front_end_devices.values_list("id", flat=True))
    for policy in InitialPlacementPolicy.objects.filter(enabled=True).order_by("order", "name"):
        if not policy.matches(workload):
            continue
        chosen = choose_environment(
            policy.strategy,
            candidates,
            gpus_required=workload.gpus_required,
            # A workload with secured data is never placed outside a trusted environment.
            trusted_only=policy.trusted_only or workload.handles_secured_data,
            fixed_id=policy.environment_id,
            front_end_ids=front_end_ids,
        )
        if chosen is None:
            continue
        environment = ProductionEnvironment.objects.get(pk=chosen.id)
        workload.environment = environment
        workload.state = Workload.State.PLACED
        workload.save(update_fields=["environment", "state", "updated_at"])
        return PlacementRecord.objects.create(
            workload=workload,
            to_environment=environment,
            decided_by=f"policy:{policy.name}",
            policy=policy,
            reason=f"initial placement by strategy {policy.get_strategy_display().lower()}",
            evidence={
                "strategy": policy.strategy,
                "free_gpus": chosen.free_gpus,
                "candidates": [c.slug for c in candidates],
            },
        )
    raise PlacementError(f"no initial placement policy found an environment for {workload.name!r}")


def environment_record_heartbeat(*, environment_id: int) -> None:
    """Mark an environment's worker as alive now."""
    ProductionEnvironment.objects.filter(pk=environment_id).update(last_heartbeat_at=timezone.now())
