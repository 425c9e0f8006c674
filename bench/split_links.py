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
import time
import uuid

from django.conf import settings

from bench.split import bench_nodes
from inference.split.links import LinkMeasurement, LinkProber, link_key
from inference.split.node import redis_client


def run(quick: bool = False) -> dict[str, float | int]:
    wanted = 6 if quick else 20
    url = settings.DATAPLANE_REDIS_URL
    client = redis_client(url)
    run_id = uuid.uuid4().hex[:6]
    names = [f"bench-link-{run_id}-{i}" for i in range(2)]
    probing = ("--probe-interval-s", "2", "--probe-bytes", str(settings.SPLIT_LINK_PROBE_BYTES))
    try:
        with bench_nodes(names, *probing):
            samples, probe_ms = _measure(client, names, run_id, wanted, quick)
    finally:
        client.delete(*(link_key(a, b) for a, b in [(names[0], names[1]), (names[1], names[0])]))
    return {
        "split_links.samples": len(samples),
        "split_links.payload_bytes": samples[0].payload_bytes,
        "split_links.rtt_ms": round(statistics.median(m.rtt_ms for m in samples), 3),
        "split_links.mbit_s": round(statistics.median(m.mbit_s for m in samples), 1),
        "split_links.probe_ms": round(statistics.median(probe_ms), 2) if probe_ms else -1.0,
    }


def _measure(client, names: list[str], run_id: str, wanted: int, quick: bool):
    """Collect the nodes' own link measurements, then time a prober's measurement of one."""
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
    return samples, probe_ms
