"""Split inference in the demo: three nodes and an initial plan for the default model.

``load_split_demo`` (called by ``placement.demo.load_demo``) only writes rows: the policy
and the three demo nodes, offline until their processes start. ``make run`` starts the
node processes (``runstack``) and then calls ``bootstrap_initial_plan`` in a background
thread, which waits for their heartbeats and activates the first plan: P1 on the edge,
the middle layers on the (untrusted) cloud node, PK on the core, so the privacy pins
(eq. 6, 10) hold from the first request.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.db import transaction

from inference.split_models import OrchestratorPolicy, SplitNode, SplitPlan
from placement.models import AIModel, ProductionEnvironment

logger = logging.getLogger(__name__)

# (name, environment slug, trust) in pipeline order of the initial plan.
DEMO_NODES = [
    ("split-edge", "secured", SplitNode.Trust.TRUSTED),
    ("split-cloud", "cloud", SplitNode.Trust.UNTRUSTED),
    ("split-core", "onprem-b", SplitNode.Trust.TRUSTED),
]


@transaction.atomic
def load_split_demo() -> dict[str, int]:
    """Create the orchestrator policy and the demo node rows if missing; idempotent."""
    OrchestratorPolicy.current()
    for name, environment_slug, trust in DEMO_NODES:
        SplitNode.objects.get_or_create(
            name=name,
            defaults={
                "trust": trust,
                "environment": ProductionEnvironment.objects.filter(slug=environment_slug).first(),
            },
        )
    return {"split_nodes": SplitNode.objects.count()}


def initial_partitions(num_layers: int, nodes: list[str]) -> list[dict]:
    """Return contiguous, nearly equal partitions of ``num_layers`` over ``nodes`` in order."""
    count = min(len(nodes), num_layers)
    bounds = [round(i * num_layers / count) for i in range(count + 1)]
    return [{"start": bounds[i], "end": bounds[i + 1], "node": nodes[i]} for i in range(count)]


def bootstrap_initial_plan(
    *,
    model_slug: str = "default",
    nodes: list[str] | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
) -> SplitPlan | None:
    """Wait for the model files and the nodes' heartbeats, then propose and activate a plan.

    Returns the active plan (an existing one is kept), or None when the wait ran out.
    """
    from django.db import close_old_connections

    from inference.split.dataplane import live_nodes
    from inference.split.services import (
        active_plan_of,
        dataplane_client,
        model_layer_count,
        split_plan_activate,
        split_plan_propose,
    )

    names = nodes or [name for name, _, _ in DEMO_NODES]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        close_old_connections()
        ai_model = AIModel.objects.filter(slug=model_slug).first()
        if ai_model is not None:
            current = active_plan_of(ai_model)
            if current is not None:
                return current
            ready = (Path(ai_model.path) / "config.json").is_file()
            if ready and all(live_nodes(dataplane_client(), names).values()):
                partitions = initial_partitions(model_layer_count(ai_model), names)
                plan = split_plan_propose(
                    ai_model=ai_model,
                    partitions=partitions,
                    created_by="bootstrap",
                    reason="initial plan of the demo nodes",
                )
                return split_plan_activate(plan=plan)
        time.sleep(poll_s)
    logger.warning("no initial split plan for %s: nodes or model not ready in %.0f s", model_slug, timeout_s)
    return None
