"""Network links as the data path sees them.

On one machine every environment is a worker process on the same host, so the front-end
links of the demo cannot be measured: they carry *configured* figures (bandwidth, RTT) that
an administrator typed in. The serving path honours them by waiting ``transfer_delay_ms``
for each payload it moves, so the latency the monitoring agent records behaves like it would
on those links. Samples produced that way are marked ``configured``; figures from real probes
(Redis and database round trips, task dispatch delay) are marked ``measured``.
"""

from __future__ import annotations

import time
from typing import Protocol

from placement.features import UNLINKED, LinkFigures, transfer_ms


class HasLinkFigures(Protocol):
    bandwidth_mbps: float
    rtt_ms: float


def transfer_delay_ms(link: HasLinkFigures | None, payload_bytes: float) -> float:
    """Return the one-way time to move a payload over a link: half its RTT plus serialisation.

    ``link`` is a ``NetworkLink`` row or anything with ``bandwidth_mbps`` and ``rtt_ms``; None
    means no configured link, and the public-internet assumption of the placement model is used
    (50 Mbit/s, 40 ms RTT). A request and its reply cost one call each.
    """
    if payload_bytes < 0:
        raise ValueError("payload_bytes must not be negative")
    figures = UNLINKED if link is None else LinkFigures(float(link.bandwidth_mbps), float(link.rtt_ms))
    return transfer_ms(figures, payload_bytes)


def simulate_transfer(link: HasLinkFigures | None, payload_bytes: float) -> float:
    """Wait as long as the payload would take on the link; return the milliseconds waited."""
    delay_ms = transfer_delay_ms(link, payload_bytes)
    started = time.perf_counter()
    time.sleep(delay_ms / 1000.0)
    return (time.perf_counter() - started) * 1000.0
