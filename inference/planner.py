"""Split revision: where to cut the model into partitions and which node runs each.

A transformer with ``L`` layers is cut into contiguous partitions P1..PK, each run by
one node. P1 also holds the token embeddings (it sees the raw prompt) and PK holds the
final norm, the LM head and sampling (it sees the generated tokens), so both are pinned
to trusted nodes (paper eq. 6 and 10). This module scores plans with the paper's
objective (eq. 3) plus a migration term, and finds the best one exactly.

Cost of a plan (all terms are additive over partitions, which is what makes the search
exact and fast):

* ``latency_ms`` -- one request's critical path for the chosen objective
  ("decode": one generated token through all layers; "prefill": ``prompt_tokens``
  tokens through all layers). Per partition: ``tokens * sum(ms per layer per token)``
  divided by the node's headroom ``max(1 - utilisation, min_headroom)`` (a node that
  is already 75 % busy runs our layers four times slower). Per hop (client -> P1,
  Pi -> Pi+1, PK -> client): ``bytes * 8 / bandwidth + rtt``. Token ids to P1 and the
  sampled token back from PK are tiny; activations between partitions are
  ``tokens * activation_bytes_per_token``. A hop to or from the client (gateway,
  node id ``CLIENT``) costs nothing when no such link is given.
* ``imbalance`` -- sum over *all* nodes of the squared load, where a node's load is its
  most-used resource: ``max(utilisation, bytes it holds for us / memory_bytes)``
  (``utilisation`` alone for nodes without a partition). Squares make concentrating
  the model on one node cost more than spreading it; the sum form decomposes per
  partition, so the dynamic programme stays exact (a max or a variance would not).
* ``privacy_penalty`` -- for a ``privacy_high`` workload, the number of partitions on
  untrusted nodes (intermediate activations of a privacy=high request should not leave
  trusted nodes; ``gamma`` sets how much that is worth, ``inf`` forbids it). Zero
  otherwise. P1 and PK on trusted nodes is a hard constraint, never a penalty.
* ``migration_ms`` -- time to load the weights each node does not already hold under
  the current plan, at ``load_bandwidth_mbps`` (zero when there is no current plan).

``total = alpha * latency_ms + beta * imbalance + gamma * privacy_penalty
+ migration * migration_ms``.

Search: a depth-first branch and bound over (next layer boundary, node), each node
used at most once (eq. 4). A partial plan is pruned when a lower bound on its best
completion cannot beat the best plan found so far; the bounds are admissible, so the
answer is the exact optimum (up to a 1e-9 relative float tolerance):

* a relaxation that lets nodes reappear (not twice in a row) but remembers which trusted
  node may still host PK, solved by a dynamic programme over (boundary, previous node,
  final trusted node), vectorised with numpy;
* when that is loose (a fast node whose memory fits only part of the model makes the
  relaxation "reuse" it), the same programme with Lagrangian node prices tuned by a few
  subgradient steps at the root;
* a memory check: the unused nodes must be able to hold the remaining layers.

With memory limits the problem contains a travelling-salesman path (one layer per node,
hop costs between nodes), so no exact method is fast on every instance. Typical 32-layer
x 16-node instances take a few dozen to a few hundred search states (tens of ms);
instances where almost every node must take a slice can need far more, so
``plan_optimal`` stops after ``max_states`` and returns the best plan found, flagged
``exact=False``. ``PlanResult.nodes_expanded`` reports the work done.

Pure Python + numpy; no Django, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

CLIENT = "client"
"""Node id of the gateway that sends token ids to P1 and receives tokens from PK."""

Objective = Literal["decode", "prefill"]
_OBJECTIVES = ("decode", "prefill")

# Relative tolerance under which two plan costs count as equal: the search does not
# chase improvements smaller than float rounding in its bounds.
_REL_TOL = 1e-9

# Search states plan_optimal may expand before it settles for the best plan found so
# far (PlanResult.exact = False). Typical 32-layer x 16-node instances need well under
# a thousand; a few hundred thousand arise only when memory is so scarce that nearly
# every node must take a slice, which makes the problem a travelling-salesman path.
DEFAULT_MAX_STATES = 20_000


class PlanError(ValueError):
    """A plan or planner input violates the model, capacity or privacy constraints."""


# --------------------------------------------------------------------------- inputs


def _as_tuple(values: Iterable[Any], cast: type) -> tuple[Any, ...]:
    return tuple(cast(v) for v in values)


@dataclass(frozen=True)
class NodeProfile:
    """What the capacity profiler knows about one worker node.

    Per-layer arrays have one entry per transformer layer, so heterogeneous layers (or
    a node that runs some layers quantised) are expressible. Fold the token embeddings
    into layer 0's entries and the final norm + LM head into layer L-1's: P1 always
    holds layer 0 and PK always holds layer L-1. ``layer_kv_bytes`` is the KV-cache
    budget each layer needs on this node (empty means none).
    """

    node_id: str
    trusted: bool
    memory_bytes: int
    utilisation: float
    prefill_ms_per_layer: tuple[float, ...]  # ms per layer per prompt token
    decode_ms_per_layer: tuple[float, ...]  # ms per layer per generated token
    layer_weight_bytes: tuple[int, ...]
    layer_kv_bytes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON) but store tuples so profiles stay hashable.
        object.__setattr__(self, "prefill_ms_per_layer", _as_tuple(self.prefill_ms_per_layer, float))
        object.__setattr__(self, "decode_ms_per_layer", _as_tuple(self.decode_ms_per_layer, float))
        object.__setattr__(self, "layer_weight_bytes", _as_tuple(self.layer_weight_bytes, int))
        object.__setattr__(self, "layer_kv_bytes", _as_tuple(self.layer_kv_bytes, int))

    @classmethod
    def uniform(
        cls,
        node_id: str,
        *,
        trusted: bool,
        memory_bytes: int,
        num_layers: int,
        decode_ms_per_layer: float,
        prefill_ms_per_layer: float | None = None,
        weight_bytes_per_layer: int,
        kv_bytes_per_layer: int = 0,
        utilisation: float = 0.0,
    ) -> NodeProfile:
        """Return a profile whose layers all cost and weigh the same."""
        prefill = decode_ms_per_layer if prefill_ms_per_layer is None else prefill_ms_per_layer
        return cls(
            node_id=node_id,
            trusted=trusted,
            memory_bytes=memory_bytes,
            utilisation=utilisation,
            prefill_ms_per_layer=(prefill,) * num_layers,
            decode_ms_per_layer=(decode_ms_per_layer,) * num_layers,
            layer_weight_bytes=(weight_bytes_per_layer,) * num_layers,
            layer_kv_bytes=(kv_bytes_per_layer,) * num_layers,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeProfile:
        """Build a profile from ``to_dict`` output."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Link:
    """A network link between two nodes (either direction), or a node and ``CLIENT``."""

    a: str
    b: str
    bandwidth_mbps: float
    rtt_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Link:
        """Build a link from ``to_dict`` output."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class PlannerWeights:
    """Weights of the objective (paper eq. 3) and the migration term.

    ``migration`` converts one-off loading time into per-token cost: 0.001 means a
    reconfiguration is paid back over about a thousand tokens. ``min_headroom`` bounds
    the slowdown of a saturated node (1 / 0.05 = 20x) so costs stay finite.
    """

    alpha: float = 1.0  # per ms of latency
    beta: float = 10.0  # per unit of sum-of-squared node load
    gamma: float = 1000.0  # per partition of a privacy=high workload on an untrusted node
    migration: float = 0.001  # per ms of weight loading
    load_bandwidth_mbps: float = 1000.0  # rate at which a node loads weights it lacks
    min_headroom: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannerWeights:
        """Build weights from ``to_dict`` output."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Workload:
    """The request shape the plan is optimised for."""

    objective: Objective = "decode"
    prompt_tokens: int = 128  # tokens per prefill (the "prefill" objective)
    activation_bytes_per_token: int = 4096  # hidden state crossing a boundary, e.g. 2048 x fp16
    token_id_bytes: int = 8
    privacy_high: bool = False

    @property
    def tokens(self) -> int:
        """Return how many tokens one request pushes through every layer."""
        return 1 if self.objective == "decode" else self.prompt_tokens

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workload:
        """Build a workload from ``to_dict`` output."""
        return _from_dict(cls, data)


