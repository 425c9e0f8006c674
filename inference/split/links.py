"""Link probing between split nodes through the data-plane Redis (Monitoring & CP for links).

Nodes may run on different hosts and never open sockets to each other: everything they
share is the data-plane Redis, so a link is measured along the path activations take.
Node A measures its link to a live peer B with messages on B's probe list
``split:probe:<B>``, which B's heartbeat thread answers by pushing each message back
unchanged to the reply list named in it (``split:probe-reply:<A>:<run>``). Probes never
enter the inbox or control list: the data-plane loop is untouched and an activation never
waits behind a probe.

One measurement of A's link to B:

- RTT: the median round trip A -> Redis -> B -> Redis -> A of ``PINGS`` header-only
  messages;
- bandwidth: ``ROUNDS`` round trips of a payload of ``payload_bytes`` (about the hidden
  state of a prompt crossing a boundary); the payload crosses the link twice, so
  ``2 * payload_bytes * 8`` bits over the median round trip minus the RTT, in Mbit/s.

The result goes to ``split:link:<A>:<B>`` (JSON: ``rtt_ms``, ``mbit_s``, ``measured_at``,
``ttl_s``, ...) with a TTL of ``STALE_INTERVALS`` probe intervals. A peer that stops
heart-beating is no longer probed and one that does not answer within ``TIMEOUT_S`` is
not recorded, so its link expires and the planner falls back to the configured figure.
``inference.split.services.split_links_sync`` copies the keys into the database rows the
planner reads. No Django here.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from inference.split.dataplane import MessageError, frame_message, live_nodes, split_message

logger = logging.getLogger(__name__)

# Sorted set of node names scored by when each last beat; a member without a current
# heartbeat is not a peer, and one not seen for FORGET_AFTER_S is dropped.
NODES_KEY = "split:nodes:seen"
FORGET_AFTER_S = 3600.0
PROBE_REPLY_PREFIX = "split:probe-reply:"
# Round trips per measurement: medians of a few drop the odd scheduling hiccup.
PINGS = 5
ROUNDS = 3
# A peer that does not echo within this is not measured this time (dead or stuck).
TIMEOUT_S = 2.0
# A measurement lives this many probe intervals: one missed probe does not drop it,
# a peer that stopped answering falls back to the configured figure within three.
STALE_INTERVALS = 3
# How often the prober looks for peers it has not measured yet (a node that just started).
DISCOVERY_S = 2.0
# A transfer shorter than this is timer noise (a local Redis): the bandwidth is capped there.
MIN_TRANSFER_S = 1e-5
# About the hidden state of a 128-token prompt of the default model (384 float32 per position).
DEFAULT_PAYLOAD_BYTES = 128 * 384 * 4
DEFAULT_INTERVAL_S = 30.0


def probe_key(node: str) -> str:
    """Return the list a node's heartbeat thread pops probe messages from."""
    return f"split:probe:{node}"


def link_key(source: str, target: str) -> str:
    """Return the key holding ``source``'s latest measurement of its link to ``target``."""
    return f"split:link:{source}:{target}"


