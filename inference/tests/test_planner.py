"""Split planner: exactness against brute force, constraints, costs and malformed plans."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from inference import planner
from inference.planner import (
    CLIENT,
    Link,
    NodeProfile,
    Partition,
    Plan,
    PlanError,
    PlannerWeights,
    Workload,
    plan_cost,
    plan_optimal,
    plan_redistribute,
    route_crosses_untrusted,
    validate_plan,
)

MB = 1_000_000


def node(
    node_id: str,
    *,
    trusted: bool,
    layers: int = 8,
    ms: float = 1.0,
    memory_layers: float = 100,
    utilisation: float = 0.0,
    layer_bytes: int = 100 * MB,
) -> NodeProfile:
    return NodeProfile.uniform(
        node_id,
        trusted=trusted,
        memory_bytes=int(memory_layers * layer_bytes),
        num_layers=layers,
        decode_ms_per_layer=ms,
        weight_bytes_per_layer=layer_bytes,
        utilisation=utilisation,
    )


def mesh(nodes: list[NodeProfile], bandwidth_mbps: float = 1000.0, rtt_ms: float = 1.0) -> list[Link]:
    return [Link(a.node_id, b.node_id, bandwidth_mbps, rtt_ms) for a, b in itertools.combinations(nodes, 2)]


def brute_force(
    num_layers: int,
    nodes: list[NodeProfile],
    links: list[Link],
    weights: PlannerWeights,
    current_plan: Plan | None,
    workload: Workload,
    *,
    max_partitions: int | None = None,
    boundaries: list[int] | None = None,
) -> float:
    """Return the cheapest total over every contiguous split and injective assignment."""
    if boundaries is not None:
        splits = [boundaries]
    else:
        splits = [
            [0, *cuts, num_layers]
            for r in range(num_layers)
            for cuts in itertools.combinations(range(1, num_layers), r)
        ]
    best = math.inf
    for cut in splits:
        parts = len(cut) - 1
        if max_partitions is not None and parts > max_partitions:
            continue
        for assignment in itertools.permutations([n.node_id for n in nodes], parts):
            plan = Plan.from_boundaries(cut, assignment)
            try:
                total = plan_cost(plan, nodes, links, weights, current_plan, workload=workload).total
            except PlanError:
                continue
            best = min(best, total)
    return best


def random_instance(rng: random.Random) -> tuple:
    num_layers, num_nodes = rng.randint(1, 6), rng.randint(1, 4)
    nodes = [
        NodeProfile(
            node_id=f"n{i}",
            trusted=rng.random() < 0.5,
            memory_bytes=rng.randint(2, 3 * num_layers) * 100,
            utilisation=rng.choice([0.0, rng.random()]),
            prefill_ms_per_layer=[rng.uniform(0.1, 5) for _ in range(num_layers)],
            decode_ms_per_layer=[rng.uniform(0.1, 5) for _ in range(num_layers)],
            layer_weight_bytes=[rng.randint(50, 200) for _ in range(num_layers)],
            layer_kv_bytes=[rng.randint(0, 50) for _ in range(num_layers)] if rng.random() < 0.5 else [],
        )
        for i in range(num_nodes)
    ]
    # Some node pairs have no link, so some orders are impossible.
    links = [
        Link(a.node_id, b.node_id, rng.uniform(1, 1000), rng.uniform(0, 5))
        for a, b in itertools.combinations(nodes, 2)
        if rng.random() < 0.85
    ]
    links += [
        Link(CLIENT, n.node_id, rng.uniform(1, 100), rng.uniform(0, 3)) for n in nodes if rng.random() < 0.5
    ]
    weights = PlannerWeights(
        alpha=rng.uniform(0.5, 2),
        beta=rng.uniform(0, 20),
        gamma=rng.choice([0.0, 5.0, math.inf]),
        migration=rng.choice([0.0, 0.5, 50.0]),
        load_bandwidth_mbps=rng.uniform(1, 10),
    )
    workload = Workload(
        objective=rng.choice(["decode", "prefill"]),
        prompt_tokens=rng.randint(1, 20),
        activation_bytes_per_token=rng.randint(0, 5000),
        privacy_high=rng.random() < 0.5,
    )
    current = None
    if rng.random() < 0.5:
        cuts = sorted(rng.sample(range(1, num_layers), rng.randint(0, min(num_nodes, num_layers) - 1)))
        bounds = [0, *cuts, num_layers]
        current = Plan.from_boundaries(bounds, rng.sample([n.node_id for n in nodes], len(bounds) - 1))
    max_partitions = rng.choice([None, None, 1, 2, 3])
    return num_layers, nodes, links, weights, workload, current, max_partitions


def same_cost(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-7 * max(1.0, abs(b))


@pytest.mark.parametrize("plain_budget", [planner._BranchAndBound.PLAIN_BUDGET, 1])
def test_planner_matches_brute_force_on_random_small_instances(monkeypatch, plain_budget):
    # plain_budget=1 forces every instance through the node-pricing stage of the search.
    monkeypatch.setattr(planner._BranchAndBound, "PLAIN_BUDGET", plain_budget)
    rng = random.Random(20240611)
    feasible = 0
    for _ in range(250):
        num_layers, nodes, links, weights, workload, current, max_partitions = random_instance(rng)
        expected = brute_force(
            num_layers, nodes, links, weights, current, workload, max_partitions=max_partitions
        )
        try:
            result = plan_optimal(
                num_layers, nodes, links, weights, current, max_partitions=max_partitions, workload=workload
            )
        except PlanError:
            assert expected == math.inf
            continue
        feasible += 1
        assert result.exact
        assert same_cost(result.cost.total, expected), (result.plan, expected)
        validate_plan(result.plan, num_layers, nodes)
    # The generator must exercise both outcomes.
    assert 100 <= feasible <= 240


def test_redistribute_matches_brute_force_over_assignments_with_fixed_boundaries():
    rng = random.Random(7)
    checked = 0
    while checked < 200:
        num_layers, nodes, links, weights, workload, current, _ = random_instance(rng)
        if current is None:
            continue
        checked += 1
        expected = brute_force(
            num_layers, nodes, links, weights, current, workload, boundaries=list(current.boundaries)
        )
        try:
            result = plan_redistribute(current, nodes, links, weights, workload=workload)
        except PlanError:
            assert expected == math.inf
            continue
        assert result.plan.boundaries == current.boundaries
        assert same_cost(result.cost.total, expected)


def test_planner_never_puts_first_or_last_partition_on_an_untrusted_node_even_when_it_is_far_faster():
    # Given two slow trusted nodes and an untrusted node a hundred times faster
    nodes = [
        node("t1", trusted=True, ms=10.0),
        node("t2", trusted=True, ms=10.0),
        node("fast", trusted=False, ms=0.1),
    ]
    # When planning
    result = plan_optimal(8, nodes, mesh(nodes))
    # Then the embeddings and the LM head stay on trusted nodes, one layer each,
    # and everything in between runs on the fast node.
    assert result.plan.boundaries == (0, 1, 7, 8)
    assert result.plan.node_ids[1] == "fast"
    assert set(result.plan.node_ids[::2]) == {"t1", "t2"}
    assert route_crosses_untrusted(result.plan, nodes)


def test_a_single_trusted_node_runs_the_whole_model_because_p1_and_pk_need_distinct_trusted_nodes():
    nodes = [node("t1", trusted=True, ms=10.0), node("fast", trusted=False, ms=0.1)]
    result = plan_optimal(8, nodes, mesh(nodes))
    assert result.plan == Plan((Partition(0, 8, "t1"),))


def test_planning_without_any_trusted_node_is_refused():
    nodes = [node("u1", trusted=False), node("u2", trusted=False)]
    with pytest.raises(PlanError, match="no trusted node"):
        plan_optimal(8, nodes, mesh(nodes))


def test_planning_when_nothing_fits_in_memory_is_refused():
    nodes = [node("t1", trusted=True, memory_layers=3), node("t2", trusted=True, memory_layers=3)]
    with pytest.raises(PlanError, match="infeasible"):
        plan_optimal(8, nodes, mesh(nodes))


def test_capacity_forces_a_split_and_each_node_holds_no_more_than_its_memory():
    # Given 8 layers and nodes that hold 3, 3 and 4 layers: all three are needed.
    nodes = [
        node("t1", trusted=True, memory_layers=3),
        node("t2", trusted=True, memory_layers=3),
        node("u1", trusted=False, memory_layers=4),
    ]
    result = plan_optimal(8, nodes, mesh(nodes))
    assert len(result.plan.partitions) == 3
    assert result.plan.node_ids[1] == "u1"
    for part in result.plan.partitions:
        layers = part.end_layer_exclusive - part.start_layer
        memory = next(n.memory_bytes for n in nodes if n.node_id == part.node_id)
        assert layers * 100 * MB <= memory


def test_each_node_runs_at_most_one_partition_even_when_reusing_the_fastest_would_be_cheaper():
    # Given a fast node that only fits 3 layers and a slower one that fits 4: cheaper
    # "plans" would come back to the fast node for a second slice, which eq. 4 forbids.
    nodes = [
        node("t1", trusted=True, ms=5.0, memory_layers=1),
        node("t2", trusted=True, ms=5.0, memory_layers=1),
        node("fast", trusted=False, ms=0.5, memory_layers=3),
        node("mid", trusted=False, ms=1.0, memory_layers=4),
        node("slow", trusted=False, ms=3.0, memory_layers=8),
    ]
    links = mesh(nodes)
    result = plan_optimal(8, nodes, links)
    assert len(set(result.plan.node_ids)) == len(result.plan.node_ids)
    expected = brute_force(8, nodes, links, PlannerWeights(), None, Workload())
    assert same_cost(result.cost.total, expected)
    assert result.plan.node_ids[1:3] in (("fast", "mid"), ("mid", "fast"))


def test_migration_cost_keeps_the_current_plan_when_the_gain_is_tiny():
    # Given a current plan on u1 and an idle u2 that is 0.1 % faster
    nodes = [
        node("t1", trusted=True, ms=5.0),
        node("t2", trusted=True, ms=5.0),
        node("u1", trusted=False, ms=1.0),
        node("u2", trusted=False, ms=0.999),
    ]
    links = mesh(nodes)
    current = Plan.from_boundaries([0, 1, 7, 8], ["t1", "u1", "t2"])
    # When moving 600 MB of weights costs more than the 0.006 ms per token it saves
    kept = plan_optimal(8, nodes, links, PlannerWeights(), current)
    # Then the current plan stays; without a migration cost the faster node wins.
    assert kept.plan == current
    assert kept.cost.migration_ms == 0.0
    moved = plan_optimal(8, nodes, links, PlannerWeights(migration=0.0), current)
    assert moved.plan.node_ids == ("t1", "u2", "t2")
    assert moved.cost.migration_ms == pytest.approx(600 * MB * 8 / (1000 * 1e3))


def test_privacy_high_workload_keeps_every_partition_on_trusted_nodes_when_they_fit():
    nodes = [
        node("t1", trusted=True, ms=2.0),
        node("t2", trusted=True, ms=2.0),
        node("fast", trusted=False, ms=0.1),
    ]
    links = mesh(nodes)
    normal = plan_optimal(8, nodes, links)
    private = plan_optimal(8, nodes, links, privacy_high=True)
    assert "fast" in normal.plan.node_ids
    assert not route_crosses_untrusted(private.plan, nodes)
    assert private.cost.privacy_penalty == 0.0
    # The same plan scored for a privacy=high request pays gamma per untrusted partition.
    assert plan_cost(normal.plan, nodes, links, privacy_high=True).privacy_penalty == 1.0


def test_plan_cost_breaks_down_latency_imbalance_and_migration():
    # Given t1 (idle, 1 ms/layer) and t2 (half busy, 2 ms/layer) joined by an 8 Mbps,
    # 2 ms link, and 1000-byte activations: a hop takes 1000*8/8000 + 2 = 3 ms.
    t1 = NodeProfile.uniform(
        "t1",
        trusted=True,
        memory_bytes=1000,
        num_layers=4,
        decode_ms_per_layer=1.0,
        prefill_ms_per_layer=1.0,
        weight_bytes_per_layer=100,
    )
    t2 = NodeProfile.uniform(
        "t2",
        trusted=True,
        memory_bytes=400,
        num_layers=4,
        decode_ms_per_layer=2.0,
        prefill_ms_per_layer=2.0,
        weight_bytes_per_layer=100,
        utilisation=0.5,
    )
    links = [Link("t1", "t2", bandwidth_mbps=8.0, rtt_ms=2.0)]
    weights = PlannerWeights(alpha=1.0, beta=10.0, migration=0.5, load_bandwidth_mbps=1.6)
    plan = Plan.from_boundaries([0, 2, 4], ["t1", "t2"])
    current = Plan.from_boundaries([0, 4], ["t1"])
    workload = Workload(activation_bytes_per_token=1000)

    cost = plan_cost(plan, [t1, t2], links, weights, current, workload=workload)

    # 2 layers x 1 ms + 3 ms hop + 2 layers x 2 ms / (1 - 0.5) headroom
    assert cost.latency_ms == pytest.approx(13.0)
    # t1 holds 20 % of its memory; t2 is 50 % busy and holds 50 % of its memory
    assert cost.imbalance == pytest.approx(0.2**2 + 0.5**2)
    # t2 must load 200 bytes it did not hold, at 1.6 Mbps: 1 ms
    assert cost.migration_ms == pytest.approx(1.0)
    assert cost.privacy_penalty == 0.0
    assert cost.total == pytest.approx(13.0 + 10 * 0.29 + 0.5 * 1.0)

    prefill = plan_cost(
        plan,
        [t1, t2],
        links,
        weights,
        workload=Workload(objective="prefill", prompt_tokens=10, activation_bytes_per_token=1000),
    )
    # 10 tokens: 20 ms + (10 ms transfer + 2 ms rtt) + 80 ms
    assert prefill.latency_ms == pytest.approx(112.0)

    with_client = plan_cost(
        plan, [t1, t2], [*links, Link(CLIENT, "t1", 8.0, 1.0)], weights, workload=workload
    )
    # 8 bytes of token id to t1 over 8 Mbps plus 1 ms rtt; t2 has no client link.
    assert with_client.latency_ms == pytest.approx(13.0 + 8 * 8 / 8000 + 1.0)


def test_planner_result_is_re_scored_with_plan_cost():
    nodes = [node("t1", trusted=True), node("t2", trusted=True), node("u1", trusted=False, ms=0.2)]
    links = mesh(nodes)
    result = plan_optimal(8, nodes, links)
    assert result.cost == plan_cost(result.plan, nodes, links)


def test_max_partitions_limits_the_number_of_partitions():
    # Given trusted nodes that hold 5 of 8 layers each and a fast untrusted node
    nodes = [
        node("t1", trusted=True, ms=5, memory_layers=5),
        node("t2", trusted=True, ms=5, memory_layers=5),
        node("u1", trusted=False, ms=0.1),
    ]
    links = mesh(nodes)
    assert plan_optimal(8, nodes, links).plan.boundaries == (0, 1, 7, 8)
    # With at most two partitions the fast node cannot be reached (P1 and PK are trusted).
    limited = plan_optimal(8, nodes, links, max_partitions=2)
    assert set(limited.plan.node_ids) == {"t1", "t2"}
    assert limited.plan.boundaries in ((0, 3, 8), (0, 4, 8), (0, 5, 8))


def test_search_budget_returns_a_valid_plan_marked_inexact():
    # Given 16 nodes that each hold only 2-5 of 32 layers: nearly every node must take a
    # slice, and proving the best order is a travelling-salesman-sized search.
    rng = random.Random(0)
    nodes = [
        NodeProfile.uniform(
            f"n{i}",
            trusted=i < 3,
            memory_bytes=int(rng.uniform(2, 5) * 100 * MB),
            num_layers=32,
            decode_ms_per_layer=rng.uniform(0.3, 2.0),
            weight_bytes_per_layer=100 * MB,
            utilisation=rng.uniform(0, 0.5),
        )
        for i in range(16)
    ]
    links = [
        Link(a.node_id, b.node_id, rng.uniform(50, 1000), rng.uniform(0.5, 10))
        for a, b in itertools.combinations(nodes, 2)
    ]
    result = plan_optimal(32, nodes, links, max_states=300)
    assert result.exact is False
    assert result.nodes_expanded == 301
    validate_plan(result.plan, 32, nodes)
    assert len(result.plan.partitions) >= 7


def test_plan_round_trips_through_json():
    plan = Plan.from_boundaries([0, 3, 8], ["t1", "t2"])
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    nodes = [node("t1", trusted=True), node("t2", trusted=True)]
    result = plan_optimal(8, nodes, mesh(nodes))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["exact"] is True
    assert Plan.from_dict(data["plan"]) == result.plan
    assert NodeProfile.from_dict(json.loads(json.dumps(nodes[0].to_dict()))) == nodes[0]


NODES = [node("t1", trusted=True), node("t2", trusted=True), node("u1", trusted=False)]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Plan(()), "plan has no partitions"),
        (Plan.from_boundaries([0, 3, 3, 8], ["t1", "u1", "t2"]), r"P2 \[3, 3\) on 'u1' is empty"),
        (Plan((Partition(1, 8, "t1"),)), "must start at layer 0"),
        (Plan((Partition(0, 3, "t1"), Partition(4, 8, "t2"))), "gap: layers 3-3 between P1 and P2"),
        (Plan((Partition(0, 5, "t1"), Partition(4, 8, "t2"))), "overlap: P1 and P2 both hold layers 4-4"),
        (Plan.from_boundaries([0, 6], ["t1"]), "covers layers 0-5 but the model has 8 layers"),
        (Plan.from_boundaries([0, 4, 8], ["t1", "ghost"]), "unknown node 'ghost'"),
        (Plan.from_boundaries([0, 2, 4, 8], ["t1", "u1", "t1"]), "'t1' is used twice"),
        (
            Plan.from_boundaries([0, 4, 8], ["u1", "t2"]),
            r"privacy: first partition \(layers 0-3, raw token embeddings\) must run on a trusted node",
        ),
        (
            Plan.from_boundaries([0, 4, 8], ["t1", "u1"]),
            r"privacy: last partition \(layers 4-7, LM head and sampling\) must run on a trusted node",
        ),
    ],
)
def test_malformed_plans_are_refused_with_a_clear_message(plan, message):
    with pytest.raises(PlanError, match=message):
        validate_plan(plan, 8, NODES)


def test_a_plan_exceeding_a_nodes_memory_is_refused():
    small = [node("t1", trusted=True, memory_layers=2), node("t2", trusted=True)]
    with pytest.raises(PlanError, match=r"capacity: node 't1' would hold layers 0-2 needing 300000000 bytes"):
        validate_plan(Plan.from_boundaries([0, 3, 8], ["t1", "t2"]), 8, small)


def test_plan_error_is_a_value_error():
    assert issubclass(PlanError, ValueError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "malformed plan"),
        ({"partitions": [{"start_layer": 0, "node_id": "t1"}]}, "malformed plan"),
        ({"partitions": [{"start_layer": "0", "end_layer_exclusive": 8, "node_id": "t1"}]}, "integers"),
    ],
)
def test_malformed_plan_dicts_are_refused(data, message):
    with pytest.raises(PlanError, match=message):
        Plan.from_dict(data)


def test_inconsistent_node_profiles_are_refused():
    short = NodeProfile.uniform(
        "t1", trusted=True, memory_bytes=10**9, num_layers=4, decode_ms_per_layer=1, weight_bytes_per_layer=1
    )
    with pytest.raises(PlanError, match="prefill_ms_per_layer has 4 entries, the model has 8 layers"):
        plan_optimal(8, [short], [])
    busy = node("t1", trusted=True, utilisation=1.5)
    with pytest.raises(PlanError, match="utilisation 1.5 is outside 0..1"):
        plan_optimal(8, [busy], [])
    with pytest.raises(PlanError, match="appears twice"):
        plan_optimal(8, [node("t1", trusted=True), node("t1", trusted=True)], [])


def test_redistribute_keeps_boundaries_and_moves_off_a_busy_node():
    nodes = [
        node("t1", trusted=True),
        node("t2", trusted=True),
        node("u1", trusted=False, utilisation=0.95),
        node("u2", trusted=False),
    ]
    current = Plan.from_boundaries([0, 1, 7, 8], ["t1", "u1", "t2"])
    result = plan_redistribute(current, nodes, mesh(nodes))
    assert result.plan.boundaries == (0, 1, 7, 8)
    assert result.plan.node_ids[1] == "u2"
    with pytest.raises(PlanError, match="boundaries must rise strictly"):
        plan_redistribute([0, 4, 4, 8], nodes, mesh(nodes))
