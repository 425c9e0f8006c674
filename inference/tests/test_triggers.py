"""Adaptive orchestrator: Table 3 triggers, cool-down, and keep / redistribute / resplit."""

from __future__ import annotations

import itertools
import json

import pytest

from inference.planner import Link, NodeProfile, Plan, validate_plan
from inference.triggers import (
    BANDWIDTH,
    LATENCY,
    PLAN_INVALID,
    PRIVACY,
    UTILISATION,
    Decision,
    Ewma,
    MonitoringSnapshot,
    TriggerThresholds,
    decide,
    evaluate_triggers,
    ewma,
    node_utilisation,
)

MB = 1_000_000
PLAN = Plan.from_boundaries([0, 1, 7, 8], ["t1", "u1", "t2"])


def node(node_id: str, *, trusted: bool, ms: float = 1.0, memory_layers: float = 100) -> NodeProfile:
    return NodeProfile.uniform(
        node_id,
        trusted=trusted,
        memory_bytes=int(memory_layers * 100 * MB),
        num_layers=8,
        decode_ms_per_layer=ms,
        weight_bytes_per_layer=100 * MB,
    )


def mesh(nodes: list[NodeProfile]) -> list[Link]:
    return [Link(a.node_id, b.node_id, 1000.0, 1.0) for a, b in itertools.combinations(nodes, 2)]


def names(snapshot: MonitoringSnapshot, **kwargs) -> list[str]:
    return [t.name for t in evaluate_triggers(snapshot, TriggerThresholds(), **kwargs)]


@pytest.mark.parametrize(
    ("latency_ms", "fires"), [(149.99, False), (150.0, False), (150.01, True), (400.0, True)]
)
def test_latency_trigger_fires_only_above_its_threshold(latency_ms, fires):
    assert (LATENCY in names(MonitoringSnapshot(latency_ewma_ms=latency_ms))) is fires


@pytest.mark.parametrize(
    ("utilisation", "fires"), [(0.84, False), (0.85, False), (0.8501, True), (1.0, True)]
)
def test_utilisation_trigger_fires_only_above_its_threshold(utilisation, fires):
    snapshot = MonitoringSnapshot(node_utilisation={"a": 0.1, "b": utilisation})
    assert (UTILISATION in names(snapshot)) is fires


@pytest.mark.parametrize(
    ("bandwidth_mbps", "fires"), [(50.01, False), (50.0, False), (49.99, True), (0.0, True)]
)
def test_bandwidth_trigger_fires_only_below_its_threshold(bandwidth_mbps, fires):
    snapshot = MonitoringSnapshot(link_bandwidth_mbps={("a", "b"): bandwidth_mbps, ("b", "c"): 900.0})
    assert (BANDWIDTH in names(snapshot)) is fires


def test_fired_trigger_reports_observed_value_threshold_and_culprit():
    (trigger,) = evaluate_triggers(
        MonitoringSnapshot(node_utilisation={"a": 0.2, "b": 0.93}), TriggerThresholds()
    )
    assert (trigger.name, trigger.observed, trigger.threshold) == (UTILISATION, 0.93, 0.85)
    assert "'b'" in trigger.detail


def test_utilisation_and_bandwidth_look_only_at_the_plans_nodes_and_links_when_a_plan_is_given():
    snapshot = MonitoringSnapshot(
        node_utilisation={"t1": 0.2, "idle-elsewhere": 0.99},
        link_bandwidth_mbps={("u1", "t1"): 500.0, ("t1", "t2"): 1.0},  # t1-t2 is not a plan hop
    )
    assert names(snapshot) == [UTILISATION, BANDWIDTH]
    assert names(snapshot, current_plan=PLAN) == []
    snapshot = MonitoringSnapshot(link_bandwidth_mbps={("u1", "t1"): 10.0})
    assert names(snapshot, current_plan=PLAN) == [BANDWIDTH]


def test_privacy_trigger_fires_when_a_privacy_high_request_would_cross_an_untrusted_node():
    request = MonitoringSnapshot(privacy_high_request=True)
    trusted = {"t1", "t2"}
    assert names(request, current_plan=PLAN, trusted_node_ids=trusted) == [PRIVACY]
    all_trusted = Plan.from_boundaries([0, 4, 8], ["t1", "t2"])
    assert names(request, current_plan=all_trusted, trusted_node_ids=trusted) == []
    assert names(MonitoringSnapshot(), current_plan=PLAN, trusted_node_ids=trusted) == []


def test_ewma_starts_at_the_first_sample_and_weights_the_newest_by_alpha():
    average = Ewma(alpha=0.3)
    assert average.update(100.0) == 100.0
    assert average.update(200.0) == pytest.approx(130.0)
    assert ewma([100.0, 200.0, 200.0], alpha=0.3) == pytest.approx(151.0)
    assert ewma([]) is None
    with pytest.raises(ValueError):
        Ewma(alpha=0.0)


