"""The split-inference node process: holds partitions and serves activations from Redis.

One process per node, single-threaded for the data plane: it pops the control list
before its inbox (``BLPOP`` honours key order), so a plan change is applied between two
activation messages and never concurrently with one. A second thread refreshes the
heartbeat key, so a node busy with a long prefill still counts as alive, and echoes link
probes from other nodes; a third measures this node's links to its peers
(``inference.split.links``). Neither touches the inbox.

Per model the node keeps the runners of the two most recent plan versions it was told
about: messages of the still-active plan are served while the next one is being
broadcast, and anything older is rejected as ``stale_plan`` so the coordinator re-reads
the active plan and replays. A runner whose layer range is unchanged between versions is
reused (weights and KV caches stay).

Run with ``python manage.py run_split_node --node <name>`` (registers the node in the
database) or, without Django, ``python -m inference.split.node --node <name>
--redis-url <url>`` (used by the benchmark).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from inference.partition import CacheMiss, PartitionRunner
from inference.runtime import SamplingParams, select_next_token
from inference.split.dataplane import (
    HEARTBEAT_TTL_MS,
    REPLY_TTL_S,
    MessageError,
    control_key,
    decode_message,
    encode_message,
    frame_message,
    heartbeat_key,
    inbox_key,
)
from inference.split.links import (
    DEFAULT_PAYLOAD_BYTES,
    LinkProber,
    answer_probe,
    probe_key,
    register_node,
    unregister_node,
)
from inference.wire import encode_tensor

logger = logging.getLogger(__name__)

# Versions per model a node keeps: the active one and the one being broadcast.
KEPT_VERSIONS = 2
# A session untouched this long is a generation whose coordinator went away.
IDLE_SESSION_S = 600.0
POLL_TIMEOUT_S = 0.5
# How long a node polls its Redis socket (instead of sleeping in BLPOP) after serving a
# message, when spinning is on. A pipeline's next message usually comes within one token.
DEFAULT_SPIN_S = 0.0


def redis_client(url: str):
    """Return a binary-safe Redis client for ``url``."""
    import redis

    return redis.Redis.from_url(url)


class NodeServer:
    """The state and message handlers of one node (see the module docstring)."""

    def __init__(
        self, name: str, client, *, device: str | None = "cpu", spin_s: float = DEFAULT_SPIN_S
    ) -> None:
        self.name = name
        self.client = client
        self.device = device
        self.spin_s = spin_s
        # model_key -> {version: runner or None (this node has no partition in it)}
        self.assignments: dict[str, dict[int, PartitionRunner | None]] = {}
        self.messages_served = 0
        # Wall time spent serving messages, and the CPU time of the serving thread in them
        # (less than the wall time when the node shares its core with other processes).
        self.busy_s = 0.0
        self.cpu_s = 0.0

    # Control plane -------------------------------------------------------------------

    def handle_control(self, command: dict[str, Any]) -> None:
        op = command.get("op")
        ack: dict[str, Any] = {"node": self.name, "op": op, "ok": True}
        try:
            if op == "load":
                ack["layers"] = self._load(command)
            elif op == "prune":
                self._prune(str(command["model_key"]), int(command["keep_version"]))
            elif op == "drop":
                self.assignments.pop(str(command["model_key"]), None)
            else:
                raise ValueError(f"unknown control op {op!r}")
        except Exception as exc:  # the broadcaster must hear why, not wait for a timeout
            logger.exception("control command %s failed", op)
            ack.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        ack["version"] = command.get("version")
        if command.get("ack"):
            pipe = self.client.pipeline()
            pipe.rpush(command["ack"], json.dumps(ack))
            pipe.expire(command["ack"], REPLY_TTL_S)
            pipe.execute()

    def _load(self, command: dict[str, Any]) -> list[int]:
        model_key = str(command["model_key"])
        version = int(command["version"])
        versions = self.assignments.setdefault(model_key, {})
        start, end = command.get("start"), command.get("end")
        runner = None
        if start is not None:
            start, end = int(start), int(end)
            model_dir = os.path.realpath(command["model_dir"])
            runner = next(
                (
                    held
                    for held in versions.values()
                    if held is not None
                    and str(held.model_dir) == model_dir
                    and (held.start_layer, held.end_layer) == (start, end)
                ),
                None,
            )
            if runner is None:
                runner = PartitionRunner(model_dir, start, end, device=self.device)
        versions[version] = runner
        for old in sorted(versions)[:-KEPT_VERSIONS]:
            del versions[old]
        return [] if runner is None else [runner.start_layer, runner.end_layer]

    def _prune(self, model_key: str, keep_version: int) -> None:
        versions = self.assignments.get(model_key, {})
        for version in [v for v in versions if v != keep_version]:
            del versions[version]

    # Data plane ----------------------------------------------------------------------

    def _reply(self, header: dict[str, Any], body: dict[str, Any]) -> None:
        body.setdefault("seq", header.get("seq"))
        body.setdefault("node", self.name)
        pipe = self.client.pipeline()
        pipe.rpush(header["reply"], json.dumps(body))
        pipe.expire(header["reply"], REPLY_TTL_S)
        pipe.execute()

    def handle_message(self, value: bytes) -> None:
        try:
            header, tensor = decode_message(value)
        except MessageError:
            logger.warning("dropped a malformed data-plane message")
            return
        route = header.get("route") or []
        index = int(header.get("i", 0))
        if not 0 <= index < len(route) or route[index][2] != self.name:
            if header.get("reply"):
                self._reply(header, {"error": "misrouted", "detail": f"hop {index} is not {self.name}"})
            return
        start, end = int(route[index][0]), int(route[index][1])
        runner = self.assignments.get(str(header.get("m")), {}).get(int(header.get("v", -1)))
        if header.get("end"):
            if runner is not None:
                runner.drop_session(str(header["s"]))
            self._forward(header, index, route, None)
            return
        if runner is None or (runner.start_layer, runner.end_layer) != (start, end):
            self._reply(
                header,
                {
                    "error": "stale_plan",
                    "detail": f"{self.name} does not hold layers {start}-{end} of v{header.get('v')}",
                },
            )
            return
        session = str(header["s"])
        position = int(header["pos"])
        if index == 0 and tensor is not None:
            header["len"] = int(tensor.shape[-1])  # positions in this chunk (token ids at P1)
        if position == 0:
            # A chunk at position 0 starts the session (again): a replay after a re-plan.
            runner.reset_session(session)
        try:
            result = runner.forward(session, tensor, position)
        except CacheMiss as exc:
            self._reply(header, {"error": "cache_miss", "detail": str(exc)})
            return
        except Exception as exc:
            logger.exception("forward failed")
            self._reply(header, {"error": "failed", "detail": f"{type(exc).__name__}: {exc}"})
            return
        self.messages_served += 1
        if index + 1 < len(route):
            self._forward(header, index, route, result)
            return
        temperature, top_p, seed = header.get("samp") or (0.0, 1.0, None)
        step = int(header["step"])
        token = select_next_token(result, SamplingParams(float(temperature), float(top_p), seed), step)
        pipe = self.client.pipeline()
        loop = header.get("loop")
        if loop and step + 1 < int(loop[0]) and (loop[1] is None or token != int(loop[1])):
            # Hand the token straight to P1 as the next step's input: the coordinator
            # only collects tokens and is not a hop of the pipeline.
            per_step = ("b", "i", "pos", "len", "step", "seq")
            following = {key: value for key, value in header.items() if key not in per_step}
            following.update(
                i=0,
                pos=position + int(header["len"]),
                len=1,
                step=step + 1,
                seq=int(header.get("seq", 0)) + 1,
            )
            pipe.rpush(inbox_key(route[0][2]), encode_message(following, torch.tensor([token])))
        body = {
            "token": token,
            "step": step,
            "bytes": header.get("b", []),
            "seq": header.get("seq"),
            "node": self.name,
        }
        pipe.rpush(header["reply"], json.dumps(body))
        pipe.expire(header["reply"], REPLY_TTL_S)
        pipe.execute()

    def _forward(self, header: dict[str, Any], index: int, route: list, hidden: torch.Tensor | None) -> None:
        if index + 1 >= len(route):
            return
        forwarded = dict(header, i=index + 1)
        payload = b""
        if hidden is not None:
            payload = encode_tensor(hidden)
            # Tensor bytes that crossed each boundary, reported back to the coordinator.
            forwarded["b"] = [*header.get("b", []), len(payload)]
        self.client.rpush(inbox_key(route[index + 1][2]), frame_message(forwarded, payload))

    # Loop ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return the heartbeat payload: what is loaded and how busy the node is."""
        return {
            "pid": os.getpid(),
            "models": {
                key: {
                    str(v): (None if r is None else [r.start_layer, r.end_layer]) for v, r in versions.items()
                }
                for key, versions in self.assignments.items()
            },
            "messages": self.messages_served,
            "busy_s": round(self.busy_s, 4),
            "cpu_s": round(self.cpu_s, 4),
        }

    def pop(self, keys: list[str], spin_until: float) -> tuple[bytes, bytes] | None:
        """Pop the next control command or message (``BLPOP``, key order), waiting at most POLL_TIMEOUT_S.

        Before ``spin_until`` the node waits by polling its socket rather than sleeping in the
        kernel: a process that sleeps between tokens wakes on a core whose caches others
        used, and pays for it in its next forward. Spinning is for nodes with a core of their
        own (``--spin-ms``); it sends no extra Redis commands.
        """
        if time.perf_counter() >= spin_until:
            popped = self.client.blpop(keys, timeout=POLL_TIMEOUT_S)
            return None if popped is None else (popped[0], popped[1])
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command("BLPOP", *keys, POLL_TIMEOUT_S)
            while time.perf_counter() < spin_until and not connection.can_read(timeout=0):
                os.sched_yield()
            popped = connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return None if popped is None else (popped[0], popped[1])

    def serve(self, stop: threading.Event, on_idle: Callable[[], None] | None = None) -> None:
        keys = [control_key(self.name), inbox_key(self.name)]
        last_cleanup = time.monotonic()
        spin_until = 0.0
        while not stop.is_set():
            popped = self.pop(keys, spin_until)
            if popped is not None:
                key, value = popped
                started, started_cpu = time.perf_counter(), time.thread_time()
                if key.decode() == keys[0]:
                    try:
                        command = json.loads(value)
                    except ValueError:
                        logger.warning("dropped a malformed control command")
                        continue
                    self.handle_control(command)
                else:
                    try:
                        self.handle_message(value)
                    except Exception:  # a malformed header must not take the node down
                        logger.exception("dropped a data-plane message that could not be handled")
                finished = time.perf_counter()
                self.busy_s += finished - started
                self.cpu_s += time.thread_time() - started_cpu
                spin_until = finished + self.spin_s
                continue
            if on_idle is not None:
                on_idle()
            if time.monotonic() - last_cleanup > 60:
                last_cleanup = time.monotonic()
                for versions in self.assignments.values():
                    for runner in versions.values():
                        if runner is not None:
                            runner.drop_idle_sessions(IDLE_SESSION_S)