@dataclass(frozen=True)
class LinkMeasurement:
    """One node's measurement of its link to a peer (the JSON under ``link_key``)."""

    source: str
    target: str
    rtt_ms: float
    mbit_s: float
    payload_bytes: int
    pings: int
    rounds: int
    measured_at: float  # Unix time on the measuring node
    ttl_s: float

    def to_json(self) -> str:
        """Return the JSON stored under ``link_key``."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> LinkMeasurement:
        """Parse ``to_json`` output; ``ValueError`` when it is not a usable measurement."""
        data = json.loads(raw)
        try:
            measurement = cls(
                source=str(data["source"]),
                target=str(data["target"]),
                rtt_ms=float(data["rtt_ms"]),
                mbit_s=float(data["mbit_s"]),
                payload_bytes=int(data["payload_bytes"]),
                pings=int(data["pings"]),
                rounds=int(data["rounds"]),
                measured_at=float(data["measured_at"]),
                ttl_s=float(data["ttl_s"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a link measurement: {exc}") from exc
        if not (measurement.rtt_ms > 0 and measurement.mbit_s > 0 and measurement.ttl_s > 0):
            raise ValueError("a link measurement needs a positive RTT, bandwidth and TTL")
        return measurement


def _probe_header(value: bytes) -> dict[str, Any] | None:
    """Return the JSON header of a framed probe message (None if malformed), payload untouched."""
    try:
        return split_message(value)[0]
    except MessageError:
        return None


def answer_probe(client, value: bytes) -> bool:
    """Push a probe message back, unchanged, to the reply list it names; False if malformed."""
    header = _probe_header(value)
    reply = header.get("reply") if header else None
    # Only probe reply lists: a value in a probe list cannot make the node write elsewhere.
    if not isinstance(reply, str) or not reply.startswith(PROBE_REPLY_PREFIX):
        return False
    pipe = client.pipeline()
    pipe.rpush(reply, value)
    pipe.expire(reply, int(TIMEOUT_S * 5))
    pipe.execute()
    return True


def register_node(client, name: str) -> None:
    """Record ``name`` as seen now among the nodes peers look for (refreshed with each beat)."""
    client.zadd(NODES_KEY, {name: time.time()})


def unregister_node(client, name: str) -> None:
    """Remove a node that stops cleanly from the peers others probe."""
    client.zrem(NODES_KEY, name)


def live_peers(client, name: str) -> list[str]:
    """Return the other registered nodes whose heartbeat is current, sorted.

    Names not seen for ``FORGET_AFTER_S`` (killed nodes, short-lived test nodes) are
    dropped from the registry on the way.
    """
    pipe = client.pipeline()
    pipe.zremrangebyscore(NODES_KEY, "-inf", time.time() - FORGET_AFTER_S)
    pipe.zrange(NODES_KEY, 0, -1)
    _, raw = pipe.execute()
    members = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)
    others = [m for m in members if m != name]
    return [peer for peer, beat in live_nodes(client, others).items() if beat is not None]


class LinkProber:
    """Measures one node's links to its live peers (see the module docstring)."""

    def __init__(
        self,
        name: str,
        client,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        if interval_s <= 0 or payload_bytes <= 0:
            raise ValueError("probe interval and payload size must be positive")
        self.name = name
        self.client = client
        self.interval_s = float(interval_s)
        self.timeout_s = float(timeout_s)
        # Random bytes: a link that compresses must not look faster than it is for activations.
        self.payload = os.urandom(int(payload_bytes))
        self.last_attempt: dict[str, float] = {}

    @property
    def ttl_s(self) -> float:
        """Return how long a measurement is kept without being refreshed."""
        return STALE_INTERVALS * self.interval_s

    def _round_trip(self, peer: str, reply: str, seq: int, payload: bytes) -> float | None:
        """Return one echo's round trip in seconds, or None when the peer did not answer."""
        message = frame_message({"reply": reply, "seq": seq, "from": self.name}, payload)
        started = time.perf_counter()
        pipe = self.client.pipeline()
        pipe.rpush(probe_key(peer), message)
        # A dead peer's probe list must not keep payloads around.
        pipe.expire(probe_key(peer), int(self.timeout_s * 5))
        pipe.execute()
        deadline = started + self.timeout_s
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            popped = self.client.blpop([reply], timeout=max(remaining, 0.01))
            if popped is None:
                return None
            header = _probe_header(popped[1])
            # A late echo of an earlier timed-out message is not this one.
            if header is not None and header.get("seq") == seq:
                return time.perf_counter() - started

    def measure(self, peer: str) -> LinkMeasurement | None:
        """Return this node's measurement of its link to ``peer``, or None if it did not answer."""
        reply = f"{PROBE_REPLY_PREFIX}{self.name}:{uuid.uuid4().hex[:12]}"
        try:
            pings = []
            for seq in range(PINGS):
                elapsed = self._round_trip(peer, reply, seq, b"")
                if elapsed is None:
                    return None
                pings.append(elapsed)
            rounds = []
            for seq in range(PINGS, PINGS + ROUNDS):
                elapsed = self._round_trip(peer, reply, seq, self.payload)
                if elapsed is None:
                    return None
                rounds.append(elapsed)
        finally:
            self.client.delete(reply)
        rtt_s = statistics.median(pings)
        transfer_s = max(statistics.median(rounds) - rtt_s, MIN_TRANSFER_S)
        return LinkMeasurement(
            source=self.name,
            target=peer,
            rtt_ms=round(rtt_s * 1000.0, 4),
            mbit_s=round(2 * len(self.payload) * 8 / transfer_s / 1e6, 3),
            payload_bytes=len(self.payload),
            pings=PINGS,
            rounds=ROUNDS,
            measured_at=time.time(),
            ttl_s=self.ttl_s,
        )

    def store(self, measurement: LinkMeasurement) -> None:
        """Write a measurement to ``link_key`` with its TTL."""
        self.client.set(
            link_key(measurement.source, measurement.target),
            measurement.to_json(),
            px=int(measurement.ttl_s * 1000),
        )

    def probe_due(self) -> list[LinkMeasurement]:
        """Measure every live peer not tried for an interval; store and return the results."""
        done = []
        for peer in live_peers(self.client, self.name):
            if time.monotonic() - self.last_attempt.get(peer, float("-inf")) < self.interval_s:
                continue
            self.last_attempt[peer] = time.monotonic()
            measurement = self.measure(peer)
            if measurement is None:
                logger.info("link probe %s -> %s: no answer within %.1f s", self.name, peer, self.timeout_s)
                continue
            self.store(measurement)
            done.append(measurement)
        return done

    def run(self, stop: threading.Event) -> None:
        """Probe due peers until ``stop``; a new peer is measured within ``DISCOVERY_S``."""
        while not stop.is_set():
            try:
                self.probe_due()
            except Exception:  # Redis restarting: the links just expire meanwhile
                logger.warning("link probe failed", exc_info=True)
            stop.wait(min(self.interval_s, DISCOVERY_S))