def test_node_utilisation_is_the_larger_of_gpu_and_cpu():
    assert node_utilisation({"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.7, "c": 0.4}) == {
        "a": 0.9,
        "b": 0.7,
        "c": 0.4,
    }


# ------------------------------------------------------------------------- decide

NODES = [
    node("t1", trusted=True, ms=2.0),
    node("t2", trusted=True, ms=2.0),
    node("u1", trusted=False),
    node("u2", trusted=False),
]
LINKS = mesh(NODES)
OVERLOADED_U1 = MonitoringSnapshot(node_utilisation={"t1": 0.1, "u1": 0.95, "t2": 0.1, "u2": 0.05})


def run(snapshot: MonitoringSnapshot, *, now_s: float = 1000.0, last_reconfig_s: float | None = None, **kw):
    kw.setdefault("nodes", NODES)
    kw.setdefault("links", LINKS)
    kw.setdefault("current_plan", PLAN)
    return decide(snapshot, TriggerThresholds(), now_s=now_s, last_reconfig_s=last_reconfig_s, **kw)


def test_no_trigger_keeps_the_current_plan():
    decision = run(MonitoringSnapshot(latency_ewma_ms=100.0, node_utilisation={"u1": 0.5}))
    assert decision.action == "keep"
    assert decision.plan == PLAN
    assert decision.reasons == ("no trigger fired",)


def test_overloaded_node_is_redistributed_before_any_resplit():
    # Given u1 at 95 % utilisation and an idle u2 of the same speed
    decision = run(OVERLOADED_U1)
    # Then the orchestrator moves u1's partition to u2 and keeps the boundaries.
    assert decision.action == "redistribute"
    assert decision.plan == Plan.from_boundaries([0, 1, 7, 8], ["t1", "u2", "t2"])
    assert [t.name for t in decision.triggers] == [UTILISATION]
    assert decision.cost_after.total < decision.cost_before.total


def test_cooldown_holds_the_plan_for_30_seconds_and_acts_after():
    within = run(OVERLOADED_U1, now_s=129.9, last_reconfig_s=100.0)
    assert within.action == "keep"
    assert within.reasons[0].startswith("cooldown: 29.9 s since the last reconfiguration")
    assert [t.name for t in within.triggers] == [UTILISATION]
    after = run(OVERLOADED_U1, now_s=130.0, last_reconfig_s=100.0)
    assert after.action == "redistribute"


def test_resplit_when_no_assignment_of_the_current_boundaries_helps():
    # Given only three nodes, so the three current partitions cannot change nodes,
    # and the only untrusted node overloaded (the trusted ones are only 2x slower)
    nodes = NODES[:3]
    decision = run(OVERLOADED_U1, nodes=nodes, links=mesh(nodes))
    # Then the planner runs the whole model on one trusted node.
    assert decision.action == "resplit"
    assert decision.plan.boundaries == (0, 8)
    assert decision.plan.node_ids in (("t1",), ("t2",))
    assert decision.reasons[0].startswith("redistribute: best cost")
    assert decision.reasons[-1] == "resplit: new boundaries, lower cost"


def test_privacy_trigger_moves_the_route_onto_trusted_nodes_even_within_the_cooldown():
    snapshot = MonitoringSnapshot(privacy_high_request=True)
    decision = run(snapshot, now_s=105.0, last_reconfig_s=100.0)
    assert [t.name for t in decision.triggers] == [PRIVACY]
    assert decision.action == "resplit"
    assert set(decision.plan.node_ids) <= {"t1", "t2"}
    validate_plan(decision.plan, 8, NODES)


def test_privacy_trigger_is_kept_when_no_all_trusted_plan_fits():
    # Given trusted nodes that together hold only 4 of 8 layers
    nodes = [
        node("t1", trusted=True, memory_layers=2),
        node("t2", trusted=True, memory_layers=2),
        node("u1", trusted=False),
        node("u2", trusted=False),
    ]
    plan = Plan.from_boundaries([0, 1, 7, 8], ["t1", "u1", "t2"])
    decision = run(
        MonitoringSnapshot(privacy_high_request=True), nodes=nodes, links=mesh(nodes), current_plan=plan
    )
    assert decision.action == "keep"
    assert "redistribute: no assignment keeps the privacy=high route on trusted nodes" in decision.reasons
    assert "resplit: no assignment keeps the privacy=high route on trusted nodes" in decision.reasons


def test_orchestrator_never_proposes_untrusted_first_or_last_partitions():
    # Given untrusted nodes far faster than the overloaded trusted ones
    nodes = [
        node("t1", trusted=True, ms=50.0),
        node("t2", trusted=True, ms=50.0),
        node("u1", trusted=False, ms=0.01),
        node("u2", trusted=False, ms=0.01),
    ]
    snapshot = MonitoringSnapshot(latency_ewma_ms=900.0, node_utilisation={"t1": 0.99, "t2": 0.99})
    plan = Plan.from_boundaries([0, 8], ["t1"])
    decision = run(snapshot, nodes=nodes, links=mesh(nodes), current_plan=plan)
    assert decision.action == "resplit"
    first, last = decision.plan.partitions[0], decision.plan.partitions[-1]
    assert {first.node_id, last.node_id} == {"t1", "t2"}
    assert first.end_layer_exclusive == 1 and last.start_layer == 7


def test_a_tiny_improvement_does_not_reconfigure():
    # Given a latency trigger but a plan that is already the best
    decision = run(MonitoringSnapshot(latency_ewma_ms=500.0))
    assert decision.action == "keep"
    assert decision.reasons[-1] == "keep: no valid plan improves on the current one"
    assert decision.plan == PLAN


def test_a_plan_on_a_vanished_node_is_replaced_even_within_the_cooldown():
    survivors = [n for n in NODES if n.node_id != "u1"]
    decision = run(
        MonitoringSnapshot(), now_s=101.0, last_reconfig_s=100.0, nodes=survivors, links=mesh(survivors)
    )
    assert [t.name for t in decision.triggers] == [PLAN_INVALID]
    assert decision.cost_before is None
    assert decision.action == "redistribute"
    assert decision.plan == Plan.from_boundaries([0, 1, 7, 8], ["t1", "u2", "t2"])


def test_decision_round_trips_through_json():
    decision = run(OVERLOADED_U1)
    restored = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert restored == decision
    assert MonitoringSnapshot.from_dict(json.loads(json.dumps(OVERLOADED_U1.to_dict()))) == OVERLOADED_U1