def heartbeat_loop(name: str, url: str, server: NodeServer, stop: threading.Event) -> None:
    """Refresh the node's heartbeat key and echo link probes until ``stop``.

    Own client: the main one blocks on the inbox. Probes (``inference.split.links``) are
    answered here, between beats, so they never queue ahead of activations.
    """
    client = redis_client(url)
    last_busy, last_time = server.busy_s, time.monotonic()
    utilisation = 0.0
    beat_every_s = HEARTBEAT_TTL_MS / 3000
    next_beat = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_beat:
            next_beat = now + beat_every_s
            # Share of wall time the data plane spent working since the last beat.
            utilisation = min(max((server.busy_s - last_busy) / max(now - last_time, 1e-6), 0.0), 1.0)
            last_busy, last_time = server.busy_s, now
            payload = dict(server.status(), utilisation=round(utilisation, 4))
            try:
                pipe = client.pipeline()
                pipe.set(heartbeat_key(name), json.dumps(payload), px=HEARTBEAT_TTL_MS)
                register_node(pipe, name)
                pipe.execute()
            except Exception:  # Redis restarting: keep trying, the key just expires meanwhile
                logger.warning("heartbeat failed", exc_info=True)
        try:
            popped = client.blpop([probe_key(name)], timeout=max(next_beat - time.monotonic(), 0.01))
            if popped is not None:
                answer_probe(client, popped[1])
        except Exception:
            logger.warning("link probe echo failed", exc_info=True)
            stop.wait(max(next_beat - time.monotonic(), 0.0))


