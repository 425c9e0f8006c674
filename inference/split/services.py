"""Split-inference workflows: nodes, plan proposal and validation, broadcast, recovery, generation.

Plans are stored in the database (``SplitPlan``); the active one is also published in
Redis (``split:active:<model slug>``) where coordinators read it once per token and nodes
get their layers through control commands (``coordinator.broadcast_plan``).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inference.planner import Link, NodeProfile, Partition, Plan, PlanError, plan_optimal, validate_plan
from inference.runtime import (
    InvalidRequest,
    SamplingParams,
    check_limits,
    check_sampling,
    model_max_positions,
)
from inference.split.coordinator import Coordinator, SplitGeneration, SplitUnavailable, broadcast_plan
from inference.split.dataplane import ActivePlan, Hop, inbox_key, live_nodes, privacy_key
from inference.split_models import PlanAcknowledgement, SplitNode, SplitPlan
from placement.models import AIModel, ProductionEnvironment

# Assumed for node pairs with neither a fresh measurement nor a configured NodeLink: a LAN.
DEFAULT_LINK_MBPS = 1000.0
DEFAULT_LINK_RTT_MS = 0.5
# ms per layer per token when a node has not been profiled yet: equal for all nodes, so
# the planner then decides on trust, memory, utilisation and links alone.
DEFAULT_LAYER_MS = 1.0
BROADCAST_TIMEOUT_S = 120.0

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def dataplane_client():
    """Return the process's Redis client for the data plane."""
    from inference.split.node import redis_client

    url = settings.DATAPLANE_REDIS_URL
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis_client(url)
        return _clients[url]


class SplitRequestError(InvalidRequest):
    """A split generation request that can never succeed (unknown model, bad limits)."""


class SplitPrivacyUnavailable(SplitUnavailable):
    """A privacy=high request while the active plan routes through an untrusted node."""


PRIVACY_LEVELS = ("normal", "high")


def record_privacy_violation(*, ai_model: AIModel, untrusted: Sequence[str]) -> int:
    """Count a privacy=high request the active plan could not serve on trusted nodes only.

    The orchestrator's next cycle reads (and resets) the counter as ``privacy_high_request``
    and proposes an all-trusted plan. Returns the count so far.
    """
    client = dataplane_client()
    pipe = client.pipeline()
    pipe.incr(privacy_key(ai_model.slug))
    # An unread counter must not fire a trigger hours later, after the plan changed anyway.
    pipe.expire(privacy_key(ai_model.slug), 3600)
    count, _ = pipe.execute()
    return int(count)


def take_privacy_violations(ai_model: AIModel) -> int:
    """Return and reset the number of privacy=high requests recorded since the last call."""
    pipe = dataplane_client().pipeline()
    pipe.get(privacy_key(ai_model.slug))
    pipe.delete(privacy_key(ai_model.slug))
    value, _ = pipe.execute()
    return int(value or 0)


def untrusted_nodes_of(plan: SplitPlan) -> list[str]:
    """Return the nodes of ``plan`` that are not trusted (unknown nodes count as untrusted)."""
    names = [p["node"] for p in plan.partitions]
    nodes = SplitNode.objects.select_related("environment").filter(name__in=names)
    trusted = {node.name for node in nodes if node.is_trusted}
    return [name for name in names if name not in trusted]


# Nodes -------------------------------------------------------------------------------


def split_node_register(
    *,
    name: str,
    environment_slug: str | None = None,
    trust: str | None = None,
    memory_bytes: int | None = None,
) -> SplitNode:
    """Create or update a node row and mark it online (called by ``run_split_node``)."""
    node, _ = SplitNode.objects.get_or_create(name=name)
    if environment_slug:
        node.environment = ProductionEnvironment.objects.get(slug=environment_slug)
    if trust:
        node.trust = SplitNode.Trust(trust)
    if memory_bytes:
        node.memory_bytes = memory_bytes
    node.status = SplitNode.Status.ONLINE
    node.last_heartbeat_at = timezone.now()
    node.save()
    return node


