"""Split planner speed: exact plan_optimal on 32-layer x 16-node instances.

Instances are seeded and synthetic: a 32-layer model of ~200 MB per layer (fp16 weights of
a ~3B-parameter model, 16 MB of KV budget per layer), 16 nodes of which 3 are trusted, each
with 1-8 GB for the model, 0.2-3 ms per layer per decoded token (+/-20 % per layer), 0-90 %
background utilisation, full-mesh links of 50-1000 Mbps and 0.5-10 ms RTT, and a 100 Mbps
gateway link to every node. That memory range makes most optimal plans 2-7 partitions.

Figures (milliseconds of wall time, pure Python + numpy, one core):

* ``split.planner_ms_32x16``: median over repetitions on one fixed instance (the target
  is <= 50 ms), with ``split.planner_states_32x16`` search states it expanded;
* ``..._median_over_instances`` / ``..._max_over_instances`` /
  ``split.planner_exact_share_32x16``: across seeded instances, the spread and the share
  proven optimal within the default search budget;
* ``split.redistribute_ms_32x16``: plan_redistribute for the optimal plan's boundaries;
* ``split.planner_scarce_*``: instances where nodes hold only 2-5 layers each, so nearly
  every node must take a slice; the search there is travelling-salesman sized and the
  figures show how often the default budget still proves optimality and what it costs.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time

from inference.planner import CLIENT, Link, NodeProfile, plan_optimal, plan_redistribute

NUM_LAYERS = 32
NUM_NODES = 16
NUM_TRUSTED = 3
LAYER_BYTES = 200 * 2**20
KV_BYTES = 16 * 2**20


def instance(
    seed: int, *, memory_layers: tuple[float, float] | None = None
) -> tuple[list[NodeProfile], list[Link]]:
    """Return a seeded random 32-layer x 16-node instance (see the module docstring)."""
    rng = random.Random(seed)
    nodes = []
    for i in range(NUM_NODES):
        speed_ms = rng.uniform(0.2, 3.0)
        if memory_layers is None:
            memory_bytes = int(rng.uniform(1, 8) * 2**30)
        else:
            memory_bytes = int(rng.uniform(*memory_layers) * (LAYER_BYTES + KV_BYTES))
        nodes.append(
            NodeProfile(
                node_id=f"n{i:02d}",
                trusted=i < NUM_TRUSTED,
                memory_bytes=memory_bytes,
                utilisation=rng.uniform(0.0, 0.9),
                prefill_ms_per_layer=[speed_ms * rng.uniform(0.8, 1.2) for _ in range(NUM_LAYERS)],
                decode_ms_per_layer=[speed_ms * rng.uniform(0.8, 1.2) for _ in range(NUM_LAYERS)],
                layer_weight_bytes=[LAYER_BYTES] * NUM_LAYERS,
                layer_kv_bytes=[KV_BYTES] * NUM_LAYERS,
            )
        )
    links = [
        Link(a.node_id, b.node_id, rng.uniform(50, 1000), rng.uniform(0.5, 10))
        for a, b in itertools.combinations(nodes, 2)
    ]
    links += [Link(CLIENT, n.node_id, 100.0, 1.0) for n in nodes]
    return nodes, links


def _timed_ms(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - started) * 1e3, result


def run(quick: bool = False) -> dict[str, float | int | bool | str]:
    repetitions = 5 if quick else 15
    seeds = range(10 if quick else 40)
    scarce_seeds = range(2 if quick else 6)

    nodes, links = instance(0)
    plan_optimal(NUM_LAYERS, nodes, links)  # warm numpy's code paths
    fixed = [_timed_ms(plan_optimal, NUM_LAYERS, nodes, links) for _ in range(repetitions)]
    result = fixed[0][1]
    redistribute = [_timed_ms(plan_redistribute, result.plan, nodes, links)[0] for _ in range(repetitions)]

    spread, exact = [], 0
    for seed in seeds:
        seed_nodes, seed_links = instance(1000 + seed)
        elapsed_ms, seed_result = _timed_ms(plan_optimal, NUM_LAYERS, seed_nodes, seed_links)
        spread.append(elapsed_ms)
        exact += seed_result.exact

    scarce, scarce_exact = [], 0
    for seed in scarce_seeds:
        seed_nodes, seed_links = instance(2000 + seed, memory_layers=(2, 5))
        elapsed_ms, seed_result = _timed_ms(plan_optimal, NUM_LAYERS, seed_nodes, seed_links)
        scarce.append(elapsed_ms)
        scarce_exact += seed_result.exact

    return {
        "split.planner_ms_32x16": round(statistics.median(ms for ms, _ in fixed), 2),
        "split.planner_states_32x16": result.nodes_expanded,
        "split.planner_partitions_32x16": len(result.plan.partitions),
        "split.planner_ms_32x16_median_over_instances": round(statistics.median(spread), 2),
        "split.planner_ms_32x16_max_over_instances": round(max(spread), 2),
        "split.planner_exact_share_32x16": round(exact / len(spread), 3),
        "split.redistribute_ms_32x16": round(statistics.median(redistribute), 2),
        "split.planner_scarce_ms_median": round(statistics.median(scarce), 1),
        "split.planner_scarce_exact_share": round(scarce_exact / len(scarce), 3),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key} = {value}")
