"""Drive one generation across split-inference nodes, surviving plan changes and node death.

The coordinator pushes the prompt to P1's inbox with the loop bounds (``max_new_tokens``
and the EOS id); from then on the pipeline runs by itself: each node passes the hidden
state of the new position along the route, and the last partition samples the token,
pushes it to the coordinator's reply list and hands it straight to P1 as the next step's
input. Per token that is one Redis hop per partition and no round trip through the
coordinator, which only collects tokens (and is off the critical path).

A plan change is seen by the nodes: once the new version is active every node of the old
and new plans prunes the other versions, so the old loop's next message meets
``stale_plan``. That, a ``cache_miss``, or a node of the route that stopped heartbeating,
ends the run; the coordinator adopts the new plan (asking ``on_nodes_lost`` for one when
nodes died) and starts a new run that replays the token history on it. Each run uses its
own session id, so an abandoned loop cannot touch the caches a new run rebuilds. A
``before_step`` hook runs as each token arrives; when it changed the active plan, the
coordinator leaves the run at once and replays on the new plan.

Replay repeats the original schedule of forwards (the prompt as one chunk, then one
token per chunk; ``inference.partition.replay_schedule``), so the rebuilt KV caches are
bit-identical and the output does not change. All replay chunks are pushed at once: each
node serves its inbox in order, so they stay in order along the route, and the whole
replay costs one round trip plus compute.

Every wait is bounded: a generation that cannot make progress within ``step_timeout_s``
raises ``SplitUnavailable`` instead of hanging. No Django here.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from inference.partition import replay_schedule
from inference.runtime import SamplingParams
from inference.split.dataplane import (
    ActivePlan,
    encode_message,
    inbox_key,
    latency_key,
    live_nodes,
    read_active_plan,
    reply_key,
)

# Latency samples kept per model for the orchestrator's EWMA.
LATENCY_SAMPLES_KEPT = 200
# The coordinator hands its latency samples to Redis every this many tokens.
LATENCY_FLUSH_EVERY = 16


class SplitUnavailable(Exception):
    """No runnable plan, or the nodes did not answer within the bound."""


class SplitFailure(Exception):
    """A node failed to run its partition (a bug or a bad model, not a transient fault)."""


class _Replan(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NodesLost(Exception):
    def __init__(self, nodes: list[str]) -> None:
        super().__init__(", ".join(nodes))
        self.nodes = nodes


@dataclass
class SplitGeneration:
    token_ids: list[int]
    finish_reason: str  # "stop" or "length"
    replays: int = 0
    plan_versions: list[int] = field(default_factory=list)
    prefill_ms: float = 0.0
    decode_ms: list[float] = field(default_factory=list)  # per token after the first
    boundary_bytes: list[int] = field(default_factory=list)  # tensor bytes per boundary, last decode step
    lost_nodes: list[str] = field(default_factory=list)


PlanSource = Callable[[], ActivePlan | None]
NodesLostHandler = Callable[[ActivePlan, list[str]], ActivePlan | None]
StepHook = Callable[[int], None]
TokenHook = Callable[[int], None]


class Coordinator:
    """Generates through the active plan of one model (see the module docstring)."""

    def __init__(
        self,
        client,
        model_key: str,
        *,
        plan_source: PlanSource | None = None,
        on_nodes_lost: NodesLostHandler | None = None,
        step_timeout_s: float = 30.0,
        check_interval_s: float = 0.25,
        max_recoveries: int = 8,
        record_latency: bool = True,
    ) -> None:
        self.client = client
        self.model_key = model_key
        self.plan_source = plan_source or (lambda: read_active_plan(client, model_key))
        self.on_nodes_lost = on_nodes_lost
        self.step_timeout_s = step_timeout_s
        self.check_interval_s = check_interval_s
        self.max_recoveries = max_recoveries
        self.record_latency = record_latency
        self._pending_latency: list[float] = []

    def _current_plan(self) -> ActivePlan:
        plan = self.plan_source()
        if plan is None:
            raise SplitUnavailable(f"model {self.model_key!r} has no active split plan")
        return plan

    def generate(
        self,
        prompt_ids: Sequence[int],
        *,
        max_new_tokens: int,
        sampling: SamplingParams | None = None,
        eos_token_id: int | None = None,
        stop_on_eos: bool = True,
        session_id: str | None = None,
        before_step: StepHook | None = None,
        on_token: TokenHook | None = None,
    ) -> SplitGeneration:
        """Generate up to ``max_new_tokens`` tokens after ``prompt_ids``.

        ``on_token`` is called with each new token id as it arrives (once per token: a
        replay after a re-plan rebuilds caches from tokens already passed on).
        """
        sampling = sampling or SamplingParams()
        prompt = [int(token) for token in prompt_ids]
        if not prompt:
            raise ValueError("prompt is empty")
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        base = session_id or uuid.uuid4().hex
        eos = eos_token_id if stop_on_eos else None
        result = SplitGeneration(token_ids=[], finish_reason="length")
        plan = self._current_plan()
        result.plan_versions.append(plan.version)
        sessions: list[tuple[ActivePlan, str]] = []
        recoveries = 0
        try:
            while len(result.token_ids) < max_new_tokens and result.finish_reason == "length":
                # Each run has its own session id, so a loop of an abandoned run that is
                # still on its way can never touch the caches the new run rebuilds.
                session = f"{base}.{len(sessions)}"
                sessions.append((plan, session))
                try:
                    plan = self._run(
                        plan, session, prompt, max_new_tokens, sampling, eos, result, before_step, on_token
                    )
                except (_Replan, _NodesLost) as exc:
                    recoveries += 1
                    if recoveries > self.max_recoveries:
                        raise SplitUnavailable(
                            f"gave up after {self.max_recoveries} recoveries; last: {exc}"
                        ) from exc
                    if isinstance(exc, _NodesLost):
                        result.lost_nodes.extend(exc.nodes)
                        plan = self._recover(plan, exc.nodes)
                    else:
                        # The plan moved on under us, or a node lost our cache: wait
                        # briefly for the new plan to be active, then replay on it.
                        time.sleep(0.05)
                        plan = self._current_plan()
                    result.replays += 1
                if plan.version != result.plan_versions[-1]:
                    result.plan_versions.append(plan.version)
        finally:
            self._end_sessions(sessions)
        return result

    def _recover(self, plan: ActivePlan, lost: list[str]) -> ActivePlan:
        deadline = time.monotonic() + self.step_timeout_s
        if self.on_nodes_lost is not None:
            replacement = self.on_nodes_lost(plan, lost)
            if replacement is not None:
                return replacement
        # Someone else (the orchestrator) has to publish a plan without the lost nodes.
        while time.monotonic() < deadline:
            current = self.plan_source()
            if current is not None and not set(current.nodes) & set(lost):
                return current
            time.sleep(self.check_interval_s)
        raise SplitUnavailable(f"node(s) {', '.join(lost)} stopped and no plan without them appeared")

    def _run(
        self,
        plan: ActivePlan,
        session: str,
        prompt: list[int],
        max_new_tokens: int,
        sampling: SamplingParams,
        eos: int | None,
        result: SplitGeneration,
        before_step: StepHook | None,
        on_token: TokenHook | None = None,
    ) -> ActivePlan:
        """Run the generation on ``plan`` from the current history until it ends or the plan changes.

        The history is replayed first (as one prefill on the first run). The last chunk
        carries the loop bounds, so from then on the last partition hands each sampled
        token straight to P1 and the coordinator only collects the tokens. Returns the
        plan the generation should continue on (a different one only when ``before_step``
        changed the active plan: the run is then left and replayed on the new plan).
        """
        history = prompt + result.token_ids
        prompt_length = len(prompt)
        step = len(result.token_ids)  # index of the next token to generate
        chunks = replay_schedule(prompt_length, len(history))
        reply = reply_key(session)
        route = [hop.to_list() for hop in plan.hops]
        pipe = self.client.pipeline()
        for seq, (start, end) in enumerate(chunks):
            header = {
                "s": session,
                "m": plan.model_key,
                "v": plan.version,
                "route": route,
                "i": 0,
                "pos": start,
                "len": end - start,
                "step": end - prompt_length,
                "samp": [sampling.temperature, sampling.top_p, sampling.seed],
                "reply": reply,
                "seq": seq,
            }
            if seq == len(chunks) - 1:
                header["loop"] = [max_new_tokens, eos]
            pipe.rpush(inbox_key(plan.hops[0].node), encode_message(header, torch.tensor(history[start:end])))
        self._queue_latency(pipe)
        pipe.execute()
        replaying = step > 0
        last = time.perf_counter()
        started = last
        acks = 0
        deadline = time.monotonic() + self.step_timeout_s
        while True:
            popped = self.client.blpop([reply], timeout=self.check_interval_s)
            if popped is None:
                status = live_nodes(self.client, plan.nodes)
                dead = [node for node, beat in status.items() if beat is None]
                if dead:
                    raise _NodesLost(dead)
                if time.monotonic() > deadline:
                    raise SplitUnavailable(
                        f"no reply from the nodes of plan v{plan.version} within {self.step_timeout_s:.0f} s"
                    )
                continue
            body = json.loads(popped[1])
            error = body.get("error")
            if error in ("stale_plan", "cache_miss", "misrouted"):
                raise _Replan(f"{error}: {body.get('detail')}")
            if error:
                raise SplitFailure(f"node {body.get('node')}: {body.get('detail')}")
            if acks < len(chunks) - 1:
                acks += 1  # a replayed token's chunk: its caches are rebuilt
                continue
            now = time.perf_counter()
            elapsed_ms = (now - last) * 1000.0
            last = now
            deadline = time.monotonic() + self.step_timeout_s
            token = int(body["token"])
            if int(body.get("step", step)) != step:
                raise SplitFailure(
                    f"node {body.get('node')} answered step {body.get('step')}, expected {step}"
                )
            if replaying:
                replaying = False
            elif step == 0:
                result.prefill_ms = (now - started) * 1000.0
            else:
                result.decode_ms.append(elapsed_ms)
                result.boundary_bytes = list(body.get("bytes", []))
                if self.record_latency:
                    self._pending_latency.append(elapsed_ms)
                    if len(self._pending_latency) >= LATENCY_FLUSH_EVERY:
                        pipe = self.client.pipeline()
                        self._queue_latency(pipe)
                        pipe.execute()
            if eos is not None and token == eos:
                result.finish_reason = "stop"
                return plan
            result.token_ids.append(token)
            if on_token is not None:
                on_token(token)
            step += 1
            if step >= max_new_tokens:
                return plan
            if before_step is not None:
                before_step(step)
                current = self._current_plan()
                if current.version != plan.version:
                    # Leave this run (its loop meets stale_plan on its own) and replay on
                    # the new plan.
                    return current

    def _queue_latency(self, pipe) -> None:
        """Add the per-token latencies measured since the last push to ``pipe``."""
        if not self._pending_latency:
            return
        # LPUSH of several values leaves the last one first: newest first, as before.
        pipe.lpush(latency_key(self.model_key), *(f"{ms:.3f}" for ms in self._pending_latency))
        pipe.ltrim(latency_key(self.model_key), 0, LATENCY_SAMPLES_KEPT - 1)
        self._pending_latency.clear()

    def _end_sessions(self, sessions: list[tuple[ActivePlan, str]]) -> None:
        """Tell each run's route to drop its session's KV caches (fire and forget)."""
        # Best effort: the caches also expire when idle.
        with contextlib.suppress(Exception):
            pipe = self.client.pipeline()
            for plan, session in sessions:
                header = {
                    "s": session,
                    "m": plan.model_key,
                    "v": plan.version,
                    "route": [hop.to_list() for hop in plan.hops],
                    "i": 0,
                    "end": True,
                }
                pipe.rpush(inbox_key(plan.hops[0].node), encode_message(header))
                pipe.delete(reply_key(session))
            self._queue_latency(pipe)
            pipe.execute()


def broadcast_plan(
    client,
    plan: ActivePlan,
    *,
    previous: ActivePlan | None = None,
    timeout_s: float = 120.0,
) -> dict[str, dict]:
    """Send ``plan`` to its nodes, wait until all acknowledge, then publish it as active.

    Nodes of ``previous`` that are not in ``plan`` are told too (they hold nothing for
    the new version). After publication every involved node prunes other versions.
    Returns each node's acknowledgement; raises ``SplitUnavailable`` when a node does not
    acknowledge in time or reports a failure (the old plan then stays active).
    """
    from inference.split.dataplane import active_plan_key, control_key

    ack_key = f"split:ack:{plan.model_key}:{plan.version}:{uuid.uuid4().hex[:8]}"
    # Only the new plan's nodes must acknowledge; nodes leaving it (possibly dead) are
    # just told to prune once the new plan is active.
    involved = list(plan.nodes)
    pipe = client.pipeline()
    for hop in plan.hops:
        command = {
            "op": "load",
            "model_key": plan.model_key,
            "version": plan.version,
            "model_dir": plan.model_dir,
            "start": hop.start,
            "end": hop.end,
            "ack": ack_key,
        }
        pipe.rpush(control_key(hop.node), json.dumps(command))
    pipe.execute()
    acks: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(acks) < len(involved):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = sorted(set(involved) - set(acks))
                raise SplitUnavailable(f"plan v{plan.version}: no acknowledgement from {', '.join(missing)}")
            popped = client.blpop([ack_key], timeout=min(remaining, 1.0))
            if popped is None:
                status = live_nodes(client, involved)
                dead = [n for n, beat in status.items() if beat is None and n not in acks]
                if dead:
                    raise SplitUnavailable(f"plan v{plan.version}: node(s) {', '.join(dead)} are not running")
                continue
            ack = json.loads(popped[1])
            if not ack.get("ok"):
                raise SplitUnavailable(
                    f"plan v{plan.version}: node {ack.get('node')} failed: {ack.get('error')}"
                )
            acks[ack["node"]] = ack
    finally:
        client.delete(ack_key)
    client.set(active_plan_key(plan.model_key), plan.to_json())
    pipe = client.pipeline()
    for node in dict.fromkeys([*plan.nodes, *(previous.nodes if previous else ())]):
        pipe.rpush(
            control_key(node),
            json.dumps({"op": "prune", "model_key": plan.model_key, "keep_version": plan.version}),
        )
    pipe.execute()
    return acks
