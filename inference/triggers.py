"""Adaptive orchestrator: when to reconfigure a split plan, and how (paper Algorithm 1).

Each monitoring cycle the orchestrator turns metrics into a ``MonitoringSnapshot``,
evaluates the triggers of the paper's Table 3, and ``decide`` picks one action:

* ``keep``: no trigger fired, the cool-down is running, or no better valid plan exists;
* ``redistribute``: same partition boundaries, different nodes (tried first: "If
  multiple triggers fire simultaneously, the system first attempts placement
  migration");
* ``resplit``: new boundaries and nodes from the split planner.

Trigger semantics (strict comparisons, as the paper words them):

* latency: the EWMA of end-to-end latency *exceeds* ``latency_ms`` (``>``; exactly
  at the threshold does not fire);
* utilisation: the busiest node's max(GPU, CPU) utilisation *exceeds*
  ``utilisation`` (``>``);
* bandwidth: the slowest link *drops below* ``bandwidth_mbps`` (``<``);
* privacy: a privacy=high request arrived while the plan routes activations through
  an untrusted node.

Utilisation and bandwidth look only at the nodes and links the current plan uses when a
plan is given (a busy node outside the plan is not something a reconfiguration can
relieve); otherwise at everything in the snapshot.

Reconfigurations are rate-limited by ``cooldown_s`` (the elapsed time must reach it).
A privacy trigger or an invalid current plan (a node gone, memory shrunk) bypasses the
cool-down by default: waiting would leave privacy=high traffic on untrusted nodes, or
leave no runnable plan at all.

Pure Python + numpy (via the planner); no Django, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from inference.planner import (
    Link,
    NodeProfile,
    Plan,
    PlanCost,
    PlanError,
    PlannerWeights,
    PlanResult,
    Workload,
    plan_cost,
    plan_optimal,
    plan_redistribute,
    validate_plan,
)

Action = Literal["keep", "redistribute", "resplit"]

LATENCY = "latency"
UTILISATION = "utilisation"
BANDWIDTH = "bandwidth"
PRIVACY = "privacy"
PLAN_INVALID = "plan_invalid"


@dataclass(frozen=True)
class TriggerThresholds:
    """Trigger thresholds, defaults from the paper's Table 3."""

    latency_ms: float = 150.0  # EWMA of end-to-end latency
    utilisation: float = 0.85  # max(GPU, CPU) utilisation of any node
    bandwidth_mbps: float = 50.0  # available bandwidth of any active link
    cooldown_s: float = 30.0  # minimum time between two reconfigurations
    ewma_alpha: float = 0.3  # weight of the newest latency sample
    # A new plan must beat the current one by this fraction of its cost; without it two
    # near-equal plans could alternate every cool-down.
    min_relative_gain: float = 0.02
    privacy_bypasses_cooldown: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Ewma:
    """Exponentially weighted moving average; the first sample is taken as is."""

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"EWMA alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.value: float | None = None

    def update(self, sample: float) -> float:
        """Fold one sample in and return the new average."""
        if self.value is None:
            self.value = float(sample)
        else:
            self.value = self.alpha * float(sample) + (1.0 - self.alpha) * self.value
        return self.value


def ewma(samples: Iterable[float], alpha: float = 0.3) -> float | None:
    """Return the EWMA of ``samples`` in order (None when there are none)."""
    average = Ewma(alpha)
    for sample in samples:
        average.update(sample)
    return average.value


