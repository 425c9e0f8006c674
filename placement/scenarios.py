"""The patent's Example 1 (FIG. 3) as a scenario that runs on the demo topology.

A generative model serving front-end devices A, B and C is placed on on-premise component A
by the initial placement policy. Requests carry images (2 MB in, 0.5 MB out); component A's
links to the devices are narrow (and device C has none), so the monitoring agent sees the
transfer dominate the latency. The placement model recommends component B, whose
high-bandwidth links reach all three devices; the administrator approves; the migration
loads the model on B's worker, switches the routing and drains A; and the latency observed
afterwards is lower. ``manage.py run_scenario example1`` prints the story; the integration
test asserts it.

The requests are the monitoring agent's synthetic probes (``telemetry.probes``): real
generations on the environments' real workers, with the configured link figures honoured
by waiting the transfer time of each payload.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from placement.dispatch import send_to_environment
from placement.loop import Evaluation, recommendation_approve, workload_evaluate, workload_observe
from placement.models import AIModel, FrontEndDevice, Migration, ProductionEnvironment, Workload
from telemetry.probes import ProbeResult, probe_request

REQUEST_BYTES = 2_000_000  # the set of images a request carries
RESPONSE_BYTES = 500_000  # the AI-compiled image it returns
DEVICES = ("device-a", "device-b", "device-c")

Say = Callable[[str], None]


@dataclass
class Example1Result:
    """Everything the scenario did, for the command to print and the test to check."""

    workload: Workload
    initial_environment: ProductionEnvironment
    before: list[ProbeResult] = field(default_factory=list)
    evaluation: Evaluation | None = None
    migration: Migration | None = None
    after: list[ProbeResult] = field(default_factory=list)

    @staticmethod
    def mean_total_ms(results: list[ProbeResult]) -> float:
        """Return the mean end-to-end latency of a list of requests."""
        return sum(r.total_ms for r in results) / len(results) if results else 0.0

    @staticmethod
    def median_total_ms(results: list[ProbeResult]) -> float:
        """Return the median end-to-end latency (robust to a busy host's stragglers)."""
        return statistics.median(r.total_ms for r in results) if results else 0.0


def _probe_round(
    workload: Workload, devices: list[FrontEndDevice], per_device: int, say: Say
) -> list[ProbeResult]:
    results = []
    for device in devices:
        for _ in range(per_device):
            result = probe_request(
                workload_id=workload.pk,
                front_end_device_id=device.pk,
                request_bytes=REQUEST_BYTES,
                response_bytes=RESPONSE_BYTES,
            )
            results.append(result)
            say(
                f"    {device.name:<20} -> {result.environment_slug:<14} total {result.total_ms:7.1f} ms"
                f" = transfer {result.transfer_ms:6.1f} + queue {result.queue_ms:6.1f}"
                f" + compute {result.compute_ms:6.1f}"
            )
    return results


def example1_run(
    *,
    approver,
    say: Say = print,
    environments: dict[str, ProductionEnvironment] | None = None,
    devices: dict[str, FrontEndDevice] | None = None,
    ai_model: AIModel | None = None,
    requests_per_device: int = 2,
    migration_timeout_s: float = 300.0,
) -> Example1Result:
    """Replay Example 1 end to end; needs workers for control, component A and component B."""
    from placement.loop import workload_request_placement
    from placement.tasks import workload_load

    environments = environments or {e.slug: e for e in ProductionEnvironment.objects.all()}
    devices = devices or {d.slug: d for d in FrontEndDevice.objects.all()}
    ai_model = ai_model or AIModel.objects.get(slug="default")
    component_a, component_b = environments["onprem-a"], environments["onprem-b"]
    front_ends = [devices[slug] for slug in DEVICES]

    say("Example 1 (FIG. 3): a generative model for front-end devices A, B and C.")
    say(f"  step 200: placement request; step 202: initial placement by policy (model {ai_model.name})")
    workload = workload_request_placement(
        name=f"example1-image-generation-{timezone.now():%Y%m%d-%H%M%S-%f}",
        kind=Workload.Kind.INFERENCING,
        ai_model_id=ai_model.pk,
        front_end_device_ids=[d.pk for d in front_ends],
        gpus_required=1,
        config={"request_bytes": REQUEST_BYTES, "response_bytes": RESPONSE_BYTES, "tokens_per_request": 256},
    )
    record = workload.placements.first()
    say(f"    placed on {workload.environment.name} ({record.decided_by})")
    result = Example1Result(workload=workload, initial_environment=workload.environment)
    if workload.environment_id != component_a.pk:
        say("    the initial placement policy did not choose component A; the demo policies were changed")
        return result
    answer = send_to_environment(component_a, workload_load, [workload.pk]).get(timeout=300)
    say(f"    model warm on {component_a.queue_name} ({answer['worker']}, {answer['load_ms']} ms)")

    say(f"  step 204: monitoring: {requests_per_device} requests from each front-end device")
    result.before = _probe_round(workload, front_ends, requests_per_device, say)
    observation = workload_observe(workload_id=workload.pk)
    if observation and observation.breakdown:
        b = observation.breakdown
        say(
            f"    mean {b['total_ms']:.1f} ms: transfer {b['transfer_ms']:.1f}, queue {b['queue_ms']:.1f},"
            f" compute {b['compute_ms']:.1f} (transfer figures {b['transfer_figures']})"
        )

    say("  step 206: latency analysis with the placement model; step 208: better by the margin?")
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    result.evaluation = evaluation
    if evaluation.analysis:
        for slug, value in evaluation.analysis.predicted_by_slug().items():
            say(f"    predicted {slug:<16} {value:9.1f} ms")
    say(f"    {evaluation.outcome}: {evaluation.detail}")
    recommendation = evaluation.recommendation
    if recommendation is None:
        return result
    move = f"{recommendation.from_environment} -> {recommendation.to_environment}"
    say(f"  step 210: recommendation {recommendation.pk}: {move} (margin {recommendation.margin:.0%})")
    if recommendation.to_environment_id != component_b.pk:
        say("    the model did not recommend component B")
        return result
    migration = evaluation.migration
    if migration is None:
        migration = recommendation_approve(
            recommendation_id=recommendation.pk,
            user=approver,
            reason="Example 1: move closer to the front ends",
        )
        say(f"    approved by {approver.get_username()}; migration {migration.pk} queued")
    else:
        say(f"    approved by auto-approve policy {recommendation.auto_approve_policy}")
    seen = 0
    deadline = time.monotonic() + migration_timeout_s
    while time.monotonic() < deadline:
        migration.refresh_from_db()
        events = list(migration.events.all())
        for event in events[seen:]:
            say(f"    migration {event.from_state or '-':>14} -> {event.to_state:<14} {event.detail}")
        seen = len(events)
        if migration.is_finished:
            break
        time.sleep(0.3)
    result.migration = migration
    if migration.state != Migration.State.COMPLETED:
        say(f"    migration ended {migration.state}: {migration.error}")
        return result

    workload.refresh_from_db()
    say(f"  step 204 again: monitoring on {workload.environment.name}")
    result.after = _probe_round(workload, front_ends, requests_per_device, say)
    before, after = result.mean_total_ms(result.before), result.mean_total_ms(result.after)
    median_before, median_after = result.median_total_ms(result.before), result.median_total_ms(result.after)
    say(f"  observed latency (ms), mean:   component A {before:7.1f} -> B {after:7.1f}")
    say(f"  observed latency (ms), median: component A {median_before:7.1f} -> B {median_after:7.1f}")
    say("  the transfer to the front-end devices no longer limits the workload")
    return result