def split_node_heartbeat(*, name: str, utilisation: float, online: bool = True) -> None:
    """Record a node's liveness and load in the database (for the console and the planner)."""
    SplitNode.objects.filter(name=name).update(
        last_heartbeat_at=timezone.now(),
        utilisation=utilisation,
        status=SplitNode.Status.ONLINE if online else SplitNode.Status.OFFLINE,
    )


def split_node_store_profile(*, name: str, profile: dict[str, Any]) -> None:
    """Store a node's measured per-layer costs (``inference.split.profile``)."""
    SplitNode.objects.filter(name=name).update(profile=profile)


def model_layer_count(ai_model: AIModel) -> int:
    """Return the model's decoder layer count from its config (the row's value as fallback)."""
    config_path = Path(ai_model.path) / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for name in ("num_hidden_layers", "n_layer"):
            if isinstance(config.get(name), int):
                return config[name]
    return ai_model.layer_count


def _weight_bytes(ai_model: AIModel) -> int:
    return sum(path.stat().st_size for path in Path(ai_model.path).glob("*.safetensors"))


def node_profiles(ai_model: AIModel, nodes: Sequence[SplitNode]) -> list[NodeProfile]:
    """Return the planner's view of ``nodes`` for this model (measured profile or defaults)."""
    layers = model_layer_count(ai_model)
    per_layer_bytes = max(_weight_bytes(ai_model) // max(layers, 1), 1)
    profiles = []
    for node in nodes:
        decode = node.profile.get("decode_ms_per_layer", DEFAULT_LAYER_MS)
        prefill = node.profile.get("prefill_ms_per_layer", decode)
        profiles.append(
            NodeProfile(
                node_id=node.name,
                trusted=node.is_trusted,
                memory_bytes=int(node.memory_bytes),
                utilisation=min(max(float(node.utilisation), 0.0), 1.0),
                prefill_ms_per_layer=prefill if isinstance(prefill, list) else [float(prefill)] * layers,
                decode_ms_per_layer=decode if isinstance(decode, list) else [float(decode)] * layers,
                layer_weight_bytes=[per_layer_bytes] * layers,
            )
        )
    return profiles


@dataclass(frozen=True)
class LinkFigures:
    """The figures the planner uses for a pair of nodes and where they come from.

    ``source`` is ``measured`` (a fresh probe, either direction: the lower bandwidth and
    the higher RTT), ``configured`` (an administrator's ``NodeLink``) or ``default``.
    """

    a: str
    b: str
    bandwidth_mbps: float
    rtt_ms: float
    source: str
    measured_at: datetime | None = None  # the newer direction's probe time
    directions: tuple[str, ...] = ()  # "a->b" for each fresh probe used

    @property
    def link(self) -> Link:
        """Return the planner's link."""
        return Link(self.a, self.b, max(self.bandwidth_mbps, 1e-6), self.rtt_ms)


def link_figures(nodes: Sequence[SplitNode], *, now: datetime | None = None) -> list[LinkFigures]:
    """Return every pair of ``nodes``: fresh measurements, else configured links, else a LAN default."""
    from inference.split_models import LinkMeasurement, NodeLink

    now = now or timezone.now()
    names = {node.name for node in nodes}
    configured = {
        frozenset((link.a.name, link.b.name)): link
        for link in NodeLink.objects.select_related("a", "b").filter(a__name__in=names, b__name__in=names)
    }
    measured: dict[frozenset, list[LinkMeasurement]] = {}
    fresh = LinkMeasurement.objects.select_related("source", "target").filter(
        source__name__in=names, target__name__in=names, expires_at__gt=now
    )
    for probe in fresh:
        measured.setdefault(frozenset((probe.source.name, probe.target.name)), []).append(probe)
    ordered = sorted(names)
    figures = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            pair = frozenset((a, b))
            if pair in measured:
                probes = sorted(measured[pair], key=lambda m: m.source.name)
                figures.append(
                    LinkFigures(
                        a,
                        b,
                        # A route's hidden states go one way, its tokens the other: plan for
                        # the worse direction.
                        min(m.bandwidth_mbps for m in probes),
                        max(m.rtt_ms for m in probes),
                        "measured",
                        max(m.measured_at for m in probes),
                        tuple(f"{m.source.name}->{m.target.name}" for m in probes),
                    )
                )
            elif pair in configured:
                link = configured[pair]
                figures.append(LinkFigures(a, b, link.bandwidth_mbps, link.rtt_ms, "configured"))
            else:
                figures.append(LinkFigures(a, b, DEFAULT_LINK_MBPS, DEFAULT_LINK_RTT_MS, "default"))
    return figures


def node_links(nodes: Sequence[SplitNode]) -> list[Link]:
    """Return the planner's links between every pair of ``nodes`` (see ``link_figures``)."""
    return [figures.link for figures in link_figures(nodes)]


def split_links_sync() -> int:
    """Copy the nodes' link measurements from the data-plane Redis into ``LinkMeasurement`` rows.

    Expiry comes from each key's remaining TTL, read on this host, so the hosts' clocks need
    not agree. A key that expired leaves its row as it was (stale: the planner ignores it).
    Returns how many rows were written.
    """
    from inference.split.links import LinkMeasurement as Probe
    from inference.split.links import link_key
    from inference.split_models import LinkMeasurement

    nodes = {node.name: node for node in SplitNode.objects.all()}
    pairs = [(a, b) for a in nodes for b in nodes if a != b]
    if not pairs:
        return 0
    pipe = dataplane_client().pipeline(transaction=False)
    for a, b in pairs:
        pipe.get(link_key(a, b))
        pipe.pttl(link_key(a, b))
    replies = pipe.execute()
    now = timezone.now()
    written = 0
    for (a, b), raw, ttl_ms in zip(pairs, replies[::2], replies[1::2], strict=True):
        if raw is None or ttl_ms is None or ttl_ms <= 0:
            continue
        try:
            probe = Probe.from_json(raw)
        except ValueError:
            continue
        if (probe.source, probe.target) != (a, b):
            continue
        expires_at = now + timedelta(milliseconds=ttl_ms)
        measured_at = expires_at - timedelta(seconds=probe.ttl_s)
        existing = LinkMeasurement.objects.filter(source=nodes[a], target=nodes[b]).first()
        if existing is not None and abs((existing.measured_at - measured_at).total_seconds()) < 0.5:
            continue  # the same probe, synced before
        LinkMeasurement.objects.update_or_create(
            source=nodes[a],
            target=nodes[b],
            defaults={
                "rtt_ms": probe.rtt_ms,
                "bandwidth_mbps": probe.mbit_s,
                "payload_bytes": probe.payload_bytes,
                "measured_at": measured_at,
                "expires_at": expires_at,
            },
        )
        written += 1
    return written


# Plans -------------------------------------------------------------------------------


def parse_partitions(partitions: Any) -> Plan:
    """Return the planner's Plan for a partitions list; ``PlanError`` if it is malformed."""
    if not isinstance(partitions, list) or not partitions:
        raise PlanError('malformed plan: partitions must be a non-empty list of {"start", "end", "node"}')
    parts = []
    for index, item in enumerate(partitions, start=1):
        if not isinstance(item, dict) or set(item) != {"start", "end", "node"}:
            raise PlanError(f'malformed plan: P{index} must have exactly the keys "start", "end", "node"')
        start, end, node = item["start"], item["end"], item["node"]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
            raise PlanError(f"malformed plan: P{index} layer bounds must be integers")
        if not isinstance(node, str) or not node:
            raise PlanError(f"malformed plan: P{index} node must be a node name")
        parts.append(Partition(start, end, node))
    return Plan(tuple(parts))


def plan_partitions(plan: Plan) -> list[dict[str, Any]]:
    """Return the stored JSON form of a planner Plan."""
    return [
        {"start": p.start_layer, "end": p.end_layer_exclusive, "node": p.node_id} for p in plan.partitions
    ]


def split_plan_validate(*, ai_model: AIModel, partitions: Any) -> Plan:
    """Raise ``PlanError`` unless the partitions are a valid, private plan on known nodes."""
    plan = parse_partitions(partitions)
    nodes = list(SplitNode.objects.select_related("environment").filter(name__in=plan.node_ids))
    validate_plan(plan, model_layer_count(ai_model), node_profiles(ai_model, nodes))
    return plan


@transaction.atomic
def split_plan_propose(
    *,
    ai_model: AIModel,
    partitions: Any,
    created_by: str = "",
    reason: str = "",
    evidence: dict | None = None,
    state: str = SplitPlan.State.PROPOSED,
) -> SplitPlan:
    """Store a new plan version after validating it (P1/PK trusted, contiguous, capacity).

    Raises ``PlanError`` with the violated constraint; nothing is stored then.
    """
    plan = split_plan_validate(ai_model=ai_model, partitions=partitions)
    # Lock the model row so two proposals cannot take the same version number.
    AIModel.objects.select_for_update().filter(pk=ai_model.pk).first()
    version = (SplitPlan.objects.filter(ai_model=ai_model).aggregate(v=Max("version"))["v"] or 0) + 1
    return SplitPlan.objects.create(
        ai_model=ai_model,
        version=version,
        state=state,
        partitions=plan_partitions(plan),
        created_by=created_by,
        reason=reason,
        evidence=evidence or {},
    )


def active_plan_of(ai_model: AIModel) -> SplitPlan | None:
    """Return the model's active plan row, if any."""
    return (
        SplitPlan.objects.filter(ai_model=ai_model, state=SplitPlan.State.ACTIVE).order_by("-version").first()
    )


def _as_active(plan: SplitPlan) -> ActivePlan:
    return ActivePlan(
        model_key=plan.ai_model.slug,
        version=plan.version,
        hops=tuple(Hop(p["start"], p["end"], p["node"]) for p in plan.partitions),
        model_dir=str(Path(plan.ai_model.path).resolve()),
    )


def split_plan_activate(*, plan: SplitPlan, timeout_s: float = BROADCAST_TIMEOUT_S) -> SplitPlan:
    """Broadcast a plan to its nodes, record their acknowledgements, and make it active.

    The plan becomes active only when every node of it has loaded its layers; until then
    the previous plan keeps serving. On failure the plan is marked failed with the reason
    and ``SplitUnavailable`` is raised.
    """
    split_plan_validate(ai_model=plan.ai_model, partitions=plan.partitions)
    previous = active_plan_of(plan.ai_model)
    SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.BROADCASTING)
    try:
        acks = broadcast_plan(
            dataplane_client(),
            _as_active(plan),
            previous=_as_active(previous) if previous and previous.pk != plan.pk else None,
            timeout_s=timeout_s,
        )
    except SplitUnavailable as exc:
        SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.FAILED, error=str(exc))
        raise
    with transaction.atomic():
        nodes = {node.name: node for node in SplitNode.objects.filter(name__in=list(acks))}
        for name, ack in acks.items():
            PlanAcknowledgement.objects.update_or_create(
                plan=plan, node=nodes[name], defaults={"layers": ack.get("layers", [])}
            )
        SplitPlan.objects.filter(ai_model=plan.ai_model, state=SplitPlan.State.ACTIVE).exclude(
            pk=plan.pk
        ).update(state=SplitPlan.State.SUPERSEDED)
        SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.ACTIVE, activated_at=timezone.now())
    plan.refresh_from_db()
    return plan


