"""FIG. 2.1 end to end with real workers: the patent's Example 1 on the demo topology.

Workers for component A, component B (both on the private broker, as private-path
environments) and the control queue run as real processes; requests are real generations
with the tiny model; the configured link figures are honoured by the probes.
"""

import pytest

from placement.dispatch import send_to_environment
from placement.models import Migration, MigrationEvent, PlacementRecord
from placement.scenarios import Example1Result, example1_run
from placement.tests.conftest import workers
from telemetry.models import TelemetrySample
from telemetry.tasks import environment_collect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_example_1_moves_the_workload_to_component_b_and_latency_improves(
    topology, placement_models, session_control_queue, django_user_model
):
    # Given an administrator, and workers for components A and B and the control queue
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    component_a, component_b = topology.environments["onprem-a"], topology.environments["onprem-b"]
    lines: list[str] = []
    with workers(component_a, component_b, control=True):
        # When the scenario runs every step of FIG. 2.1
        result: Example1Result = example1_run(
            approver=approver,
            say=lines.append,
            environments=topology.environments,
            devices=topology.devices,
            ai_model=topology.model,
        )
        # And the monitoring agent collects a round of host figures from both workers
        for environment in (component_a, component_b):
            send_to_environment(environment, environment_collect, [environment.pk, 0.0]).get(timeout=60)

    story = "\n".join(lines)
    # Step 202: the initial placement policy put it on component A
    assert result.initial_environment == component_a, story
    assert PlacementRecord.objects.filter(workload=result.workload).last().decided_by.startswith("policy:")
    # Step 204: transfer to the front-end devices is the limiting factor there
    transfer = sum(r.transfer_ms for r in result.before) / len(result.before)
    compute = sum(r.compute_ms for r in result.before) / len(result.before)
    assert transfer > 5 * compute, story
    assert {r.environment_slug for r in result.before} == {component_a.slug}
    # Steps 206-208: the model recommends component B, well beyond the margin
    recommendation = result.evaluation.recommendation
    assert recommendation is not None, story
    assert (recommendation.from_environment, recommendation.to_environment) == (component_a, component_b)
    assert recommendation.margin > recommendation.margin_required
    assert recommendation.predicted[component_b.slug] < recommendation.predicted[component_a.slug]
    assert recommendation.observed_samples == 6
    # Step 210: approved by the administrator, with the evidence they saw
    decision = recommendation.decision
    assert (decision.decided_by, decision.decision) == (approver, "approve")
    assert decision.evidence["predicted"] == recommendation.predicted
    # The migration went through every state and the routing now points at component B
    migration = result.migration
    assert migration.state == Migration.State.COMPLETED, story
    # (notes repeat their state; transitions change it)
    events = MigrationEvent.objects.filter(migration=migration)
    states = [e.to_state for e in events if e.from_state != e.to_state]
    assert states == ["pending", "loading_target", "switching", "draining", "completed"]
    result.workload.refresh_from_db()
    assert result.workload.environment == component_b
    assert result.workload.state == "placed"
    # The requests after the move were served by component B, and faster
    assert {r.environment_slug for r in result.after} == {component_b.slug}
    assert Example1Result.median_total_ms(result.after) < Example1Result.median_total_ms(result.before) / 3, (
        story
    )
    # The monitoring agent's host figures came from each environment's own worker
    for environment in (component_a, component_b):
        metrics = set(
            TelemetrySample.objects.filter(environment=environment, workload=None).values_list(
                "metric", flat=True
            )
        )
        assert {
            "cpu_percent",
            "memory_percent",
            "storage_percent",
            "redis_rtt_ms",
            "database_rtt_ms",
        } <= metrics