def node_utilisation(gpu: Mapping[str, float], cpu: Mapping[str, float]) -> dict[str, float]:
    """Return per-node utilisation as the larger of GPU and CPU utilisation (0..1)."""
    return {node: max(gpu.get(node, 0.0), cpu.get(node, 0.0)) for node in set(gpu) | set(cpu)}


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class MonitoringSnapshot:
    """What Monitoring & Capacity Profiling measured over one monitoring window.

    ``link_bandwidth_mbps`` is keyed by node-id pairs in either order.
    """

    latency_ewma_ms: float | None = None
    node_utilisation: Mapping[str, float] = field(default_factory=dict)
    link_bandwidth_mbps: Mapping[tuple[str, str], float] = field(default_factory=dict)
    privacy_high_request: bool = False  # a request tagged privacy=high arrived

    def bandwidth_of(self, a: str, b: str) -> float | None:
        """Return the measured bandwidth between ``a`` and ``b``, if any."""
        for key in ((a, b), (b, a)):
            if key in self.link_bandwidth_mbps:
                return self.link_bandwidth_mbps[key]
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (links as ``[a, b, mbps]`` triples)."""
        return {
            "latency_ewma_ms": self.latency_ewma_ms,
            "node_utilisation": dict(self.node_utilisation),
            "link_bandwidth_mbps": [[a, b, bw] for (a, b), bw in self.link_bandwidth_mbps.items()],
            "privacy_high_request": self.privacy_high_request,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitoringSnapshot:
        """Build a snapshot from ``to_dict`` output."""
        return cls(
            latency_ewma_ms=data.get("latency_ewma_ms"),
            node_utilisation={k: float(v) for k, v in data.get("node_utilisation", {}).items()},
            link_bandwidth_mbps={(a, b): float(bw) for a, b, bw in data.get("link_bandwidth_mbps", [])},
            privacy_high_request=bool(data.get("privacy_high_request", False)),
        )


@dataclass(frozen=True)
class Trigger:
    """One fired trigger: what was observed against which threshold."""

    name: str
    observed: float
    threshold: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "observed": self.observed,
            "threshold": self.threshold,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        """Build a trigger from ``to_dict`` output."""
        return cls(data["name"], float(data["observed"]), float(data["threshold"]), data["detail"])


def evaluate_triggers(
    snapshot: MonitoringSnapshot,
    thresholds: TriggerThresholds | None = None,
    *,
    current_plan: Plan | None = None,
    trusted_node_ids: Iterable[str] | None = None,
) -> list[Trigger]:
    """Return the triggers of Table 3 that fire for ``snapshot`` (Algorithm 1's test).

    The privacy trigger needs ``current_plan`` and ``trusted_node_ids``; without them it
    cannot tell where the route goes and does not fire.
    """
    thresholds = thresholds or TriggerThresholds()
    fired: list[Trigger] = []

    latency = snapshot.latency_ewma_ms
    if latency is not None and latency > thresholds.latency_ms:
        fired.append(
            Trigger(
                LATENCY,
                latency,
                thresholds.latency_ms,
                f"EWMA latency {latency:.1f} ms exceeds {thresholds.latency_ms:.1f} ms",
            )
        )

    plan_nodes = set(current_plan.node_ids) if current_plan is not None else None
    utilisation = {
        node: value
        for node, value in snapshot.node_utilisation.items()
        if plan_nodes is None or node in plan_nodes
    }
    if utilisation:
        busiest = max(sorted(utilisation), key=lambda node: utilisation[node])
        if utilisation[busiest] > thresholds.utilisation:
            fired.append(
                Trigger(
                    UTILISATION,
                    utilisation[busiest],
                    thresholds.utilisation,
                    f"node {busiest!r} utilisation {utilisation[busiest]:.2f} exceeds "
                    f"{thresholds.utilisation:.2f}",
                )
            )

    if current_plan is not None:
        ids = current_plan.node_ids
        pairs = [_pair(a, b) for a, b in zip(ids, ids[1:], strict=False)]
        bandwidth = {p: bw for p in pairs if (bw := snapshot.bandwidth_of(*p)) is not None}
    else:
        bandwidth = {_pair(*p): bw for p, bw in snapshot.link_bandwidth_mbps.items()}
    if bandwidth:
        slowest = min(sorted(bandwidth), key=lambda p: bandwidth[p])
        if bandwidth[slowest] < thresholds.bandwidth_mbps:
            fired.append(
                Trigger(
                    BANDWIDTH,
                    bandwidth[slowest],
                    thresholds.bandwidth_mbps,
                    f"link {slowest[0]}-{slowest[1]} bandwidth {bandwidth[slowest]:.1f} Mbps "
                    f"is below {thresholds.bandwidth_mbps:.1f} Mbps",
                )
            )

    if snapshot.privacy_high_request and current_plan is not None and trusted_node_ids is not None:
        trusted = set(trusted_node_ids)
        untrusted = [node for node in current_plan.node_ids if node not in trusted]
        if untrusted:
            fired.append(
                Trigger(
                    PRIVACY,
                    float(len(untrusted)),
                    0.0,
                    "a privacy=high request would cross untrusted node(s) "
                    + ", ".join(repr(n) for n in untrusted),
                )
            )
    return fired


def apply_snapshot(
    nodes: Sequence[NodeProfile], links: Sequence[Link], snapshot: MonitoringSnapshot
) -> tuple[list[NodeProfile], list[Link]]:
    """Return node profiles and links updated with the snapshot's measurements."""
    new_nodes = [
        replace(n, utilisation=min(max(snapshot.node_utilisation[n.node_id], 0.0), 1.0))
        if n.node_id in snapshot.node_utilisation
        else n
        for n in nodes
    ]
    new_links = []
    for link in links:
        measured = snapshot.bandwidth_of(link.a, link.b)
        # A link measured at zero is down; a tiny bandwidth keeps the cost finite but huge.
        new_links.append(link if measured is None else replace(link, bandwidth_mbps=max(measured, 1e-6)))
    return new_nodes, new_links


@dataclass(frozen=True)
class Decision:
    """The orchestrator's verdict for one monitoring cycle, with its evidence."""

    action: Action
    plan: Plan  # the plan to run from now on (the current one when keeping)
    triggers: tuple[Trigger, ...] = ()
    reasons: tuple[str, ...] = ()
    cost_before: PlanCost | None = None  # current plan under the new measurements
    cost_after: PlanCost | None = None  # chosen plan under the new measurements
    exact: bool = True  # False if the planner hit its search budget

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "action": self.action,
            "plan": self.plan.to_dict(),
            "triggers": [t.to_dict() for t in self.triggers],
            "reasons": list(self.reasons),
            "cost_before": self.cost_before.to_dict() if self.cost_before else None,
            "cost_after": self.cost_after.to_dict() if self.cost_after else None,
            "exact": self.exact,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Build a decision from ``to_dict`` output."""
        action = data["action"]
        if action not in ("keep", "redistribute", "resplit"):
            raise ValueError(f"unknown action {action!r}")
        return cls(
            action=action,
            plan=Plan.from_dict(data["plan"]),
            triggers=tuple(Trigger.from_dict(t) for t in data.get("triggers", [])),
            reasons=tuple(data.get("reasons", [])),
            cost_before=PlanCost.from_dict(data["cost_before"]) if data.get("cost_before") else None,
            cost_after=PlanCost.from_dict(data["cost_after"]) if data.get("cost_after") else None,
            exact=bool(data.get("exact", True)),
        )


def _improves(candidate: PlanCost, current: PlanCost | None, min_relative_gain: float) -> bool:
    if not math.isfinite(candidate.total):
        return False
    if current is None or not math.isfinite(current.total):
        return True
    return candidate.total < current.total - min_relative_gain * abs(current.total)


def decide(
    snapshot: MonitoringSnapshot,
    thresholds: TriggerThresholds | None = None,
    *,
    now_s: float,
    last_reconfig_s: float | None,
    current_plan: Plan,
    nodes: Sequence[NodeProfile],
    links: Sequence[Link],
    weights: PlannerWeights | None = None,
    workload: Workload | None = None,
    max_partitions: int | None = None,
    num_layers: int | None = None,
) -> Decision:
    """Return keep / redistribute / resplit for one monitoring cycle (Algorithm 1).

    ``nodes`` and ``links`` are the capacity profiles; the snapshot's utilisation and
    bandwidth replace theirs before planning. Order of checks: fired triggers (an
    invalid current plan counts as one); cool-down; redistribute (same boundaries) if it
    is valid, beats the current cost by ``min_relative_gain`` and, when the privacy
    trigger fired, keeps every partition on trusted nodes; otherwise a full re-split
    under the same conditions; otherwise keep. Every proposed plan has passed
    ``validate_plan``, so P1 and PK are always on trusted nodes. ``num_layers`` defaults
    to where the current plan ends.
    """
    thresholds = thresholds or TriggerThresholds()
    weights = weights or PlannerWeights()
    workload = workload or Workload()
    nodes, links = apply_snapshot(nodes, links, snapshot)
    trusted = {n.node_id for n in nodes if n.trusted}
    triggers = evaluate_triggers(snapshot, thresholds, current_plan=current_plan, trusted_node_ids=trusted)
    privacy_fired = any(t.name == PRIVACY for t in triggers)
    # A privacy=high request asks the planner to keep every partition on trusted nodes.
    planning = replace(workload, privacy_high=workload.privacy_high or privacy_fired)

    if num_layers is None:
        num_layers = current_plan.boundaries[-1] if current_plan.partitions else 0
    try:
        validate_plan(current_plan, num_layers, nodes)
        cost_before: PlanCost | None = plan_cost(current_plan, nodes, links, weights, workload=planning)
    except PlanError as exc:
        cost_before = None
        triggers.append(Trigger(PLAN_INVALID, 1.0, 0.0, f"current plan is no longer valid: {exc}"))

    def keep(*reasons: str) -> Decision:
        return Decision("keep", current_plan, tuple(triggers), reasons, cost_before, cost_before)

    if not triggers:
        return keep("no trigger fired")

    urgent = cost_before is None or (privacy_fired and thresholds.privacy_bypasses_cooldown)
    if last_reconfig_s is not None and not urgent:
        elapsed_s = now_s - last_reconfig_s
        if elapsed_s < thresholds.cooldown_s:
            return keep(
                f"cooldown: {elapsed_s:.1f} s since the last reconfiguration, "
                f"{thresholds.cooldown_s:.1f} s required"
            )

    reasons: list[str] = []

    def acceptable(result: PlanResult, label: str) -> bool:
        try:
            validate_plan(result.plan, num_layers, nodes)
        except PlanError as exc:  # defence in depth: the planner should never do this
            reasons.append(f"{label}: planner returned an invalid plan ({exc})")
            return False
        if privacy_fired and any(p.node_id not in trusted for p in result.plan.partitions):
            reasons.append(f"{label}: no assignment keeps the privacy=high route on trusted nodes")
            return False
        if not _improves(result.cost, cost_before, thresholds.min_relative_gain):
            before = "invalid" if cost_before is None else f"{cost_before.total:.3f}"
            reasons.append(
                f"{label}: best cost {result.cost.total:.3f} does not beat current {before} "
                f"by {thresholds.min_relative_gain:.0%}"
            )
            return False
        return True

    # Placement migration first (same boundaries), then split revision.
    if current_plan.boundaries[-1:] == (num_layers,):
        try:
            redistributed = plan_redistribute(
                current_plan.boundaries, nodes, links, weights, current_plan, workload=planning
            )
        except PlanError as exc:
            reasons.append(f"redistribute: {exc}")
        else:
            if acceptable(redistributed, "redistribute"):
                reasons.append("redistribute: same boundaries, lower cost")
                return Decision(
                    "redistribute",
                    redistributed.plan,
                    tuple(triggers),
                    tuple(reasons),
                    cost_before,
                    redistributed.cost,
                    redistributed.exact,
                )
    else:
        reasons.append("redistribute: the current boundaries do not cover the model")
    try:
        resplit = plan_optimal(
            num_layers,
            nodes,
            links,
            weights,
            current_plan if current_plan.boundaries[-1:] == (num_layers,) else None,
            max_partitions=max_partitions,
            workload=planning,
        )
    except PlanError as exc:
        reasons.append(f"resplit: {exc}")
    else:
        if acceptable(resplit, "resplit"):
            reasons.append("resplit: new boundaries, lower cost")
            return Decision(
                "resplit",
                resplit.plan,
                tuple(triggers),
                tuple(reasons),
                cost_before,
                resplit.cost,
                resplit.exact,
            )
    return keep(*reasons, "keep: no valid plan improves on the current one")


__all__ = [
    "BANDWIDTH",
    "LATENCY",
    "PLAN_INVALID",
    "PRIVACY",
    "UTILISATION",
    "Decision",
    "Ewma",
    "MonitoringSnapshot",
    "Trigger",
    "TriggerThresholds",
    "apply_snapshot",
    "decide",
    "evaluate_triggers",
    "ewma",
    "node_utilisation",
]