def split_plan_approve(*, plan: SplitPlan, user=None, now: bool = False) -> SplitPlan:
    """Approve a plan awaiting approval; activate it now or through the control queue."""
    if plan.state not in (SplitPlan.State.AWAITING_APPROVAL, SplitPlan.State.PROPOSED):
        raise PlanError(f"plan v{plan.version} is {plan.state}; only proposed plans can be approved")
    split_plan_validate(ai_model=plan.ai_model, partitions=plan.partitions)
    SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.BROADCASTING, approved_by=user)
    if now:
        return split_plan_activate(plan=plan)
    from inference.split.tasks import split_plan_activate_task

    transaction.on_commit(lambda: split_plan_activate_task.delay(plan.pk))
    plan.refresh_from_db()
    return plan


def live_split_nodes(*, exclude: Sequence[str] = ()) -> list[SplitNode]:
    """Return the nodes whose heartbeat is current, minus ``exclude``."""
    candidates = [n for n in SplitNode.objects.select_related("environment") if n.name not in exclude]
    status = live_nodes(dataplane_client(), [n.name for n in candidates])
    for node in candidates:
        beat = status.get(node.name)
        if beat is not None:
            node.utilisation = float(beat.get("utilisation", node.utilisation))
    return [n for n in candidates if status.get(n.name) is not None]