def run_node(
    name: str,
    url: str,
    *,
    device: str | None = "cpu",
    threads: int | None = None,
    on_idle: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    probe_interval_s: float | None = None,
    probe_bytes: int = DEFAULT_PAYLOAD_BYTES,
    spin_s: float = DEFAULT_SPIN_S,
) -> None:
    """Serve as node ``name`` on the Redis at ``url`` until ``stop`` is set (or forever).

    With ``probe_interval_s`` the node also measures its links to the other live nodes
    that often (``inference.split.links``); it always answers their probes.
    """
    if threads:
        torch.set_num_threads(threads)
    stop = stop or threading.Event()
    server = NodeServer(name, redis_client(url), device=device, spin_s=spin_s)
    beat = threading.Thread(
        target=heartbeat_loop, args=(name, url, server, stop), daemon=True, name="heartbeat"
    )
    beat.start()  # its first beat also registers the node among the peers
    if probe_interval_s:
        prober = LinkProber(name, redis_client(url), interval_s=probe_interval_s, payload_bytes=probe_bytes)
        threading.Thread(target=prober.run, args=(stop,), daemon=True, name="link-probe").start()
    logger.info("split node %s serving on %s", name, url)
    try:
        server.serve(stop, on_idle)
    finally:
        stop.set()
        client = redis_client(url)
        client.delete(heartbeat_key(name))
        unregister_node(client, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve split-inference partitions (no database).")
    parser.add_argument("--node", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--probe-interval-s", type=float, default=0.0, help="measure links to peers this often (0: never)"
    )
    parser.add_argument("--probe-bytes", type=int, default=DEFAULT_PAYLOAD_BYTES)
    parser.add_argument(
        "--spin-ms",
        type=float,
        default=DEFAULT_SPIN_S * 1000,
        help="poll the socket, not sleep, this long after a message",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run_node(
        args.node,
        args.redis_url,
        device=args.device,
        threads=args.threads,
        probe_interval_s=args.probe_interval_s or None,
        probe_bytes=args.probe_bytes,
        spin_s=args.spin_ms / 1000.0,
    )


if __name__ == "__main__":
    main()
