"""Link probes between two split-node processes on this machine, through the data-plane Redis.

Two ``python -m inference.split.node`` processes probe each other every 2 s with the
default payload (``SPLIT_LINK_PROBE_BYTES``); the bench reads each new measurement from
``split:link:<a>:<b>`` / ``<b>:<a>`` and reports medians. It also times one whole probe
(5 pings and 3 payload round trips) from the bench process against a node, which is what a
node spends per peer per interval.

Keys: ``split_links.rtt_ms`` and ``split_links.mbit_s`` (medians over both directions'
measurements), ``split_links.samples``, ``split_links.payload_bytes``,
``split_links.probe_ms`` (median wall time of one measurement of one peer). On loopback
Redis these measure Redis and the Python clients, not a network.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

from inference.split.dataplane import live_nodes
from inference.split.links import LinkMeasurement, LinkProber, link_key
from inference.split.node import redis_client


def run(quick: bool = False) -> dict[str, float | int]:
    wanted = 6 if quick else 20
    url = settings.DATAPLANE_REDIS_URL
    client = redis_client(url)
    run_id = uuid.uuid4().hex[:6]
    names = [f"bench-link-{run_id}-{i}" for i in range(2)]
    log_dir = Path(settings.VAR_DIR) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for name in names:
        log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "inference.split.node",
                    "--node",
                    name,
                    "--redis-url",
                    url,
                    "--threads",
                    "1",
                    "--probe-interval-s",
                    "2",
                    "--probe-bytes",
                    str(settings.SPLIT_LINK_PROBE_BYTES),
                ],
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        deadline = time.monotonic() + 180
        while not all(live_nodes(client, names).values()):
            if time.monotonic() > deadline:
                raise RuntimeError("bench link nodes did not start within 180 s")
            time.sleep(0.2)
        seen: dict[tuple[str, str], float] = {}
        samples: list[LinkMeasurement] = []
        deadline = time.monotonic() + 30 + wanted * 3
        keys = [(names[0], names[1]), (names[1], names[0])]
        while len(samples) < wanted and time.monotonic() < deadline:
            for pair in keys:
                raw = client.get(link_key(*pair))
                if raw is None:
                    continue
                measurement = LinkMeasurement.from_json(raw)
                if seen.get(pair) != measurement.measured_at:
                    seen[pair] = measurement.measured_at
                    samples.append(measurement)
            time.sleep(0.2)
        if not samples:
            raise RuntimeError("the nodes stored no link measurement")
        payload_bytes = settings.SPLIT_LINK_PROBE_BYTES
        prober = LinkProber(f"bench-link-{run_id}-probe", client, payload_bytes=payload_bytes)
        probe_ms = []
        for _ in range(3 if quick else 10):
            started = time.perf_counter()
            if prober.measure(names[0]) is not None:
                probe_ms.append((time.perf_counter() - started) * 1000.0)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        client.delete(*(link_key(a, b) for a, b in [(names[0], names[1]), (names[1], names[0])]))
    return {
        "split_links.samples": len(samples),
        "split_links.payload_bytes": samples[0].payload_bytes,
        "split_links.rtt_ms": round(statistics.median(m.rtt_ms for m in samples), 3),
        "split_links.mbit_s": round(statistics.median(m.mbit_s for m in samples), 1),
        "split_links.probe_ms": round(statistics.median(probe_ms), 2) if probe_ms else -1.0,
    }