def split_recover(*, ai_model: AIModel, lost: Sequence[str]) -> SplitPlan:
    """Re-plan without nodes that stopped, activate it at once, and return it.

    A plan with a dead node cannot serve anything, so recovery does not wait for an
    administrator's approval (as the privacy trigger bypasses the cool-down); the new
    plan is recorded with the reason for review.
    """
    from inference.split.orchestrator import planner_weights
    from inference.split_models import OrchestratorDecision, OrchestratorPolicy

    SplitNode.objects.filter(name__in=list(lost)).update(status=SplitNode.Status.OFFLINE)
    client = dataplane_client()
    for name in lost:
        # Activations queued for a dead node would be served by its successor otherwise.
        client.delete(inbox_key(name))
    current = active_plan_of(ai_model)
    nodes = live_split_nodes(exclude=lost)
    result = plan_optimal(
        model_layer_count(ai_model),
        node_profiles(ai_model, nodes),
        node_links(nodes),
        planner_weights(OrchestratorPolicy.current()),
        parse_partitions(current.partitions) if current else None,
    )
    plan = split_plan_propose(
        ai_model=ai_model,
        partitions=plan_partitions(result.plan),
        created_by="recovery",
        reason=f"node(s) {', '.join(lost)} stopped heartbeating",
        evidence={"lost": list(lost), "cost": result.cost.to_dict()},
        state=SplitPlan.State.BROADCASTING,
    )
    OrchestratorDecision.objects.create(
        ai_model=ai_model,
        action=OrchestratorDecision.Action.RESPLIT,
        triggers=[{"name": "node_lost", "observed": len(lost), "threshold": 0, "detail": ", ".join(lost)}],
        reasons=[plan.reason],
        metrics={"live_nodes": [n.name for n in nodes]},
        plan_from=current,
        plan_to=plan,
    )
    return split_plan_activate(plan=plan)


