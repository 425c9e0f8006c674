"""Synthetic requests from a front-end device to a workload, through the real path.

The probe plays the front-end device: it waits the configured transfer time of its link for
the request, enqueues a real generation on the queue of the environment the workload is
routed to *now* (``Workload.environment``, re-read for every request, as the gateway does),
waits for the answer, waits the transfer time of the reply, and records the latency split.
The demo scenario and the integration tests use it to produce the telemetry of FIG. 2.1
step 204; in production the gateway's real requests produce the same samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from placement.dispatch import send_to_environment
from placement.models import NetworkLink, Workload
from telemetry.links import simulate_transfer
from telemetry.models import Source
from telemetry.services import request_latency_record


@dataclass(frozen=True)
class ProbeResult:
    """One synthetic request's latency split (ms) and where it was served."""

    environment_slug: str
    front_end_device_id: int
    transfer_ms: float
    queue_ms: float
    compute_ms: float

    @property
    def total_ms(self) -> float:
        """Return the end-to-end latency the front-end device saw."""
        return self.transfer_ms + self.queue_ms + self.compute_ms


def probe_request(
    *,
    workload_id: int,
    front_end_device_id: int,
    request_bytes: int,
    response_bytes: int,
    timeout_s: float = 120.0,
) -> ProbeResult:
    """Send one synthetic request from a front-end device to the workload and record it."""
    from telemetry.tasks import workload_compute_probe

    workload = Workload.objects.select_related("environment").get(pk=workload_id)
    environment = workload.environment
    if environment is None:
        raise ValueError(f"workload {workload.name!r} is not placed")
    link = NetworkLink.objects.filter(
        front_end_device_id=front_end_device_id, environment=environment
    ).first()
    transfer_in_ms = simulate_transfer(link, request_bytes)
    enqueued_at = time.time()
    answer = send_to_environment(environment, workload_compute_probe, [workload_id, enqueued_at]).get(
        timeout=timeout_s
    )
    transfer_out_ms = simulate_transfer(link, response_bytes)
    figures = Source.MEASURED if link is not None and link.figures_source == "measured" else Source.CONFIGURED
    request_latency_record(
        workload_id=workload_id,
        environment_id=environment.id,
        transfer_ms=transfer_in_ms + transfer_out_ms,
        queue_ms=answer["queue_ms"],
        compute_ms=answer["compute_ms"],
        front_end_device_id=front_end_device_id,
        request_bytes=request_bytes,
        response_bytes=response_bytes,
        transfer_source=figures,
    )
    return ProbeResult(
        environment.slug,
        front_end_device_id,
        transfer_in_ms + transfer_out_ms,
        answer["queue_ms"],
        answer["compute_ms"],
    )
