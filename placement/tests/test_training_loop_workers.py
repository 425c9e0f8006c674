"""FIG. 2.2 with real workers: a training job placed by policy, monitored through its progress,
recommended elsewhere by completion time, moved with a checkpoint and resumed from it; and the
same move rolled back when the target cannot resume it."""

import pytest

from placement import reference_job
from placement.loop import recommendation_approve, workload_evaluate, workload_request_placement
from placement.models import InitialPlacementPolicy, Migration, PlacementRecord, Recommendation, Workload
from placement.tests.conftest import wait_for, workers
from telemetry.models import TelemetrySample

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def request_training(topology) -> Workload:
    # FIG. 2.2 step 220; step 222 places it by the (test's) fixed policy on the secured environment
    InitialPlacementPolicy.objects.create(
        name="Training starts on the secured environment",
        order=1,
        strategy="fixed",
        match_kind="training",
        environment=topology.environments["secured"],
    )
    return workload_request_placement(
        name="fig-2-2-training",
        kind="training",
        ai_model_id=topology.model.pk,
        gpus_required=1,
        batch_size=4,
        config={
            "checkpoint_handler": reference_job.HANDLER_KEY,
            "steps_total": 50_000_000,
            "sequence_tokens": 2048,
            "dataset_gb": 5,
        },
    )


def progress_samples(workload, environment, metric="steps_done"):
    return TelemetrySample.objects.filter(workload=workload, environment=environment, metric=metric)


def test_fig_2_2_moves_a_training_job_to_a_faster_environment_and_it_resumes_from_its_checkpoint(
    topology, placement_models, session_control_queue, django_user_model
):
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    secured, component_a = topology.environments["secured"], topology.environments["onprem-a"]
    with workers(secured, component_a, control=True):
        workload = request_training(topology)
        try:
            assert workload.environment == secured
            # Step 224: the job runs on the secured environment's worker and reports its progress
            wait_for(lambda: progress_samples(workload, secured).count() >= 5, what="progress reports")
            # Steps 226-228: completion-time analysis recommends the H100 component
            evaluation = workload_evaluate(workload_id=workload.pk, force=True)
            assert evaluation.outcome == "recommended", evaluation.detail
            recommendation = evaluation.recommendation
            assert (recommendation.figure, recommendation.objective, recommendation.unit) == (
                "2.2",
                "completion_time",
                "s",
            )
            assert recommendation.to_environment == component_a
            assert recommendation.observed_value > 0
            assert recommendation.observed_breakdown["seconds_per_step"] > 0
            # Step 230: approved; the migration pauses, moves and resumes the job
            migration = recommendation_approve(
                recommendation_id=recommendation.pk, user=approver, reason="faster GPUs"
            )
            wait_for(
                lambda: Migration.objects.get(pk=migration.pk).is_finished,
                timeout_s=120,
                what="the migration",
            )
            migration.refresh_from_db()
            assert migration.state == Migration.State.COMPLETED, migration.error
            checkpoint_step = migration.checkpoint["step"]
            assert checkpoint_step > 0
            workload.refresh_from_db()
            assert workload.environment == component_a
            # The job carries on at the target from the checkpoint, not from step 0
            wait_for(lambda: progress_samples(workload, component_a).exists(), what="progress at the target")
            resumed = progress_samples(workload, component_a).order_by("at", "id").first()
            assert resumed.value > checkpoint_step
            steps_at_source = progress_samples(workload, secured).values_list("value", flat=True)
            assert max(steps_at_source) <= checkpoint_step
            assert reference_job.is_running(workload.pk) == component_a.pk
        finally:
            reference_job.stop(workload.pk)


def test_a_training_move_the_target_cannot_resume_rolls_the_routing_back_and_resumes_at_the_source(
    topology, placement_models, session_control_queue, django_user_model
):
    # Given a job running on the secured environment, and no worker for component A at all
    approver = django_user_model.objects.create_superuser("approver", "", "a-long-password-42")
    secured, component_a = topology.environments["secured"], topology.environments["onprem-a"]
    with workers(secured, control=True, PLACEMENT_CHECKPOINT_TIMEOUT_S="4"):
        workload = request_training(topology)
        try:
            wait_for(lambda: progress_samples(workload, secured).count() >= 2, what="progress reports")
            recommendation = Recommendation.objects.create(
                workload=workload,
                from_environment=secured,
                to_environment=component_a,
                objective="completion_time",
                figure="2.2",
                unit="s",
                predicted={secured.slug: 100.0, component_a.slug: 30.0},
                margin=0.7,
                margin_required=0.2,
                model_version=placement_models["completion_time"],
                reason="test",
            )
            # When the move is approved and the target never starts the job
            migration = recommendation_approve(recommendation_id=recommendation.pk, user=approver)
            wait_for(
                lambda: Migration.objects.get(pk=migration.pk).is_finished, timeout_s=90, what="the migration"
            )
            # Then the routing is back on the source and the job carries on there from its checkpoint
            migration.refresh_from_db()
            assert migration.state == Migration.State.ROLLED_BACK
            assert "resuming the job on the target failed" in migration.error
            workload.refresh_from_db()
            assert (workload.environment, workload.state) == (secured, "placed")
            records = list(PlacementRecord.objects.filter(workload=workload).order_by("created_at", "id"))
            assert [(r.from_environment, r.to_environment) for r in records[-2:]] == [
                (secured, component_a),
                (component_a, secured),
            ]
            assert Recommendation.objects.get(pk=recommendation.pk).state == "failed"
            checkpoint_step = migration.checkpoint["step"]
            wait_for(
                lambda: progress_samples(workload, secured).filter(value__gt=checkpoint_step).exists(),
                what="progress at the source after the rollback",
            )
            assert not progress_samples(workload, component_a).exists()
            assert migration.events.filter(detail__startswith="job resumed at the source").exists()
        finally:
            reference_job.stop(workload.pk)
