"""Control-plane Celery tasks of split inference (queue ``control``; node queues by name).

Thin: each takes ids and plain values and calls a service. Activations never ride in
tasks; they go node to node through Redis (``inference.split.dataplane``).
"""

from __future__ import annotations

import json
import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="inference.split.activate_plan", ignore_result=True, soft_time_limit=180, time_limit=200)
def split_plan_activate_task(plan_id: int) -> str:
    """Broadcast a plan and make it active once every node acknowledged."""
    from inference.split.coordinator import SplitUnavailable
    from inference.split.services import split_plan_activate
    from inference.split_models import SplitPlan

    plan = SplitPlan.objects.select_related("ai_model").get(pk=plan_id)
    try:
        split_plan_activate(plan=plan)
    except SplitUnavailable:
        return "failed"
    return "active"


@shared_task(name="inference.split.load_partition", ignore_result=True, soft_time_limit=30, time_limit=40)
def split_partition_load(
    node: str, model_key: str, version: int, model_dir: str, start: int, end: int
) -> None:
    """Tell ``node`` to load layers [start, end) of a model for a plan version."""
    from inference.split.dataplane import control_key
    from inference.split.services import dataplane_client

    command = {"op": "load", "model_key": model_key, "version": version, "model_dir": model_dir}
    dataplane_client().rpush(control_key(node), json.dumps(dict(command, start=start, end=end)))


@shared_task(name="inference.split.drop_partition", ignore_result=True, soft_time_limit=30, time_limit=40)
def split_partition_drop(node: str, model_key: str) -> None:
    """Tell ``node`` to drop every partition it holds of a model."""
    from inference.split.dataplane import control_key
    from inference.split.services import dataplane_client

    dataplane_client().rpush(control_key(node), json.dumps({"op": "drop", "model_key": model_key}))


@shared_task(name="inference.split.orchestrate", ignore_result=True, soft_time_limit=60, time_limit=80)
def split_orchestrator_cycle() -> int:
    """Sync the measured links, run one monitoring cycle per model with an active plan; return how many."""
    from inference.split.orchestrator import orchestrator_cycle
    from inference.split.services import split_links_sync
    from inference.split_models import SplitPlan
    from placement.models import AIModel

    # Also without an active plan: the console shows the links, the first plan uses them.
    split_links_sync()
    models = AIModel.objects.filter(split_plans__state=SplitPlan.State.ACTIVE).distinct()
    for ai_model in models:
        try:
            orchestrator_cycle(ai_model=ai_model)
        except Exception:  # one model's failure (e.g. no live nodes) must not starve the others
            logger.exception("orchestrator cycle failed for %s", ai_model.slug)
    return len(models)
