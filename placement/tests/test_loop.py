"""The steps of FIG. 2.1, 2.2, 4.1 and 4.2 as services, on the database (no workers here;
the real-worker runs are in the *_workers.py tests)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from placement.loop import (
    Analysis,
    RecommendationError,
    recommendation_approve,
    recommendation_create,
    recommendation_reject,
    workload_evaluate,
    workload_request_placement,
)
from placement.migration import migration_execute
from placement.model import PlacementDecision
from placement.models import (
    ApprovalDecision,
    AutoApprovePolicy,
    CausalVariable,
    InitialPlacementPolicy,
    Migration,
    PlacementModelVersion,
    Recommendation,
    Workload,
)
from telemetry.services import progress_record, request_latency_record, sample_record

pytestmark = pytest.mark.django_db

IMAGES = {"request_bytes": 2_000_000, "response_bytes": 500_000}


def example_1_workload(topology, **overrides) -> Workload:
    """FIG. 2.1 steps 200-202: request the placement of the image generator (no deployment)."""
    values = dict(
        name="image-generation",
        kind="inferencing",
        ai_model_id=topology.model.pk,
        front_end_device_ids=[topology.devices[d].pk for d in ("device-a", "device-b", "device-c")],
        config=dict(IMAGES),
        deploy=False,
    )
    values.update(overrides)
    return workload_request_placement(**values)


def observe_latency(workload, *, count=6, transfer_ms=280.0, queue_ms=5.0, compute_ms=12.0, ago_s=0):
    """Record what the monitoring agent would have seen (FIG. 2.1 step 204)."""
    at = timezone.now() - timedelta(seconds=ago_s)
    for _ in range(count):
        request_latency_record(
            workload_id=workload.pk,
            environment_id=workload.environment_id,
            transfer_ms=transfer_ms,
            queue_ms=queue_ms,
            compute_ms=compute_ms,
            request_bytes=IMAGES["request_bytes"],
            response_bytes=IMAGES["response_bytes"],
            transfer_source="configured",
            at=at,
        )


def open_window_long_ago(workload, seconds=3600):
    """Pretend the window opened (and the last evaluation happened) long ago."""
    long_ago = timezone.now() - timedelta(seconds=seconds)
    Workload.objects.filter(pk=workload.pk).update(monitoring_started_at=long_ago, last_evaluated_at=long_ago)


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("approver", "", "a-long-password-42")


def test_steps_200_and_202_place_the_workload_by_policy_and_open_the_monitoring_window(topology):
    workload = example_1_workload(topology)
    assert workload.environment == topology.environments["onprem-a"]
    assert workload.state == "placed"
    assert workload.monitoring_started_at is not None
    assert workload.placements.get().decided_by == "policy:Inferencing starts where the GPUs are"


def test_step_204_waits_for_the_window_to_close_and_for_enough_samples(topology, placement_models, settings):
    from telemetry.models import TelemetrySample

    settings.PLACEMENT_MONITOR_WINDOW_S = 300
    workload = example_1_workload(topology)
    observe_latency(workload, count=6)
    # Inside the monitoring window: wait
    assert workload_evaluate(workload_id=workload.pk).outcome == "waiting"
    # The window has closed, but these samples predate the placement, so they do not count
    Workload.objects.filter(pk=workload.pk).update(
        monitoring_started_at=timezone.now() - timedelta(seconds=400)
    )
    TelemetrySample.objects.filter(workload=workload).update(at=timezone.now() - timedelta(seconds=500))
    assert workload_evaluate(workload_id=workload.pk).outcome == "no_data"
    observe_latency(workload, count=5)
    evaluation = workload_evaluate(workload_id=workload.pk)
    assert evaluation.outcome == "recommended"
    assert evaluation.observation.samples == 5
    # Evaluated once per window: straight away again, it waits
    assert workload_evaluate(workload_id=workload.pk).outcome == "waiting"


def test_steps_206_to_210_recommend_component_b_with_the_evidence(topology, placement_models):
    workload = example_1_workload(topology)
    observe_latency(workload)
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    recommendation = evaluation.recommendation
    a, b = topology.environments["onprem-a"], topology.environments["onprem-b"]
    assert (recommendation.from_environment, recommendation.to_environment) == (a, b)
    assert (recommendation.figure, recommendation.objective, recommendation.unit) == ("2.1", "latency", "ms")
    assert recommendation.state == "pending"
    assert recommendation.observed_value == pytest.approx(297.0)
    assert recommendation.observed_breakdown["transfer_ms"] == pytest.approx(280.0)
    assert recommendation.observed_breakdown["transfer_figures"] == "configured"
    assert set(recommendation.predicted) == {e.slug for e in topology.environments.values()}
    assert recommendation.margin == pytest.approx(
        1 - recommendation.predicted[b.slug] / recommendation.predicted[a.slug]
    )
    assert recommendation.margin > 0.5
    assert recommendation.model_version == placement_models["latency"]
    assert recommendation.features["values"][b.slug]["front_end_bandwidth_mbps"] == 10000.0
    assert recommendation.features["values"][a.slug]["front_end_bandwidth_mbps"] == pytest.approx(250 / 3)
    assert "batch_size" in recommendation.features["used"]
    # No auto-approve policy: it waits for an administrator, and nothing has moved
    assert evaluation.migration is None
    assert not Migration.objects.exists()


def test_within_the_margin_the_workload_stays(topology, placement_models, settings):
    settings.PLACEMENT_MARGIN = 0.99
    workload = example_1_workload(topology)
    observe_latency(workload)
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    assert evaluation.outcome == "stays"
    assert "within the 99% margin" in evaluation.detail
    assert not Recommendation.objects.exists()


def test_a_new_recommendation_supersedes_the_pending_one(topology, placement_models):
    workload = example_1_workload(topology)
    observe_latency(workload)
    first = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    second = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    first.refresh_from_db()
    assert (first.state, first.superseded_by) == ("superseded", second)
    assert second.state == "pending"
    assert Recommendation.objects.filter(state="pending").count() == 1


def test_a_recently_rejected_move_is_not_recommended_again(topology, placement_models, admin):
    workload = example_1_workload(topology)
    observe_latency(workload)
    first = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    recommendation_reject(recommendation_id=first.pk, user=admin, reason="maintenance window on B")
    open_window_long_ago(workload)
    evaluation = workload_evaluate(workload_id=workload.pk)
    assert evaluation.outcome == "suppressed"
    assert Recommendation.objects.count() == 1


def secured_workload_on_the_secured_environment(topology) -> Workload:
    InitialPlacementPolicy.objects.create(
        name="Secured data starts on the secured environment",
        order=1,
        strategy="fixed",
        secured_data_only=True,
        environment=topology.environments["secured"],
    )
    # Large payloads and a heavy model: both the links and the GPUs matter
    return example_1_workload(
        topology,
        name="secured-images",
        handles_secured_data=True,
        batch_size=8,
        front_end_device_ids=[topology.devices["device-d"].pk],
        config={"request_bytes": 8_000_000, "response_bytes": 2_000_000, "tokens_per_request": 4096},
    )


def test_a_secured_workload_is_only_ever_recommended_to_trusted_environments(topology, placement_models):
    # Only the untrusted cloud and public environments have links to device D ...
    workload = secured_workload_on_the_secured_environment(topology)
    assert workload.environment == topology.environments["secured"]
    observe_latency(workload)
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    predicted = evaluation.analysis.predicted_by_slug()
    cloud = topology.environments["cloud"]
    # ... so the cloud would beat the current environment by far, yet it is never proposed
    assert predicted[cloud.slug] < 0.7 * predicted[workload.environment.slug]
    assert set(evaluation.analysis.features["ineligible"]) == {
        cloud.slug,
        topology.environments["public"].slug,
    }
    recommendation = evaluation.recommendation
    assert recommendation is not None
    assert recommendation.to_environment.is_trusted
    assert recommendation.to_environment == topology.environments["onprem-a"]


def test_a_recommendation_to_an_untrusted_environment_is_refused_for_secured_data(
    topology, placement_models, admin
):
    workload = secured_workload_on_the_secured_environment(topology)
    cloud = topology.environments["cloud"]
    forged = Analysis(
        workload_id=workload.pk,
        objective="latency",
        model_version=placement_models["latency"],
        predicted_by_id={cloud.pk: 1.0, workload.environment_id: 100.0},
        slug_by_id={cloud.pk: cloud.slug, workload.environment_id: "secured"},
        decision=PlacementDecision(workload.environment_id, cloud.pk, {}, (cloud.pk,), 0.99, True, "forged"),
        features={},
    )
    with pytest.raises(RecommendationError, match="trusted environment"):
        recommendation_create(workload_id=workload.pk, observation=None, analysis=forged)
    # And a target that stops being trusted after the recommendation cannot be approved
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    type(recommendation.to_environment).objects.filter(pk=recommendation.to_environment_id).update(
        trust="public", network_path="public"
    )
    with pytest.raises(RecommendationError, match="not trusted"), transaction.atomic():
        recommendation_approve(recommendation_id=recommendation.pk, user=admin)
    assert not Migration.objects.exists()
    workload.refresh_from_db()
    assert workload.environment == topology.environments["secured"]


def test_approval_records_who_when_and_the_evidence_then_starts_the_migration(
    topology, placement_models, admin
):
    workload = example_1_workload(topology)
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    migration = recommendation_approve(recommendation_id=recommendation.pk, user=admin, reason="go")
    decision = ApprovalDecision.objects.get(recommendation=recommendation)
    assert (decision.decision, decision.decided_by, decision.decided_by_name, decision.reason) == (
        "approve",
        admin,
        "approver",
        "go",
    )
    assert decision.evidence["observed_value"] == pytest.approx(297.0)
    assert decision.evidence["predicted"] == recommendation.predicted
    assert decision.evidence["model_version"] == "Latency model v1"
    assert (migration.approval, migration.state) == (decision, "pending")
    workload.refresh_from_db()
    assert workload.state == "migrating"
    recommendation.refresh_from_db()
    assert recommendation.state == "approved"
    # A second approval of the same recommendation is refused
    with pytest.raises(RecommendationError, match="approved, not pending"), transaction.atomic():
        recommendation_approve(recommendation_id=recommendation.pk, user=admin)


def test_deciding_needs_the_permission(topology, placement_models, django_user_model):
    workload = example_1_workload(topology)
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    staff = django_user_model.objects.create_user("operator", password="a-long-password-42", is_staff=True)
    with pytest.raises(PermissionDenied):
        recommendation_approve(recommendation_id=recommendation.pk, user=staff)
    with pytest.raises(PermissionDenied):
        recommendation_reject(recommendation_id=recommendation.pk, user=staff, reason="no")
    recommendation.refresh_from_db()
    assert recommendation.state == "pending"
    assert not ApprovalDecision.objects.exists()


def test_rejecting_needs_a_reason_and_is_recorded(topology, placement_models, admin):
    workload = example_1_workload(topology)
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    with pytest.raises(RecommendationError, match="say why"):
        recommendation_reject(recommendation_id=recommendation.pk, user=admin, reason="   ")
    # The database refuses a reasonless rejection too
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDecision.objects.create(
            recommendation=recommendation,
            decision="reject",
            decided_by=admin,
            decided_by_name="x",
            evidence={},
        )
    decision = recommendation_reject(
        recommendation_id=recommendation.pk, user=admin, reason="B is being serviced"
    )
    assert (decision.decision, decision.reason, decision.decided_by) == (
        "reject",
        "B is being serviced",
        admin,
    )
    recommendation.refresh_from_db()
    assert recommendation.state == "rejected"
    assert not Migration.objects.exists()


def test_a_stale_evidence_digest_is_refused(topology, placement_models, admin):
    workload = example_1_workload(topology)
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    with pytest.raises(RecommendationError, match="evidence changed"), transaction.atomic():
        recommendation_approve(
            recommendation_id=recommendation.pk, user=admin, evidence_seen="0000000000000000"
        )
    assert Recommendation.objects.get(pk=recommendation.pk).state == "pending"


def test_no_migration_exists_without_an_approval_record(topology, placement_models, admin):
    workload = example_1_workload(topology)
    observe_latency(workload)
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    with pytest.raises(IntegrityError), transaction.atomic():
        Migration.objects.create(
            recommendation=recommendation,
            workload=workload,
            from_environment=recommendation.from_environment,
            to_environment=recommendation.to_environment,
        )
    # A migration wired to a rejection is refused by its runner, and nothing moves
    decision = recommendation_reject(recommendation_id=recommendation.pk, user=admin, reason="no")
    migration = Migration.objects.create(
        recommendation=recommendation,
        approval=decision,
        workload=workload,
        from_environment=recommendation.from_environment,
        to_environment=recommendation.to_environment,
    )
    assert migration_execute(migration_id=migration.pk, runner="test") == "failed"
    migration.refresh_from_db()
    assert "does not approve" in migration.error
    workload.refresh_from_db()
    assert workload.environment == topology.environments["onprem-a"]


def test_an_auto_approve_policy_approves_and_is_named_in_the_record(topology, placement_models):
    policy = AutoApprovePolicy.objects.create(
        name="Big latency wins", match_objective="latency", min_improvement=0.5
    )
    workload = example_1_workload(topology)
    observe_latency(workload)
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    recommendation = evaluation.recommendation
    assert (recommendation.state, recommendation.auto_approve_policy) == ("approved", policy)
    decision = recommendation.decision
    assert (decision.auto_approve_policy, decision.decided_by, decision.decided_by_name) == (
        policy,
        None,
        "policy:Big latency wins",
    )
    assert evaluation.migration.approval == decision


def test_auto_approval_skips_secured_workloads_unless_the_policy_allows_them(topology, placement_models):
    policy = AutoApprovePolicy.objects.create(name="Any move", min_improvement=0.0)
    workload = secured_workload_on_the_secured_environment(topology)
    observe_latency(workload)
    first = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    assert (first.state, first.auto_approve_policy) == ("pending", None)
    policy.allow_secured_data = True
    policy.save()
    second = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    assert (second.state, second.auto_approve_policy) == ("approved", policy)


def fixed_policy(topology, kind, slug):
    InitialPlacementPolicy.objects.create(
        name=f"{kind} starts on {slug}",
        order=1,
        strategy="fixed",
        match_kind=kind,
        environment=topology.environments[slug],
    )


def test_fig_4_1_moves_model_adaptation_next_to_its_inferencing_workload(topology, placement_models):
    # The inferencing workload runs on component B; its adaptation was placed on the public
    # environment, which has no link to B, so shipping 400 MB adapters takes seconds
    inferencing = example_1_workload(topology, name="served-model")
    inferencing.environment = topology.environments["onprem-b"]
    inferencing.save()
    fixed_policy(topology, "adaptation", "public")
    adaptation = workload_request_placement(
        name="adapter-tuning",
        kind="adaptation",
        objective="latency",
        ai_model_id=topology.model.pk,
        inference_workload_id=inferencing.pk,
        config={"adapter_bytes": 400_000_000, "trainable_fraction": 0.1},
        deploy=False,
    )
    assert adaptation.environment == topology.environments["public"]
    for _ in range(5):
        sample_record(
            environment_id=adaptation.environment_id,
            workload_id=adaptation.pk,
            metric="adaptation_round_ms",
            value=70_000,
        )
    evaluation = workload_evaluate(workload_id=adaptation.pk, force=True)
    recommendation = evaluation.recommendation
    assert recommendation.figure == "4.1"
    assert recommendation.observed_value == pytest.approx(70_000)
    assert recommendation.to_environment in (
        topology.environments["onprem-a"],
        topology.environments["onprem-b"],
    )
    target = recommendation.to_environment.slug
    assert recommendation.features["values"][target]["inference_link_bandwidth_mbps"] >= 100_000


def test_fig_4_2_moves_model_adaptation_to_where_it_completes_sooner(topology, placement_models):
    fixed_policy(topology, "adaptation", "secured")
    adaptation = workload_request_placement(
        name="adapter-tuning",
        kind="adaptation",
        objective="completion_time",
        ai_model_id=topology.model.pk,
        batch_size=8,
        config={"steps_total": 20_000, "sequence_tokens": 2048},
        deploy=False,
    )
    assert adaptation.environment == topology.environments["secured"]
    for done in range(1, 6):
        progress_record(
            workload_id=adaptation.pk, fraction_done=done / 100, seconds_per_step=0.8, steps_total=20_000
        )
    evaluation = workload_evaluate(workload_id=adaptation.pk, force=True)
    recommendation = evaluation.recommendation
    assert recommendation.figure == "4.2"
    assert (recommendation.objective, recommendation.unit) == ("completion_time", "s")
    # 95 % of 20 000 steps left at 0.8 s each
    assert recommendation.observed_value == pytest.approx(0.8 * 19_000)
    assert recommendation.to_environment == topology.environments["onprem-a"]


def test_the_cold_start_trains_a_model_from_the_profiling_run(topology, settings):
    settings.PLACEMENT_PROFILING_ROWS = 1500
    CausalVariable.objects.filter(key="storage_gb").update(enabled=False)
    workload = example_1_workload(topology)
    observe_latency(workload)
    evaluation = workload_evaluate(workload_id=workload.pk, force=True)
    version = evaluation.analysis.model_version
    assert (version.objective, version.version, version.state, version.requested_by) == (
        "latency",
        1,
        "ready",
        "cold start",
    )
    assert version.artifact.exists()
    assert version.profiling_rows == 1500
    assert version.telemetry_rows == 1  # the workload's own observations in component A
    assert version.held_out_mae > 0 and version.held_out_r2 is not None
    assert "storage_gb" not in version.feature_keys
    assert "gpu_clock_mhz" in version.feature_keys
    assert PlacementModelVersion.objects.filter(objective="completion_time").count() == 0


def test_the_admin_action_queues_retraining_and_progress_reaches_ready(
    topology, admin_client_logged_in, settings
):
    from placement.training import model_version_train

    settings.PLACEMENT_PROFILING_ROWS = 1000
    page = admin_client_logged_in.get("/admin/placement/placementmodelversion/")
    assert "Retrain both models now" in page.content.decode()
    response = admin_client_logged_in.post("/admin/placement/placementmodelversion/retrain/", follow=True)
    assert response.status_code == 200
    assert "progress shows in the model versions list" in response.content.decode()
    queued = list(PlacementModelVersion.objects.order_by("objective"))
    assert [(v.objective, v.state, v.requested_by) for v in queued] == [
        ("completion_time", "queued", "root-admin"),
        ("latency", "queued", "root-admin"),
    ]
    trained = model_version_train(version_id=queued[1].pk)
    assert (trained.state, trained.progress) == ("ready", 1.0)
    assert "trained in" in trained.message
    # A second runner finds it already claimed and changes nothing
    assert model_version_train(version_id=queued[1].pk).trained_at == trained.trained_at


def test_only_the_newest_model_artifacts_are_kept(db, settings, tmp_path):
    from placement.training import artifacts_prune

    settings.ARTIFACT_DIR = tmp_path
    for number in range(1, 8):
        (tmp_path / f"latency-v{number}.joblib").write_bytes(b"model")
        PlacementModelVersion.objects.create(
            objective="latency", version=number, state="ready", artifact_path=f"latency-v{number}.joblib"
        )
    assert artifacts_prune(objective="latency", keep=5) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"latency-v{n}.joblib" for n in range(3, 8)]
    assert PlacementModelVersion.objects.get(version=1).message == "artifact pruned"


def test_two_evaluation_passes_never_overlap(db):
    from django.core.cache import cache

    from placement.loop import _EVALUATE_LOCK_KEY, workloads_evaluate

    cache.set(_EVALUATE_LOCK_KEY, "1", 60)
    try:
        assert workloads_evaluate() == {"skipped": 1}
    finally:
        cache.delete(_EVALUATE_LOCK_KEY)
    assert workloads_evaluate() == {}
