"""Migrations of an inferencing workload when things go wrong, with real worker processes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from placement.loop import recommendation_approve
from placement.migration import migrations_recover
from placement.models import Migration, Recommendation, Workload
from placement.services import workload_place_initial
from placement.tests.conftest import kill_worker, wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def placed_inferencing_workload(topology) -> Workload:
    workload = Workload.objects.create(
        name="images", kind="inferencing", ai_model=topology.model, objective="latency", gpus_required=1
    )
    workload.front_end_devices.set([topology.devices["device-a"], topology.devices["device-b"]])
    workload_place_initial(workload_id=workload.pk)
    workload.refresh_from_db()
    assert workload.environment == topology.environments["onprem-a"]
    return workload


def pending_recommendation(workload, target, model_version) -> Recommendation:
    return Recommendation.objects.create(
        workload=workload,
        from_environment=workload.environment,
        to_environment=target,
        objective="latency",
        figure="2.1",
        unit="ms",
        predicted={workload.environment.slug: 300.0, target.slug: 20.0},
        margin=0.93,
        margin_required=0.2,
        model_version=model_version,
        reason="test",
    )


def test_a_target_that_cannot_load_the_model_fails_the_migration_and_routing_never_moves(
    topology, placement_models, session_control_queue, django_user_model
):
    # Given no worker serves component B
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    workload = placed_inferencing_workload(topology)
    component_a, component_b = topology.environments["onprem-a"], topology.environments["onprem-b"]
    recommendation = pending_recommendation(workload, component_b, placement_models["latency"])
    with workers(control=True, PLACEMENT_LOAD_TIMEOUT_S="3"):
        # When the move is approved
        migration = recommendation_approve(recommendation_id=recommendation.pk, user=approver)
        wait_for(
            lambda: Migration.objects.get(pk=migration.pk).is_finished, timeout_s=60, what="the migration"
        )
    # Then it failed while loading the target, and the workload never left component A
    migration.refresh_from_db()
    assert migration.state == Migration.State.FAILED
    assert f"no worker of {component_b.queue_name} answered within 3 s" in migration.error
    assert [e.to_state for e in migration.events.exclude(detail__startswith="resumed")] == [
        "pending",
        "loading_target",
        "failed",
    ]
    workload.refresh_from_db()
    assert (workload.environment, workload.state) == (component_a, "placed")
    assert workload.placements.count() == 1
    assert Recommendation.objects.get(pk=recommendation.pk).state == "failed"


def test_a_killed_migration_runner_leaves_a_resumable_state_that_completes_after_recovery(
    topology, placement_models, session_control_queue, django_user_model
):
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    workload = placed_inferencing_workload(topology)
    component_a, component_b = topology.environments["onprem-a"], topology.environments["onprem-b"]
    recommendation = pending_recommendation(workload, component_b, placement_models["latency"])
    # Given a migration whose runner waits for component B (no worker there yet) ...
    with workers(control=True) as running:
        migration = recommendation_approve(recommendation_id=recommendation.pk, user=approver)
        wait_for(
            lambda: Migration.objects.get(pk=migration.pk).state == Migration.State.LOADING_TARGET,
            what="the migration to start loading the target",
        )
        # ... when its worker is killed (SIGKILL, no shutdown)
        kill_worker(running["control"])
    # Then the workload is wholly at the source and the migration is resumable where it stopped
    migration.refresh_from_db()
    workload.refresh_from_db()
    assert (migration.state, migration.routing_switched) == (Migration.State.LOADING_TARGET, False)
    assert (workload.environment, workload.state) == (component_a, "migrating")
    # While the dead runner's lease lasts, recovery leaves it alone
    assert migrations_recover(dispatch=False) == {"resumed": [], "rolled_back": []}
    # When the lease has run out, recovery resumes it on a new runner, and component B comes up
    Migration.objects.filter(pk=migration.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with workers(component_b, control=True, PLACEMENT_DRAIN_TIMEOUT_S="3"):
        assert migrations_recover() == {"resumed": [migration.pk], "rolled_back": []}
        wait_for(
            lambda: Migration.objects.get(pk=migration.pk).is_finished, timeout_s=90, what="the migration"
        )
    migration.refresh_from_db()
    assert migration.state == Migration.State.COMPLETED, migration.error
    assert migration.attempts == 2
    details = list(migration.events.values_list("detail", flat=True))
    assert any(d.endswith("lost its lease; resuming") for d in details)
    assert any(d.startswith("resumed by") for d in details)
    workload.refresh_from_db()
    assert (workload.environment, workload.state) == (component_b, "placed")
    # Component A had no worker to drain; the move stands and the note says so
    assert "source did not confirm the drain" in migration.detail


def test_a_migration_stuck_too_often_is_rolled_back_by_recovery(
    topology, placement_models, django_user_model
):
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    workload = placed_inferencing_workload(topology)
    component_a, component_b = topology.environments["onprem-a"], topology.environments["onprem-b"]
    recommendation = pending_recommendation(workload, component_b, placement_models["latency"])
    migration = recommendation_approve(recommendation_id=recommendation.pk, user=approver)
    # Given the routing had switched when the third runner died
    Workload.objects.filter(pk=workload.pk).update(environment=component_b)
    Migration.objects.filter(pk=migration.pk).update(
        state=Migration.State.SWITCHING,
        routing_switched=True,
        attempts=3,
        claimed_by="dead-runner",
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )
    # When recovery runs
    outcome = migrations_recover(dispatch=False)
    # Then it rolls back instead of trying again, and the routing is on the source
    assert outcome == {"resumed": [], "rolled_back": [migration.pk]}
    migration.refresh_from_db()
    assert migration.state == Migration.State.ROLLED_BACK
    assert "runner lost 3 times" in migration.error
    workload.refresh_from_db()
    assert workload.environment == component_a
