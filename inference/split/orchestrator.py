"""The adaptive orchestrator's monitoring cycle (paper Algorithm 1) for one model.

Each cycle measures (EWMA of recent per-token latencies recorded by coordinators, node
utilisation from heartbeats, link bandwidth the nodes' probes measured, synced from Redis
into ``LinkMeasurement``), asks ``triggers.decide``
for keep / redistribute / re-split, stores an ``OrchestratorDecision`` with the metrics,
and for a change stores the new ``SplitPlan``: awaiting an administrator's approval, or,
when the policy says ``auto_apply``, broadcast through the control queue.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from inference.planner import PlannerWeights
from inference.split.services import (
    active_plan_of,
    dataplane_client,
    link_figures,
    live_split_nodes,
    model_layer_count,
    node_links,
    node_profiles,
    parse_partitions,
    plan_partitions,
    split_links_sync,
    split_plan_propose,
    take_privacy_violations,
)
from inference.split_models import OrchestratorDecision, OrchestratorPolicy, SplitPlan
from inference.triggers import MonitoringSnapshot, TriggerThresholds, decide, ewma
from placement.models import AIModel


def thresholds_of(policy: OrchestratorPolicy) -> TriggerThresholds:
    """Return the trigger thresholds an administrator set."""
    return TriggerThresholds(
        latency_ms=policy.latency_ms,
        utilisation=policy.utilisation,
        bandwidth_mbps=policy.bandwidth_mbps,
        cooldown_s=policy.cooldown_s,
        ewma_alpha=policy.ewma_alpha,
    )


def planner_weights(policy: OrchestratorPolicy) -> PlannerWeights:
    """Return the objective weights (eq. 3) an administrator set."""
    return PlannerWeights(
        alpha=policy.weight_latency, beta=policy.weight_imbalance, gamma=policy.weight_privacy
    )


def measure(ai_model: AIModel, policy: OrchestratorPolicy, nodes, plan_nodes) -> MonitoringSnapshot:
    """Return this cycle's snapshot from Redis (latencies, heartbeats) and measured links.

    Only fresh link measurements count for the bandwidth trigger: a configured figure is
    what an administrator typed, not a drop the network showed (the planner uses both).
    """
    from inference.split.dataplane import latency_key

    raw = dataplane_client().lrange(latency_key(ai_model.slug), 0, -1)
    # Newest first in Redis; the EWMA folds oldest to newest.
    samples = [float(value) for value in reversed(raw)]
    links = link_figures([n for n in nodes if n.name in plan_nodes])
    return MonitoringSnapshot(
        privacy_high_request=take_privacy_violations(ai_model) > 0,
        latency_ewma_ms=ewma(samples, policy.ewma_alpha),
        node_utilisation={n.name: float(n.utilisation) for n in nodes},
        link_bandwidth_mbps={
            (link.a, link.b): link.bandwidth_mbps for link in links if link.source == "measured"
        },
    )


def orchestrator_cycle(
    *,
    ai_model: AIModel,
    snapshot: MonitoringSnapshot | None = None,
    now_s: float | None = None,
) -> OrchestratorDecision:
    """Run one monitoring cycle for ``ai_model`` and return the stored decision.

    ``snapshot`` replaces the measurement (tests and what-if runs from the admin).
    """
    policy = OrchestratorPolicy.current()
    current = active_plan_of(ai_model)
    if current is None:
        raise ValueError(f"model {ai_model.slug!r} has no active split plan to orchestrate")
    current_plan = parse_partitions(current.partitions)
    nodes = live_split_nodes()
    # Nodes of the current plan stay in the picture even when their heartbeat lapsed:
    # decide() then sees the plan as invalid and replaces it.
    if snapshot is None:
        split_links_sync()
        snapshot = measure(ai_model, policy, nodes, set(current_plan.node_ids))
    now_s = time.time() if now_s is None else now_s
    last = (
        SplitPlan.objects.filter(ai_model=ai_model, activated_at__isnull=False)
        .order_by("-activated_at")
        .values_list("activated_at", flat=True)
        .first()
    )
    decision = decide(
        snapshot,
        thresholds_of(policy),
        now_s=now_s,
        last_reconfig_s=last.timestamp() if last else None,
        current_plan=current_plan,
        nodes=node_profiles(ai_model, nodes),
        links=node_links(nodes),
        weights=planner_weights(policy),
        num_layers=model_layer_count(ai_model),
    )
    with transaction.atomic():
        proposed = None
        if decision.action != "keep":
            proposed = split_plan_propose(
                ai_model=ai_model,
                partitions=plan_partitions(decision.plan),
                created_by="orchestrator",
                reason="; ".join(decision.reasons),
                evidence=decision.to_dict(),
                state=SplitPlan.State.BROADCASTING
                if policy.auto_apply
                else SplitPlan.State.AWAITING_APPROVAL,
            )
        quiet = decision.action == "keep" and not decision.triggers
        latest = OrchestratorDecision.objects.filter(ai_model=ai_model).first()
        if quiet and latest is not None and latest.action == "keep" and not latest.triggers:
            # A run of quiet cycles is one row whose time and metrics are the latest cycle's:
            # a 10 s beat would otherwise store thousands of identical "keep" rows a day.
            latest.metrics = snapshot.to_dict()
            latest.reasons = list(decision.reasons)
            latest.plan_from = current
            latest.created_at = timezone.now()
            latest.save(update_fields=["metrics", "reasons", "plan_from", "created_at"])
            return latest
        stored = OrchestratorDecision.objects.create(
            ai_model=ai_model,
            action=decision.action,
            triggers=[t.to_dict() for t in decision.triggers],
            reasons=list(decision.reasons),
            metrics=snapshot.to_dict(),
            plan_from=current,
            plan_to=proposed,
        )
        if proposed is not None and policy.auto_apply:
            from inference.split.tasks import split_plan_activate_task

            plan_id = proposed.pk
            transaction.on_commit(lambda: split_plan_activate_task.delay(plan_id))
    return stored
