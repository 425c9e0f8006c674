"""Variants follow their model's inferencing workload when placement moves it.

A variant names the environment its requests are served in. When an approved migration
switches the model's inferencing workload from that environment to another (or a failed
one switches it back), the variants of that model there move with it, in the same
transaction as the switch, so the gateway never routes to an environment that no longer
serves the model. A secured variant only moves to an environment that may hold secured
data (trusted, reached over the private path); otherwise the switch is refused and the
migration rolls back, so sensitive prompts never follow a workload onto a public path.
"""

from __future__ import annotations

from placement.models import ProductionEnvironment, Workload
from placement.signals import workload_moved
from variants.models import Variant


class SecuredVariantCannotMove(Exception):
    """The target environment may not serve a secured variant."""


def follow_workload(
    sender, *, workload: Workload, from_environment_id: int, to_environment_id: int, **_
) -> list[int]:
    """Move the model's variants at the source to the target; return the moved variants' ids."""
    if workload.kind != Workload.Kind.INFERENCING:
        return []
    still_served = (
        Workload.objects.filter(
            ai_model_id=workload.ai_model_id,
            environment_id=from_environment_id,
            kind=Workload.Kind.INFERENCING,
        )
        .exclude(pk=workload.pk)
        .exists()
    )
    if still_served:
        return []  # another inferencing workload of the model keeps serving the source
    target = ProductionEnvironment.objects.get(pk=to_environment_id)
    moved = []
    variants = Variant.objects.select_for_update().filter(
        ai_model_id=workload.ai_model_id, environment_id=from_environment_id
    )
    for variant in variants:
        if variant.is_secured and not (
            target.is_trusted and target.network_path == ProductionEnvironment.NetworkPath.PRIVATE
        ):
            raise SecuredVariantCannotMove(
                f"secured variant {variant.name} cannot follow the workload to {target.slug}: "
                "it is not a trusted environment on the private path"
            )
        variant.environment = target
        variant.save(update_fields=["environment"])  # post_save drops the gateway's caches
        moved.append(variant.pk)
    return moved


def connect() -> None:
    """Connect the receiver (called once from the app's ready())."""
    workload_moved.connect(follow_workload, sender=Workload, dispatch_uid="variants-follow-workload")