# Generation --------------------------------------------------------------------------

_tokenizers: dict[str, Any] = {}


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    key = str(path.resolve())
    if key not in _tokenizers:
        _tokenizers[key] = AutoTokenizer.from_pretrained(path)
    return _tokenizers[key]


@dataclass(frozen=True)
class SplitReply:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    generation: SplitGeneration


def split_generate(
    *,
    model_slug: str,
    prompt: str | Sequence[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_on_eos: bool = True,
    step_timeout_s: float | None = None,
    before_step: Callable[[int], None] | None = None,
    privacy: str = "normal",
    on_token: Callable[[int], None] | None = None,
) -> SplitReply:
    """Generate through the model's active split plan; recovers from dead nodes by re-planning.

    A ``privacy="high"`` request never crosses an untrusted node: when the active plan
    would, it is recorded for the orchestrator (privacy trigger) and refused with
    ``SplitPrivacyUnavailable`` until an all-trusted plan is active.

    Raises ``SplitRequestError`` for requests that can never succeed and
    ``SplitUnavailable`` when the nodes cannot serve within the bound.
    """
    if privacy not in PRIVACY_LEVELS:
        raise SplitRequestError(f"privacy must be one of {', '.join(PRIVACY_LEVELS)}")
    ai_model = AIModel.objects.filter(slug=model_slug).first()
    if ai_model is None:
        raise SplitRequestError(f"unknown model {model_slug!r}")
    path = Path(ai_model.path)
    if not (path / "config.json").is_file():
        raise SplitRequestError(f"model {model_slug!r} has no files at {path}")
    tokenizer = _tokenizer(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    vocab_size = int(config.get("vocab_size", len(tokenizer)))
    if isinstance(prompt, str):
        if not prompt.strip():
            raise SplitRequestError("prompt is empty")
        ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    else:
        ids = [int(t) for t in prompt]
        if any(not 0 <= t < vocab_size for t in ids):
            raise SplitRequestError(f"prompt token ids must lie in [0, {vocab_size})")
    if not ids:
        raise SplitRequestError("prompt is empty")

    class _Config:
        pass

    limits = _Config()
    for key, value in config.items():
        setattr(limits, key, value)
    try:
        check_limits(len(ids), max_new_tokens, model_max_positions(limits))
        sampling = check_sampling(temperature, top_p)
    except InvalidRequest as exc:
        raise SplitRequestError(str(exc)) from exc
    active = active_plan_of(ai_model)
    if active is None:
        raise SplitUnavailable(f"model {model_slug!r} has no active split plan")
    if privacy == "high":
        untrusted = untrusted_nodes_of(active)
        if untrusted:
            record_privacy_violation(ai_model=ai_model, untrusted=untrusted)
            raise SplitPrivacyUnavailable(
                f"plan v{active.version} routes through untrusted node(s) {', '.join(untrusted)}; "
                "a privacy=high request waits for an all-trusted plan (the orchestrator was told)"
            )

    def recover(plan: ActivePlan, lost: list[str]) -> ActivePlan:
        return _as_active(split_recover(ai_model=ai_model, lost=lost))

    coordinator = Coordinator(
        dataplane_client(),
        ai_model.slug,
        on_nodes_lost=recover,
        step_timeout_s=step_timeout_s or float(settings.INFERENCE_TIMEOUT_S),
    )
    eos = tokenizer.eos_token_id
    generation = coordinator.generate(
        ids,
        max_new_tokens=max_new_tokens,
        sampling=SamplingParams(sampling.temperature, sampling.top_p, seed),
        eos_token_id=eos,
        stop_on_eos=stop_on_eos,
        before_step=before_step,
        on_token=on_token,
    )
    text = tokenizer.decode(generation.token_ids, skip_special_tokens=True)
    return SplitReply(
        text=text, token_ids=generation.token_ids, prompt_tokens=len(ids), generation=generation
    )


__all__ = [
    "SplitChannel",
    "SplitPrivacyUnavailable",
    "SplitRequestError",
    "SplitUnavailable",
    "active_plan_of",
    "split_generate",
    "split_links_sync",
    "split_node_heartbeat",
    "split_node_register",
    "split_plan_activate",
    "split_plan_approve",
    "split_plan_propose",
    "split_plan_validate",
    "split_recover",
]


class SplitChannel:
    """The gateway's channel for a request its variant serves through the model's split plan.

    It reads like ``inference.serving.ReplyChannel`` (``wait_started``, ``events``,
    ``result``, ``close``), so the gateway's code paths stay the same. The generation is
    coordinated from this process over the data-plane Redis: in the calling thread for a
    plain request, on a thread of its own for a stream, whose text then comes piece by piece
    as the tokens arrive. Failures are ``GenerationFailed``: ``invalid_request`` (422) for a
    request that can never succeed, ``split_unavailable`` (503) otherwise; a stream reports
    those met before its first token from ``wait_started``.
    """

    def __init__(
        self,
        *,
        model_slug: str,
        request_id: str,
        prompt: str,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        adapter: str | None = None,
        stream: bool = False,
    ) -> None:
        self.model_slug = model_slug
        self.request_id = request_id
        self._request = {
            "prompt": prompt,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
        }
        self._adapter = adapter
        self._stream = stream
        self._reply: SplitReply | None = None
        self._model_ms = 0.0
        # A stream's thread puts ("token", id), then ("done", None) or ("error", exception).
        self._queue: queue.Queue[tuple[str, Any]] | None = None
        self._first: tuple[str, Any] | None = None
        self._cancelled = threading.Event()
        self.attempt = 1
        self.started = False
        self.finished = False

    # The generation ------------------------------------------------------------------

    def _generate(self, on_token: Callable[[int], None] | None = None) -> SplitReply:
        from inference.serving import GenerationFailed

        if self._reply is not None:
            return self._reply
        if self._adapter:
            raise GenerationFailed(
                "invalid_request", "LoRA adapters are not served over split plans; use a whole-model variant."
            )
        started = time.perf_counter()
        try:
            self._reply = split_generate(model_slug=self.model_slug, on_token=on_token, **self._request)
        except SplitRequestError as exc:
            raise GenerationFailed("invalid_request", str(exc)) from None
        except SplitUnavailable as exc:
            raise GenerationFailed("split_unavailable", f"split inference is unavailable: {exc}") from None
        self._model_ms = (time.perf_counter() - started) * 1000.0
        return self._reply

    def _run_streaming(self) -> None:
        from django.db import connection

        assert self._queue is not None

        def on_token(token: int) -> None:
            if self._cancelled.is_set():
                raise SplitUnavailable("the client went away")
            self._queue.put(("token", token))

        try:
            self._generate(on_token)
            self._queue.put(("done", None))
        except Exception as exc:  # noqa: BLE001 - handed to the reading thread
            self._queue.put(("error", exc))
        finally:
            # This thread's own database connection (model and plan lookups): close it.
            connection.close()

    def _next(self, timeout_s: float) -> tuple[str, Any]:
        from inference.serving import GenerationFailed

        if self._first is not None:
            item, self._first = self._first, None
            return item
        assert self._queue is not None
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            raise GenerationFailed("split_unavailable", "the split nodes did not answer in time") from None

    def _wait_s(self) -> float:
        # Past the coordinator's own bounds (a step, a recovery): it raises first.
        return float(settings.INFERENCE_TIMEOUT_S) * 3

    def _done_event(self) -> dict:
        reply = self._generate()
        generation = reply.generation
        decode = generation.decode_ms
        return {
            "type": "done",
            "text": reply.text,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": len(reply.token_ids),
            "finish_reason": generation.finish_reason,
            "attempt": 1 + generation.replays,
            "timings": {
                # The whole split generation counts as model time: the nodes' forwards and
                # the data-plane hops between them.
                "model_ms": round(self._model_ms, 3),
                "prefill_ms": round(generation.prefill_ms, 3),
                "decode_ms_per_token": round(sum(decode) / len(decode), 3) if decode else 0.0,
            },
        }

    # The channel interface -----------------------------------------------------------

    def wait_started(self) -> dict:
        """Start the generation; return once its first token (or its end) is known."""
        if self._stream:
            if self._queue is None:
                self._queue = queue.Queue()
                threading.Thread(
                    target=self._run_streaming, name=f"split-{self.request_id[:8]}", daemon=True
                ).start()
                self._first = self._next(self._wait_s())
                if self._first[0] == "error":
                    _, exc = self._first
                    self._first = None
                    self.finished = True
                    raise exc
        else:
            self._generate()
        self.started = True
        return {"type": "start", "attempt": 1}

    def events(self) -> Iterator[dict]:
        """Yield start, text pieces, and done."""
        if not self._stream:
            done = self._done_event()
            if not self.started:
                self.started = True
                yield {"type": "start", "attempt": 1}
            if done["text"]:
                yield {"type": "piece", "index": 0, "text": done["text"]}
            self.finished = True
            yield done
            return
        if not self.started:
            yield self.wait_started()
        from inference.runtime import TextAssembler

        assembler = TextAssembler(_tokenizer(Path(AIModel.objects.get(slug=self.model_slug).path)))
        tokens: list[int] = []
        index = 0
        while True:
            kind, value = self._next(self._wait_s())
            if kind == "error":
                self.finished = True
                raise value
            if kind == "done":
                break
            tokens.append(value)
            piece = assembler.piece(tokens)
            if piece:
                yield {"type": "piece", "index": index, "text": piece}
                index += 1
        tail = assembler.piece(tokens, final=True)
        if tail:
            yield {"type": "piece", "index": index, "text": tail}
        self.finished = True
        yield self._done_event()

    def result(self):
        """Return the generation as a ``GenerationReply``."""
        from inference.serving import GenerationFailed, reply_from_done

        pieces: list[str] = []
        for event in self.events():
            if event["type"] == "piece":
                pieces.append(event["text"])
            elif event["type"] == "done":
                return reply_from_done(event, "".join(pieces), event["attempt"])
        raise GenerationFailed("protocol", "the split generation ended without a result")

    def close(self) -> None:
        """Stop a stream's generation when its reader went away (at its next token)."""
        if not self.finished:
            self._cancelled.set()