# ---------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Partition:
    """Layers ``[start_layer, end_layer_exclusive)`` run on node ``node_id``."""

    start_layer: int
    end_layer_exclusive: int
    node_id: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """A split plan: partitions in pipeline order (P1 first)."""

    partitions: tuple[Partition, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(self.partitions))

    @classmethod
    def from_boundaries(cls, boundaries: Sequence[int], node_ids: Sequence[str]) -> Plan:
        """Return the plan cutting at ``boundaries`` (``[0, ..., L]``) onto ``node_ids``."""
        if len(boundaries) != len(node_ids) + 1:
            raise PlanError(
                f"{len(boundaries)} boundaries need {len(boundaries) - 1} node ids, got {len(node_ids)}"
            )
        return cls(
            tuple(
                Partition(int(boundaries[i]), int(boundaries[i + 1]), node_ids[i])
                for i in range(len(node_ids))
            )
        )

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Return the cut points, ``(0, ..., L)`` for a valid plan."""
        if not self.partitions:
            return ()
        return (self.partitions[0].start_layer,) + tuple(p.end_layer_exclusive for p in self.partitions)

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Return the node of each partition, in pipeline order."""
        return tuple(p.node_id for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"partitions": [p.to_dict() for p in self.partitions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Build a plan from ``to_dict`` output; raise ``PlanError`` if malformed."""
        try:
            raw = data["partitions"]
            parts = []
            for item in raw:
                start, end = item["start_layer"], item["end_layer_exclusive"]
                node_id = item["node_id"]
                if isinstance(start, bool) or isinstance(end, bool):
                    raise TypeError("layer index is a boolean")
                if not isinstance(start, int) or not isinstance(end, int):
                    raise TypeError("layer indices must be integers")
                if not isinstance(node_id, str):
                    raise TypeError("node_id must be a string")
                parts.append(Partition(start, end, node_id))
        except KeyError as exc:
            raise PlanError(f"malformed plan: missing key {exc!s}") from exc
        except TypeError as exc:
            raise PlanError(f"malformed plan: {exc!s}") from exc
        return cls(tuple(parts))


@dataclass(frozen=True)
class PlanCost:
    """Cost breakdown of one plan (see the module docstring for each term)."""

    latency_ms: float
    imbalance: float
    privacy_penalty: float
    migration_ms: float
    total: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (infinities become None)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanCost:
        """Build a breakdown from ``to_dict`` output."""
        return cls(**{k: math.inf if data[k] is None else float(data[k]) for k in _COST_KEYS})


_COST_KEYS = ("latency_ms", "imbalance", "privacy_penalty", "migration_ms", "total")


@dataclass(frozen=True)
class PlanResult:
    """The planner's answer: the plan, its cost, and how the search went."""

    plan: Plan
    cost: PlanCost
    exact: bool = True
    nodes_expanded: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "plan": self.plan.to_dict(),
            "cost": self.cost.to_dict(),
            "exact": self.exact,
            "nodes_expanded": self.nodes_expanded,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f for f in cls.__dataclass_fields__}
    unknown = set(data) - names
    if unknown:
        raise PlanError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    try:
        return cls(**dict(data))
    except TypeError as exc:
        raise PlanError(f"malformed {cls.__name__}: {exc!s}") from exc


# ------------------------------------------------------------------------ validation


def _check_inputs(num_layers: int, nodes: Sequence[NodeProfile], weights: PlannerWeights) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise PlanError(f"num_layers must be a positive integer, got {num_layers!r}")
    seen: set[str] = set()
    for node in nodes:
        if node.node_id in seen:
            raise PlanError(f"node id {node.node_id!r} appears twice")
        if node.node_id == CLIENT:
            raise PlanError(f"node id {CLIENT!r} is reserved for the gateway")
        seen.add(node.node_id)
        if not 0.0 <= node.utilisation <= 1.0:
            raise PlanError(f"node {node.node_id!r}: utilisation {node.utilisation} is outside 0..1")
        if node.memory_bytes < 0:
            raise PlanError(f"node {node.node_id!r}: negative memory_bytes")
        arrays = {
            "prefill_ms_per_layer": node.prefill_ms_per_layer,
            "decode_ms_per_layer": node.decode_ms_per_layer,
            "layer_weight_bytes": node.layer_weight_bytes,
        }
        if node.layer_kv_bytes:
            arrays["layer_kv_bytes"] = node.layer_kv_bytes
        for name, values in arrays.items():
            if len(values) != num_layers:
                raise PlanError(
                    f"node {node.node_id!r}: {name} has {len(values)} entries, "
                    f"the model has {num_layers} layers"
                )
            if any(v < 0 for v in values):
                raise PlanError(f"node {node.node_id!r}: {name} has a negative entry")
    if weights.load_bandwidth_mbps <= 0 or not 0 < weights.min_headroom <= 1:
        raise PlanError("load_bandwidth_mbps must be > 0 and min_headroom in (0, 1]")
    if min(weights.alpha, weights.beta, weights.gamma, weights.migration) < 0:
        raise PlanError("planner weights must be non-negative")


def _check_workload(workload: Workload) -> None:
    if workload.objective not in _OBJECTIVES:
        raise PlanError(f"objective must be one of {_OBJECTIVES}, got {workload.objective!r}")
    if workload.prompt_tokens < 1 or workload.activation_bytes_per_token < 0:
        raise PlanError("prompt_tokens must be >= 1 and activation_bytes_per_token >= 0")


def _partition_bytes(node: NodeProfile, start: int, end: int) -> int:
    held = sum(node.layer_weight_bytes[start:end])
    if node.layer_kv_bytes:
        held += sum(node.layer_kv_bytes[start:end])
    return held


def _layers_label(part: Partition) -> str:
    return f"layers {part.start_layer}-{part.end_layer_exclusive - 1}"


def validate_plan(plan: Plan, num_layers: int, nodes: Sequence[NodeProfile]) -> None:
    """Raise ``PlanError`` unless ``plan`` is a valid split of ``num_layers`` layers.

    Checks, in order: non-empty, contiguous cover of ``0..num_layers`` without gaps or
    overlaps, no empty partition, known nodes, each node used once (eq. 4), P1 and PK on
    trusted nodes (eq. 6/10), and each node's weights + KV within its memory (eq. 5).
    """
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise PlanError(f"num_layers must be a positive integer, got {num_layers!r}")
    parts = plan.partitions
    if not parts:
        raise PlanError("plan has no partitions")
    by_id = {n.node_id: n for n in nodes}
    for i, part in enumerate(parts, start=1):
        if part.end_layer_exclusive <= part.start_layer:
            raise PlanError(
                f"partition P{i} [{part.start_layer}, {part.end_layer_exclusive}) "
                f"on {part.node_id!r} is empty"
            )
    if parts[0].start_layer != 0:
        raise PlanError(f"plan must start at layer 0, P1 starts at layer {parts[0].start_layer}")
    for i in range(len(parts) - 1):
        end, nxt = parts[i].end_layer_exclusive, parts[i + 1].start_layer
        if nxt > end:
            raise PlanError(f"gap: layers {end}-{nxt - 1} between P{i + 1} and P{i + 2} are unassigned")
        if nxt < end:
            raise PlanError(f"overlap: P{i + 1} and P{i + 2} both hold layers {nxt}-{end - 1}")
    last_end = parts[-1].end_layer_exclusive
    if last_end != num_layers:
        raise PlanError(f"plan covers layers 0-{last_end - 1} but the model has {num_layers} layers")
    used: dict[str, int] = {}
    for i, part in enumerate(parts, start=1):
        if part.node_id not in by_id:
            raise PlanError(f"P{i} is assigned to unknown node {part.node_id!r}")
        if part.node_id in used:
            raise PlanError(
                f"node {part.node_id!r} is used twice (P{used[part.node_id]} and P{i}); "
                "each node runs at most one partition"
            )
        used[part.node_id] = i
    first, last = parts[0], parts[-1]
    if not by_id[first.node_id].trusted:
        raise PlanError(
            f"privacy: first partition ({_layers_label(first)}, raw token embeddings) must run "
            f"on a trusted node; {first.node_id!r} is untrusted"
        )
    if not by_id[last.node_id].trusted:
        raise PlanError(
            f"privacy: last partition ({_layers_label(last)}, LM head and sampling) must run "
            f"on a trusted node; {last.node_id!r} is untrusted"
        )
    for part in parts:
        node = by_id[part.node_id]
        for name, values in (
            ("layer_weight_bytes", node.layer_weight_bytes),
            ("decode_ms_per_layer", node.decode_ms_per_layer),
        ):
            if len(values) != num_layers:
                raise PlanError(
                    f"node {node.node_id!r}: {name} has {len(values)} entries, "
                    f"the model has {num_layers} layers"
                )
        need = _partition_bytes(node, part.start_layer, part.end_layer_exclusive)
        if need > node.memory_bytes:
            raise PlanError(
                f"capacity: node {node.node_id!r} would hold {_layers_label(part)} needing "
                f"{need} bytes but has {node.memory_bytes}"
            )


def route_crosses_untrusted(plan: Plan, nodes: Sequence[NodeProfile]) -> bool:
    """Return True if any partition of ``plan`` runs on an untrusted (or unknown) node."""
    trusted = {n.node_id for n in nodes if n.trusted}
    return any(p.node_id not in trusted for p in plan.partitions)


# ----------------------------------------------------------------------------- cost


def _link_table(links: Iterable[Link]) -> dict[tuple[str, str], Link]:
    table: dict[tuple[str, str], Link] = {}
    for link in links:
        if link.bandwidth_mbps <= 0 or link.rtt_ms < 0:
            raise PlanError(f"link {link.a}-{link.b}: bandwidth must be > 0 and rtt >= 0")
        table[(link.a, link.b)] = link
        table[(link.b, link.a)] = link
    return table


def _hop_ms(link: Link, payload_bytes: float) -> float:
    # Mbit/s = 1e3 bits per ms.
    return payload_bytes * 8.0 / (link.bandwidth_mbps * 1e3) + link.rtt_ms


def _holders(current_plan: Plan | None, num_layers: int) -> list[str | None]:
    holders: list[str | None] = [None] * num_layers
    if current_plan is None:
        return holders
    if current_plan.boundaries[-1:] != (num_layers,):
        raise PlanError(f"current plan does not cover the model's {num_layers} layers")
    for part in current_plan.partitions:
        for layer in range(max(part.start_layer, 0), min(part.end_layer_exclusive, num_layers)):
            holders[layer] = part.node_id
    return holders


def _resolve_workload(
    workload: Workload | None, objective: str | None, privacy_high: bool | None
) -> Workload:
    resolved = workload or Workload()
    if objective is not None:
        resolved = replace(resolved, objective=objective)
    if privacy_high is not None:
        resolved = replace(resolved, privacy_high=privacy_high)
    _check_workload(resolved)
    return resolved


def plan_cost(
    plan: Plan,
    nodes: Sequence[NodeProfile],
    links: Iterable[Link],
    weights: PlannerWeights | None = None,
    current_plan: Plan | None = None,
    *,
    workload: Workload | None = None,
    objective: Objective | None = None,
    privacy_high: bool | None = None,
) -> PlanCost:
    """Return the cost breakdown of ``plan`` (validated first; ``PlanError`` if invalid).

    ``objective`` and ``privacy_high`` override the corresponding ``workload`` fields.
    A missing link between two consecutive partitions' nodes makes the plan invalid.
    """
    weights = weights or PlannerWeights()
    workload = _resolve_workload(workload, objective, privacy_high)
    num_layers = plan.boundaries[-1] if plan.partitions else 0
    _check_inputs(num_layers, nodes, weights)
    validate_plan(plan, num_layers, nodes)
    by_id = {n.node_id: n for n in nodes}
    link_of = _link_table(links)
    holders = _holders(current_plan, num_layers)
    tokens = workload.tokens
    parts = plan.partitions

    latency_ms = 0.0
    client_in = link_of.get((CLIENT, parts[0].node_id))
    if client_in is not None:
        latency_ms += _hop_ms(client_in, tokens * workload.token_id_bytes)
    client_out = link_of.get((parts[-1].node_id, CLIENT))
    if client_out is not None:
        latency_ms += _hop_ms(client_out, workload.token_id_bytes)

    loads = {n.node_id: n.utilisation for n in nodes}
    privacy_penalty = 0.0
    migration_ms = 0.0
    for i, part in enumerate(parts):
        node = by_id[part.node_id]
        per_token = node.decode_ms_per_layer if workload.objective == "decode" else node.prefill_ms_per_layer
        headroom = max(1.0 - node.utilisation, weights.min_headroom)
        latency_ms += tokens * sum(per_token[part.start_layer : part.end_layer_exclusive]) / headroom
        if i + 1 < len(parts):
            nxt = parts[i + 1].node_id
            link = link_of.get((part.node_id, nxt))
            if link is None:
                raise PlanError(f"no link between {part.node_id!r} and {nxt!r}")
            latency_ms += _hop_ms(link, tokens * workload.activation_bytes_per_token)
        held = _partition_bytes(node, part.start_layer, part.end_layer_exclusive)
        loads[node.node_id] = max(node.utilisation, _memory_fraction(held, node.memory_bytes))
        if workload.privacy_high and not node.trusted:
            privacy_penalty += 1.0
        moved = sum(
            node.layer_weight_bytes[layer]
            for layer in range(part.start_layer, part.end_layer_exclusive)
            if current_plan is not None and holders[layer] != node.node_id
        )
        migration_ms += moved * 8.0 / (weights.load_bandwidth_mbps * 1e3)
    imbalance = sum(load * load for load in loads.values())
    total = (
        weights.alpha * latency_ms
        + weights.beta * imbalance
        + _times(weights.gamma, privacy_penalty)
        + weights.migration * migration_ms
    )
    return PlanCost(latency_ms, imbalance, privacy_penalty, migration_ms, total)


def _times(weight: float, amount: float) -> float:
    # inf * 0 is nan; a forbidding weight with nothing to forbid costs nothing.
    return 0.0 if amount == 0 else weight * amount


def _memory_fraction(held_bytes: int, memory_bytes: int) -> float:
    if memory_bytes <= 0:
        return 0.0 if held_bytes == 0 else math.inf
    return held_bytes / memory_bytes


# ---------------------------------------------------------------------------- search


@dataclass
class _Tables:
    """Per-instance cost tables, indexed by node position in ``nodes``."""

    num_layers: int
    node_ids: list[str]
    segment: np.ndarray  # [j, k, m]: weighted cost of layers [j, k) on node m (inf: infeasible)
    hop: np.ndarray  # [m, n]: weighted cost of the activation hop m -> n (inf: no link / m == n)
    constant: float  # plan-independent part of the objective
    trusted_idx: np.ndarray  # node positions of trusted nodes
    max_span: np.ndarray  # [m]: most consecutive layers node m can hold anywhere


def _build_tables(
    num_layers: int,
    nodes: Sequence[NodeProfile],
    links: Iterable[Link],
    weights: PlannerWeights,
    workload: Workload,
    current_plan: Plan | None,
) -> _Tables:
    # Each entry below mirrors one term of plan_cost, vectorised over all
    # (start, end, node) triples; the brute-force test keeps the two in step.
    n_nodes, n_layers = len(nodes), num_layers
    tokens = workload.tokens
    link_of = _link_table(links)
    holders = _holders(current_plan, n_layers)
    per_token = np.array(
        [n.decode_ms_per_layer if workload.objective == "decode" else n.prefill_ms_per_layer for n in nodes],
        dtype=float,
    ).reshape(n_nodes, n_layers)
    weight_bytes = np.array([n.layer_weight_bytes for n in nodes], dtype=float).reshape(n_nodes, n_layers)
    kv_bytes = np.array([n.layer_kv_bytes or (0,) * n_layers for n in nodes], dtype=float).reshape(
        n_nodes, n_layers
    )
    util = np.array([n.utilisation for n in nodes], dtype=float)
    memory = np.array([n.memory_bytes for n in nodes], dtype=float)
    trusted = np.array([n.trusted for n in nodes], dtype=bool)
    if current_plan is None:
        moved_bytes = np.zeros_like(weight_bytes)
    else:
        not_held = np.array(
            [[holders[layer] != n.node_id for layer in range(n_layers)] for n in nodes],
            dtype=bool,
        ).reshape(n_nodes, n_layers)
        moved_bytes = weight_bytes * not_held

    def prefix(per_layer: np.ndarray) -> np.ndarray:  # (N, L) -> (L+1, N)
        out = np.zeros((n_layers + 1, n_nodes))
        out[1:] = np.cumsum(per_layer.T, axis=0)
        return out

    def span(per_layer: np.ndarray) -> np.ndarray:  # [j, k, m] = sum over layers j..k-1
        p = prefix(per_layer)
        return p[None, :, :] - p[:, None, :]

    headroom = np.maximum(1.0 - util, weights.min_headroom)
    latency = tokens * span(per_token) / headroom[None, None, :]
    held = span(weight_bytes + kv_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(memory > 0, held / np.where(memory > 0, memory, 1.0), 0.0)
    load = np.maximum(util[None, None, :], fraction)
    imbalance_delta = load * load - (util * util)[None, None, :]
    migration_ms = span(moved_bytes) * 8.0 / (weights.load_bandwidth_mbps * 1e3)

    segment = weights.alpha * latency + weights.beta * imbalance_delta
    segment = segment + weights.migration * migration_ms
    if workload.privacy_high and weights.gamma > 0:
        segment = segment + np.where(trusted, 0.0, weights.gamma)[None, None, :]

    # Client hops belong to P1 (starts at layer 0) and PK (ends at layer L).
    for m, node in enumerate(nodes):
        link_in = link_of.get((CLIENT, node.node_id))
        if link_in is not None:
            segment[0, :, m] += weights.alpha * _hop_ms(link_in, tokens * workload.token_id_bytes)
        link_out = link_of.get((node.node_id, CLIENT))
        if link_out is not None:
            segment[:, n_layers, m] += weights.alpha * _hop_ms(link_out, workload.token_id_bytes)

    j_idx = np.arange(n_layers + 1)
    width = j_idx[None, :] - j_idx[:, None]  # [j, k] = k - j layers
    fits = (held <= memory[None, None, :]) & (width > 0)[:, :, None]
    feasible = fits.copy()
    # Eq. 6/10: the partition starting at layer 0 or ending at layer L is P1 or PK.
    pinned = (j_idx[:, None] == 0) | (j_idx[None, :] == n_layers)
    feasible &= ~(pinned[:, :, None] & ~trusted[None, None, :])
    segment = np.where(feasible, segment, np.inf)

    hop = np.full((n_nodes, n_nodes), np.inf)
    for m, a in enumerate(nodes):
        for n, b in enumerate(nodes):
            link = link_of.get((a.node_id, b.node_id))
            if m != n and link is not None:
                hop[m, n] = weights.alpha * _hop_ms(link, tokens * workload.activation_bytes_per_token)
    return _Tables(
        num_layers=n_layers,
        node_ids=[n.node_id for n in nodes],
        segment=segment,
        hop=hop,
        constant=weights.beta * float(np.sum(util * util)),
        trusted_idx=np.flatnonzero(trusted),
        max_span=np.where(fits, width[:, :, None], 0).max(axis=(0, 1)),
    )


@dataclass
class _Found:
    cost: float  # weighted total, inf when nothing feasible was found
    path: list[tuple[int, int, int]]  # (start layer, end layer, node position) per partition
    exact: bool  # False when the state budget ran out before optimality was proven
    expanded: int


def _search(
    tables: _Tables,
    next_boundaries: list[list[int]],
    max_partitions: int | None,
    max_states: int | None,
) -> _Found:
    """Search the cheapest plan; ``next_boundaries[j]`` lists where a partition at j may end."""
    return _BranchAndBound(tables, next_boundaries, max_partitions, max_states).run()


class _BranchAndBound:
    """Exact search over distinct-node pipelines; see the module docstring.

    Two admissible bounds on the cost of finishing a partial plan, and the larger wins:

    * the relaxed dynamic programme (nodes may reappear, just not twice in a row; the
      trusted node that will host PK must still be unused);
    * the same programme with a Lagrangian price ``lam[n] >= 0`` added to every
      partition on node ``n``, minus the prices of all nodes still available. A real
      plan uses each available node at most once, so the prices it pays never exceed
      what is subtracted: still a lower bound. Prices come from a few subgradient
      steps at the root; they stop the relaxation from reusing a fast node whose
      memory only fits part of the model, which is where the plain bound is loose.
    """

    SUBGRADIENT_STEPS = 30
    PLAIN_BUDGET = 60  # states searched with the plain bound before pricing nodes

    def __init__(
        self,
        tables: _Tables,
        next_boundaries: list[list[int]],
        max_partitions: int | None,
        max_states: int | None,
    ) -> None:
        self.t = tables
        self.max_states = max_states
        self.next_boundaries = next_boundaries
        self.n_layers = tables.num_layers
        self.n_nodes = len(tables.node_ids)
        self.limit = self.n_nodes if max_partitions is None else min(max_partitions, self.n_nodes)
        t_idx = tables.trusted_idx
        self.n_trusted = len(t_idx)
        # ends_on[m, t] = 0 where node m is the t-th trusted node: the last partition
        # of a relaxed cover that is meant to end on t.
        self.ends_on = np.full((self.n_nodes, self.n_trusted), np.inf)
        self.ends_on[t_idx, np.arange(self.n_trusted)] = 0.0
        # not_self[m, t] = inf where m is t: PK must run on a node not used before.
        self.not_self = np.zeros((self.n_nodes, self.n_trusted))
        self.not_self[t_idx, np.arange(self.n_trusted)] = np.inf
        self.ends_flat = np.where(np.isin(np.arange(self.n_nodes), t_idx), 0.0, np.inf)
        self.bit = 1 << np.arange(self.n_nodes)
        # Per start layer: the non-final ends (a slice when they are contiguous, which
        # is the common case and much faster to index) and whether L is a valid end.
        inner_ks = [[k for k in ks if k < self.n_layers] for ks in next_boundaries]
        self._inner = [_as_index(ks) if ks else None for ks in inner_ks]
        self._ends = [self.n_layers in ks for ks in next_boundaries]
        # Per start layer j: the ends a partition may take, and the same as an index
        # into axis 1 of the tables (a slice when contiguous: cheaper than a list).
        self._ks = [list(ks) for ks in next_boundaries]
        self._rows = [_as_index(ks) for ks in next_boundaries]
        self._last_ks = [[self.n_layers] if self.n_layers in ks else [] for ks in next_boundaries]
        self._last_rows = [_as_index(ks) for ks in self._last_ks]
        self._trusted_bits = int(sum(1 << int(m) for m in t_idx))
        self._completions: dict[tuple[bool, int], np.ndarray] = {}
        self.best_cost = math.inf
        self.best_path: list[tuple[int, int, int]] = []
        self.expanded = 0

    # -- bounds
    def _relaxed(self, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (G, H) of the relaxed programme over segment costs ``seg``.

        G[j, m, t]: cheapest relaxed cover of layers [j, L) whose first partition starts
        at j on node m and whose last runs on trusted node t. H[j, m, t]: the same, entered
        from node m (the partition on m ends at j), so it includes the hop out of m.
        """
        n_layers, hop = self.n_layers, self.t.hop
        H = np.full((n_layers + 1, self.n_nodes, self.n_trusted), np.inf)
        G = np.full((n_layers + 1, self.n_nodes, self.n_trusted), np.inf)
        hop3 = hop[:, :, None]
        for j in range(n_layers - 1, -1, -1):
            inner, ends = self._inner[j], self._ends[j]
            if inner is None and not ends:
                continue
            if inner is not None:
                best = (seg[j, inner, :][:, :, None] + H[inner]).min(axis=0)
                if ends:
                    np.minimum(best, seg[j, n_layers, :][:, None] + self.ends_on, out=best)
            else:
                best = seg[j, n_layers, :][:, None] + self.ends_on
            G[j] = best
            if j > 0:
                H[j] = (hop3 + best[None, :, :]).min(axis=1)
        return G, H

    def _relaxed_flat(self, seg: np.ndarray) -> np.ndarray:
        """Return F[k, m]: the relaxed programme without tracking which node hosts PK.

        F[k, m] for k < L is the cheapest relaxed cover of [k, L) entered from node m;
        F[L, m] is 0 on trusted nodes (a cover may end there) and inf elsewhere. At the
        root nothing is used yet, so its minimum equals that of ``_relaxed``; it is
        a third of the work, which matters inside the subgradient loop.
        """
        n_layers, hop = self.n_layers, self.t.hop
        F = np.full((n_layers + 1, self.n_nodes), np.inf)
        F[n_layers] = self.ends_flat
        self.root_flat = np.full(self.n_nodes, np.inf)
        for j in range(n_layers - 1, -1, -1):
            rows = self._rows[j]
            if not self._ks[j]:
                continue
            best = (seg[j, rows, :] + F[rows]).min(axis=0)
            if j > 0:
                F[j] = (hop + best[None, :]).min(axis=1)
            else:
                self.root_flat = best
        return F

    def _relaxed_path(self, seg: np.ndarray, F: np.ndarray) -> list[tuple[int, int, int]]:
        """Return the partitions of an optimal relaxed cover (empty if none is finite)."""
        path: list[tuple[int, int, int]] = []
        j, prev = 0, -1
        while j < self.n_layers:
            ks, rows = self._ks[j], self._rows[j]
            if not ks:
                return []
            step = seg[j, rows, :] + F[rows]
            if prev >= 0:
                step = step + self.t.hop[prev][None, :]
            r, m = np.unravel_index(int(np.argmin(step)), step.shape)
            if not math.isfinite(float(step[r, m])):
                return []
            path.append((j, ks[r], int(m)))
            j, prev = ks[r], int(m)
        return path

    def _path_cost(self, path: list[tuple[int, int, int]]) -> float:
        cost, prev = 0.0, -1
        for j, k, m in path:
            cost += float(self.t.segment[j, k, m])
            if prev >= 0:
                cost += float(self.t.hop[prev, m])
            prev = m
        return cost

    def _tune_prices(self) -> None:
        """Set ``lam``/``H_lam`` to node prices that raise the root bound, if any do.

        Subgradient ascent with Polyak steps towards the incumbent's cost, halving the
        step when the bound stalls. A priced relaxed cover that happens to use distinct
        nodes is a real plan and may improve the incumbent on the way.
        """
        seg = self.t.segment
        lam = np.zeros(self.n_nodes)
        best_lam, best_bound = None, float(self.G[0].min())
        theta, stalled = 1.0, 0
        for _ in range(self.SUBGRADIENT_STEPS):
            priced = seg + lam[None, None, :]
            F = self._relaxed_flat(priced)
            bound = float(self.root_flat.min()) - float(lam.sum())
            if not math.isfinite(bound):
                break
            if bound > best_bound + _tol(best_bound):
                best_lam, best_bound, stalled = lam.copy(), bound, 0
            else:
                stalled += 1
                if stalled >= 2:
                    theta, stalled = theta / 2, 0
            upper = self.best_cost
            if theta < 0.05 or bound >= upper - _tol(upper):
                break  # no more progress, or the incumbent is proven optimal
            path = self._relaxed_path(priced, F)
            uses = np.bincount([m for _, _, m in path], minlength=self.n_nodes).astype(float)
            if uses.max() <= 1 and len(path) <= self.limit:
                cost = self._path_cost(path)
                if cost < self.best_cost:
                    self.best_cost, self.best_path = cost, path
            grad = uses - 1.0
            grad[(lam <= 0) & (grad < 0)] = 0.0  # prices stay >= 0
            if not grad.any():
                break
            # Polyak's step aims at the incumbent; an incumbent from a short search can be
            # far off, so the aim is capped at a quarter of the bound itself.
            gap = min(upper - bound, 0.25 * max(abs(bound), 1.0))
            lam = np.maximum(lam + theta * gap / float(grad @ grad) * grad, 0.0)
        if best_lam is not None:
            self.lam = best_lam
            _, self.H_lam = self._relaxed(seg + best_lam[None, None, :])

    # -- search
    def run(self) -> _Found:
        if not self.n_trusted:
            return _Found(math.inf, [], True, 0)
        self.G, self.H = self._relaxed(self.t.segment)
        self.lam: np.ndarray | None = None
        self.H_lam = self.H
        # Most instances are settled by the plain bound within a few dozen states; only
        # when that budget runs out are node prices worth their cost (each subgradient
        # step is one more pass of the relaxed programme). The priced search restarts
        # from the root, keeping the incumbent.
        exact = self._stage(self.PLAIN_BUDGET)
        if not exact:
            self._tune_prices()
            exact = self._stage(None)
        return _Found(self.best_cost + self.t.constant, self.best_path, exact, self.expanded)

    def _stage(self, budget: int | None) -> bool:
        """Search again from the root with the current bounds; True if it finished.

        ``budget`` caps the states this stage may expand (``max_states`` caps them all).
        """
        stage_cap = math.inf if budget is None else self.expanded + budget
        total_cap = math.inf if self.max_states is None else self.max_states
        self.budget = min(stage_cap, total_cap)
        try:
            self._visit(0, -1, 0, 0.0, [], {})
        except _OutOfBudget:
            return False
        return True

    def _completion(self, priced: bool, trusted_used: int) -> np.ndarray:
        """Return [k, m]: bound on finishing layers [k, L) after a partition on m ends at k.

        PK must go to a trusted node not yet used (``trusted_used`` is the mask of used
        nodes restricted to trusted ones) and other than m; row L is 0 (nothing left).
        Cached per trusted-used mask: there are at most 2^T of them.
        """
        key = (priced, trusted_used)
        table = self._completions.get(key)
        if table is None:
            used_t = (trusted_used & self.bit[self.t.trusted_idx]) != 0
            blocked = np.where(used_t, np.inf, 0.0)
            H = self.H_lam if priced else self.H
            table = (H + blocked[None, None, :] + self.not_self[None]).min(axis=2)
            table[self.n_layers] = 0.0
            self._completions[key] = table
        return table

    def _children(self, j: int, prev: int, mask: int, g: float) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Return (ends, step costs [r, m], lower bounds f [r, m]) of the partitions after j."""
        if mask.bit_count() + 1 >= self.limit:  # only room for the last partition
            ks, rows = self._last_ks[j], self._last_rows[j]
        else:
            ks, rows = self._ks[j], self._rows[j]
        if not ks:
            return ks, np.empty((0, self.n_nodes)), np.empty((0, self.n_nodes))
        used = (mask & self.bit) != 0
        step = self.t.segment[j, rows, :]
        if prev >= 0:
            step = step + self.t.hop[prev][None, :]
        trusted_used = mask & self._trusted_bits
        h = self._completion(False, trusted_used)[rows]
        if self.lam is not None:
            # Prices of the nodes the rest of the plan may still use (all unused but m).
            available = float(self.lam[~used].sum()) - self.lam
            h = np.maximum(h, self._completion(True, trusted_used)[rows] - available[None, :])
        f = g + step + h
        f[:, used] = np.inf
        # Capacity: the nodes left after m must be able to hold the remaining layers
        # between them (each node runs one partition, at most max_span layers long).
        spare = float(self.t.max_span[~used].sum()) - self.t.max_span
        short = (self.n_layers - np.asarray(ks))[:, None] > spare[None, :]
        f[short] = np.inf
        return ks, step, f

    def _visit(
        self,
        j: int,
        prev: int,
        mask: int,
        g: float,
        path: list[tuple[int, int, int]],
        seen: dict[tuple[int, int, int], float],
    ) -> None:
        """Search every completion of the partial plan ``path`` that could beat the incumbent."""
        self.expanded += 1
        if self.expanded > self.budget:
            raise _OutOfBudget
        ks, step, f = self._children(j, prev, mask, g)
        if not ks:
            return
        rows, cols = np.nonzero(f < self.best_cost - _tol(self.best_cost))
        order = np.argsort(f[rows, cols], kind="stable")
        for r, m in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
            if f[r, m] >= self.best_cost - _tol(self.best_cost):
                break  # children are sorted: none of the rest can beat the incumbent
            k = ks[r]
            g_next = g + float(step[r, m])
            path.append((j, k, m))
            if k == self.n_layers:
                if g_next < self.best_cost:
                    self.best_cost, self.best_path = g_next, list(path)
            else:
                key = (k, m, mask | (1 << m))
                # A state reached before at no higher cost has already been searched.
                if g_next < seen.get(key, math.inf):
                    seen[key] = g_next
                    self._visit(k, m, key[2], g_next, path, seen)
            path.pop()


class _OutOfBudget(Exception):
    """The plain-bound search used up its budget; price nodes and search again."""


def _as_index(ks: list[int]) -> slice | list[int]:
    if ks and ks == list(range(ks[0], ks[-1] + 1)):
        return slice(ks[0], ks[-1] + 1)
    return list(ks)


def _tol(cost: float) -> float:
    return _REL_TOL * max(1.0, abs(cost)) if math.isfinite(cost) else 0.0


def _infeasible_reason(num_layers: int, nodes: Sequence[NodeProfile]) -> str:
    if not nodes:
        return "no nodes"
    trusted = [n for n in nodes if n.trusted]
    if not trusted:
        return "no trusted node for the first and last partitions"
    return (
        "no split satisfies capacity, unique assignment, privacy and link constraints "
        f"for {num_layers} layers on {len(nodes)} nodes ({len(trusted)} trusted)"
    )


def _result(
    tables: _Tables,
    found: _Found,
    nodes: Sequence[NodeProfile],
    links: Sequence[Link],
    weights: PlannerWeights,
    workload: Workload,
    current_plan: Plan | None,
) -> PlanResult:
    plan = Plan(tuple(Partition(j, k, tables.node_ids[m]) for j, k, m in found.path))
    # Re-score with plan_cost so the breakdown the orchestrator stores is the same
    # arithmetic that validates plans, not the search's vectorised tables.
    cost = plan_cost(plan, nodes, links, weights, current_plan, workload=workload)
    return PlanResult(plan=plan, cost=cost, exact=found.exact, nodes_expanded=found.expanded)


def plan_optimal(
    num_layers: int,
    nodes: Sequence[NodeProfile],
    links: Iterable[Link],
    weights: PlannerWeights | None = None,
    current_plan: Plan | None = None,
    *,
    max_partitions: int | None = None,
    max_states: int | None = DEFAULT_MAX_STATES,
    objective: Objective | None = None,
    privacy_high: bool | None = None,
    workload: Workload | None = None,
) -> PlanResult:
    """Return the cheapest split and assignment of ``num_layers`` layers (paper eq. 7).

    Exact over all contiguous splits into at most ``max_partitions`` partitions
    (default: as many as there are nodes) and all assignments to distinct nodes, subject
    to capacity (eq. 5), P1/PK on trusted nodes (eq. 6/10) and existing links between
    consecutive nodes. ``current_plan`` only feeds the migration term. Raises
    ``PlanError`` when no plan is feasible.

    The result is proven optimal (``exact=True``) unless the search expands more than
    ``max_states`` states (None: no limit); then it is the best plan found, still valid,
    with ``exact=False``.
    """
    weights = weights or PlannerWeights()
    workload = _resolve_workload(workload, objective, privacy_high)
    nodes = list(nodes)
    links = list(links)
    _check_inputs(num_layers, nodes, weights)
    if max_partitions is not None and max_partitions < 1:
        raise PlanError(f"max_partitions must be >= 1, got {max_partitions}")
    tables = _build_tables(num_layers, nodes, links, weights, workload, current_plan)
    next_boundaries = [list(range(j + 1, num_layers + 1)) for j in range(num_layers)]
    found = _search(tables, next_boundaries, max_partitions, max_states)
    if not found.path:
        if not found.exact:
            raise PlanError(f"no feasible plan found within max_states={max_states}")
        raise PlanError(f"infeasible: {_infeasible_reason(num_layers, nodes)}")
    return _result(tables, found, nodes, links, weights, workload, current_plan)


def plan_redistribute(
    boundaries: Plan | Sequence[int],
    nodes: Sequence[NodeProfile],
    links: Iterable[Link],
    weights: PlannerWeights | None = None,
    current_plan: Plan | None = None,
    *,
    objective: Objective | None = None,
    privacy_high: bool | None = None,
    workload: Workload | None = None,
) -> PlanResult:
    """Return the cheapest assignment of nodes to fixed partition boundaries.

    The paper's "redistribute" (tried before a re-split): the cut points stay, only the
    nodes change. ``boundaries`` is ``[0, b1, ..., L]`` or a ``Plan`` whose boundaries
    are kept (and which is also the current plan for migration cost unless
    ``current_plan`` is given). Exact; raises ``PlanError`` when no assignment is feasible.
    """
    if isinstance(boundaries, Plan):
        if current_plan is None:
            current_plan = boundaries
        cuts = list(boundaries.boundaries)
    else:
        cuts = [int(b) for b in boundaries]
    if len(cuts) < 2 or cuts[0] != 0 or any(a >= b for a, b in zip(cuts, cuts[1:], strict=False)):
        raise PlanError(f"boundaries must rise strictly from 0 to the layer count, got {cuts}")
    num_layers = cuts[-1]
    weights = weights or PlannerWeights()
    workload = _resolve_workload(workload, objective, privacy_high)
    nodes = list(nodes)
    links = list(links)
    _check_inputs(num_layers, nodes, weights)
    tables = _build_tables(num_layers, nodes, links, weights, workload, current_plan)
    next_boundaries: list[list[int]] = [[] for _ in range(num_layers)]
    for a, b in zip(cuts, cuts[1:], strict=False):
        next_boundaries[a] = [b]
    found = _search(tables, next_boundaries, None, None)
    if not found.path:
        raise PlanError(
            f"infeasible: no assignment of distinct nodes to boundaries {cuts} satisfies "
            f"capacity, privacy and link constraints ({_infeasible_reason(num_layers, nodes)})"
        )
    return _result(tables, found, nodes, links, weights, workload, current_plan)


__all__ = [
    "CLIENT",
    "Link",
    "NodeProfile",
    "Partition",
    "Plan",
    "PlanCost",
    "PlanError",
    "PlanResult",
    "PlannerWeights",
    "Workload",
    "plan_cost",
    "plan_optimal",
    "plan_redistribute",
    "route_crosses_untrusted",
    "validate_plan",
]
