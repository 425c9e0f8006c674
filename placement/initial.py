"""Initial placement strategies (patent paragraph 64, FIG. 2.1 step 202). Pure Python."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A production environment as the initial placement rules see it."""

    id: int
    slug: str
    trusted: bool
    gpu_count: int
    gpus_in_use: int
    # front-end device id -> (bandwidth_mbps, rtt_ms) of the link to this environment
    links: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def free_gpus(self) -> int:
        """Return the GPUs not taken by workloads placed here."""
        return max(self.gpu_count - self.gpus_in_use, 0)


# A request and its payload on the wire, for ranking links by transfer time (1 MB).
REFERENCE_TRANSFER_BITS = 8_000_000


def front_end_cost_ms(candidate: Candidate, front_end_ids: list[int]) -> float:
    """Return the mean time to move a reference payload to and from the front ends (inf if unlinked)."""
    if not front_end_ids:
        return 0.0
    total = 0.0
    for device_id in front_end_ids:
        link = candidate.links.get(device_id)
        if link is None:
            return math.inf
        bandwidth_mbps, rtt_ms = link
        total += rtt_ms + REFERENCE_TRANSFER_BITS / (bandwidth_mbps * 1000.0)
    return total / len(front_end_ids)


def choose_environment(
    strategy: str,
    candidates: list[Candidate],
    *,
    gpus_required: int = 0,
    trusted_only: bool = False,
    fixed_id: int | None = None,
    front_end_ids: list[int] | None = None,
) -> Candidate | None:
    """Return the environment a strategy picks among active candidates, or None if none fits."""
    pool = [c for c in candidates if (c.trusted or not trusted_only)]
    pool = [c for c in pool if c.free_gpus >= gpus_required or c.id == fixed_id]
    if strategy == "fixed":
        return next((c for c in pool if c.id == fixed_id), None)
    if not pool:
        return None
    if strategy == "most_free_gpus":
        # Ties go to the lowest id so the choice is stable across runs.
        return max(pool, key=lambda c: (c.free_gpus, -c.id))
    if strategy == "nearest_front_end":
        ids = front_end_ids or []
        best = min(pool, key=lambda c: (front_end_cost_ms(c, ids), c.id))
        return None if math.isinf(front_end_cost_ms(best, ids)) else best
    raise ValueError(f"unknown initial placement strategy {strategy!r}")
