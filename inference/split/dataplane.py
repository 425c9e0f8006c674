"""Redis keys and message framing of the split-inference data and control planes.

Data plane (on ``DATAPLANE_REDIS_URL``): each node pops activation messages from its
inbox list ``split:inbox:<node>``; the last partition pushes the sampled token to the
message's reply list and, while the message's ``loop`` bounds (max new tokens, EOS id)
allow, straight back to P1's inbox as the next step's input. A message is one Redis
value: a 4-byte little-endian header length, a JSON header, then a tensor encoded by
``inference.wire`` (token ids for P1, the new positions' hidden states after that). No
pickle anywhere: a node never runs code it reads from Redis.

Control plane: a node also pops ``split:control:<node>`` (load a partition for a plan
version, drop a model) and acknowledges on the list named in the command. Celery tasks
and services put the commands there; the node checks the control list before its inbox,
so a plan change is never stuck behind a queue of activations.

Liveness: a node refreshes ``split:heartbeat:<node>`` (a JSON status with a short TTL);
a missing key means the node is gone.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import torch

from inference.wire import decode_tensor, encode_tensor

# How long a node's heartbeat key lives; it refreshes at a third of this.
HEARTBEAT_TTL_MS = 3000
# Replies and acks nobody collects must not pile up in Redis.
REPLY_TTL_S = 120


def inbox_key(node: str) -> str:
    """Return the list a node pops activation messages from."""
    return f"split:inbox:{node}"


def control_key(node: str) -> str:
    """Return the list a node pops control commands from."""
    return f"split:control:{node}"


def reply_key(session: str) -> str:
    """Return the list a generation run's tokens (and node errors) come back on."""
    return f"split:reply:{session}"


def heartbeat_key(node: str) -> str:
    """Return the key a live node keeps refreshed."""
    return f"split:heartbeat:{node}"


def active_plan_key(model_key: str) -> str:
    """Return the key holding a model's active plan (JSON), read by coordinators per token."""
    return f"split:active:{model_key}"


def latency_key(model_key: str) -> str:
    """Return the list of recent per-token latencies (ms) the orchestrator averages."""
    return f"split:latency:{model_key}"


def privacy_key(model_key: str) -> str:
    """Return the counter of privacy=high requests refused since the orchestrator last looked."""
    return f"split:privacy:{model_key}"


class MessageError(ValueError):
    """A data-plane value that is not a framed message."""


def encode_message(header: dict[str, Any], tensor: torch.Tensor | None = None) -> bytes:
    """Return header + optional tensor as one Redis value."""
    return frame_message(header, encode_tensor(tensor) if tensor is not None else b"")


def frame_message(header: dict[str, Any], payload: bytes) -> bytes:
    """Return header + an already encoded tensor payload as one Redis value."""
    raw_header = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(raw_header)) + raw_header + payload


def split_message(value: bytes) -> tuple[dict[str, Any], bytes]:
    """Return the header of a framed message and its payload bytes, undecoded."""
    if len(value) < 4:
        raise MessageError("message shorter than its length prefix")
    (length,) = struct.unpack_from("<I", value, 0)
    if len(value) < 4 + length:
        raise MessageError("message ends inside its header")
    try:
        header = json.loads(value[4 : 4 + length])
    except ValueError as exc:
        raise MessageError(f"message header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise MessageError("message header is not an object")
    return header, value[4 + length :]


def decode_message(value: bytes) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Return the header and tensor of a framed message."""
    header, body = split_message(value)
    return header, (decode_tensor(body) if body else None)


@dataclass(frozen=True)
class Hop:
    """One partition of a route: layers ``[start, end)`` on ``node``."""

    start: int
    end: int
    node: str

    def to_list(self) -> list:
        """Return the compact JSON form ``[start, end, node]``."""
        return [self.start, self.end, self.node]


@dataclass(frozen=True)
class ActivePlan:
    """The plan a coordinator routes by: a version and its partitions in pipeline order."""

    model_key: str
    version: int
    hops: tuple[Hop, ...]
    model_dir: str

    @property
    def nodes(self) -> tuple[str, ...]:
        """Return the nodes in pipeline order."""
        return tuple(hop.node for hop in self.hops)

    def to_json(self) -> str:
        """Return the JSON stored under ``active_plan_key``."""
        return json.dumps(
            {
                "model_key": self.model_key,
                "version": self.version,
                "hops": [hop.to_list() for hop in self.hops],
                "model_dir": self.model_dir,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ActivePlan:
        """Parse ``to_json`` output."""
        data = json.loads(raw)
        return cls(
            model_key=data["model_key"],
            version=int(data["version"]),
            hops=tuple(Hop(int(s), int(e), str(n)) for s, e, n in data["hops"]),
            model_dir=data["model_dir"],
        )


def read_active_plan(client, model_key: str) -> ActivePlan | None:
    """Return the model's active plan from Redis, or None when it has none."""
    raw = client.get(active_plan_key(model_key))
    return ActivePlan.from_json(raw) if raw else None


def live_nodes(client, nodes: list[str] | tuple[str, ...]) -> dict[str, dict | None]:
    """Return each node's heartbeat status (None for a node whose heartbeat expired)."""
    if not nodes:
        return {}
    values = client.mget([heartbeat_key(node) for node in nodes])
    return {node: (json.loads(value) if value else None) for node, value in zip(nodes, values, strict=True)}
