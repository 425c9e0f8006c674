# ruff: noqa: F811 - pytest fixtures are imported by name from adaptation_support
"""Adaptation and training workloads through the REST API and the services, on the real
database, with the tiny real model and the trained sensitivity classifier. Runs are executed
in this process (``adaptation_job_run``); the worker path is in test_adaptation_workers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from inference import adaptation
from inference.adaptation_services import (
    adaptation_job_cancel,
    adaptation_job_pause,
    adaptation_job_run,
    adaptation_jobs_recover,
    adapter_promote,
    adapter_rollback,
)
from inference.models import AdaptationJob, AdapterArtifact, Promotion
from inference.tests.adaptation_support import (  # noqa: F401 - fixtures
    PUBLIC_TEXTS,
    SECURED_TEXTS,
    TEST_LORA,
    adaptation_body,
    api,
    artifact_dir,
    gateway,
    gateway_model_dir,
    make_api_user,
    post,
    sensitivity_artifact,
    staff_api,
)
from variants.tests.traces import redis_keys_containing, tables_containing

pytestmark = pytest.mark.django_db


def _start(staff_api, **body) -> dict:
    response = post(staff_api, "/api/v1/adaptations", adaptation_body(**body))
    assert response.status_code == 202, response.content
    return response.json()


def _run_here(job_id: int) -> str:
    job = AdaptationJob.objects.get(pk=job_id)
    return adaptation_job_run(job_id=job_id, environment_id=job.environment_id, runner="test-runner")


@pytest.mark.parametrize(
    ("change", "status", "code", "phrase"),
    [
        ({"model": "no-such-model"}, 422, "unknown_model", "Unknown base model 'no-such-model'"),
        ({"lora": {**TEST_LORA, "rank": 0}}, 422, "bad_lora", "rank must be a positive integer"),
        ({"lora": {**TEST_LORA, "rank": -3}}, 422, "bad_lora", "rank must be a positive integer"),
        ({"dataset": {"texts": []}}, 422, "empty_dataset", "The dataset is empty"),
        ({"dataset": {"texts": ["   ", ""]}}, 422, "empty_dataset", "The dataset is empty"),
        ({"dataset": {"file": "../../etc/passwd"}}, 422, "bad_dataset", "must lie under"),
        ({"dataset": {"file": "missing.jsonl"}}, 422, "bad_dataset", "No dataset file"),
        ({"dataset": {}}, 400, "invalid", "exactly one of file, texts or feedback"),
        ({"variant": "nowhere"}, 422, "unknown_variant", "No enabled variant 'nowhere'"),
    ],
)
def test_bad_configurations_are_refused_with_a_clear_json_error(
    staff_api, gateway, artifact_dir, change, status, code, phrase
):
    response = post(staff_api, "/api/v1/adaptations", {**adaptation_body(), **change})

    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert phrase in error["message"]
    assert not AdaptationJob.objects.exists()


def test_secured_data_bound_for_the_public_variant_is_refused_naming_the_count_not_the_text(
    staff_api, gateway, artifact_dir
):
    response = post(staff_api, "/api/v1/adaptations", adaptation_body(texts=SECURED_TEXTS, variant="public"))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "secured_data"
    assert "2 of 5 examples classified as secured data" in error["message"]
    for fragment in ("Quist", "metformin", "Brenninkmeyer", "levetiracetam"):
        assert fragment not in response.content.decode()
    assert not AdaptationJob.objects.exists()


def test_training_workloads_refuse_any_secured_data(staff_api, gateway, artifact_dir):
    from inference.adaptation_services import AdaptationRefused, DatasetRequest, adaptation_job_create

    with pytest.raises(AdaptationRefused, match="training workloads learn from public data only"):
        adaptation_job_create(
            name="t",
            ai_model_slug="default",
            dataset=DatasetRequest(source="upload", texts=SECURED_TEXTS),
            kind=AdaptationJob.Kind.TRAINING,
        )


def test_only_administrators_start_adaptations(api, gateway, artifact_dir, client):
    assert post(api, "/api/v1/adaptations", adaptation_body()).status_code == 403
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    assert post(client, "/api/v1/adaptations", adaptation_body()).status_code == 401


def test_fig_4_3_classification_puts_secured_adaptation_data_on_the_secured_variant_and_off_disk(
    staff_api, gateway, artifact_dir
):
    # When the data holds secured examples and the variant is left to FIG. 4.3
    body = _start(staff_api, name="clinic", texts=SECURED_TEXTS)

    # Then step 442 counted them and step 444 chose the secured variant's environment
    job = AdaptationJob.objects.select_related("variant", "workload").get(pk=body["id"])
    assert (body["variant_kind"], body["sensitive_examples"], body["secured"]) == ("secured", 2, True)
    assert job.environment == gateway.secured and job.workload.environment == gateway.secured
    assert job.workload.handles_secured_data and job.workload.kind == "adaptation"
    placement = job.workload.placements.get()
    assert placement.decided_by == "variant selection (FIG. 4.3 step 444)"
    assert placement.evidence["sensitive_examples"] == 2
    # The texts wait on the private path only: not in the database, not on disk, not public Redis
    assert job.dataset_source == "private"
    for fragment in ("Quist", "metformin"):
        assert tables_containing(fragment) == []
        assert redis_keys_containing(settings.REDIS_URL, fragment) == []
        assert not any(fragment in p.read_text() for p in artifact_dir.rglob("*") if p.is_file())
    private = redis.Redis.from_url(settings.SECURED_REDIS_URL)
    assert "Wilhelmina Quist" in private.get(job.dataset_ref).decode()
    adaptation_job_cancel(job_id=job.pk)
    assert private.exists(job.dataset_ref) == 0


def test_public_adaptation_data_goes_to_the_public_variant_as_a_dataset_file(
    staff_api, gateway, artifact_dir
):
    body = _start(staff_api)

    job = AdaptationJob.objects.get(pk=body["id"])
    assert (body["variant_kind"], body["sensitive_examples"], job.environment) == (
        "public",
        0,
        gateway.public,
    )
    assert job.dataset_source == "upload"
    lines = (artifact_dir / job.dataset_ref).read_text().splitlines()
    assert [json.loads(line)["text"] for line in lines] == PUBLIC_TEXTS


def test_a_run_produces_a_versioned_adapter_with_its_provenance_and_metrics(
    staff_api, gateway, gateway_model_dir, artifact_dir
):
    from console.progress import progress_read
    from telemetry.models import TelemetrySample

    # Given an adaptation started through the API and run on this process
    body = _start(staff_api)
    assert _run_here(body["id"]) == "completed"

    # Then the adapter lies in ARTIFACT_DIR/adapters/<name>/<version>/ in peft's format
    job = AdaptationJob.objects.select_related("artifact", "workload").get(pk=body["id"])
    artifact = job.artifact
    assert (artifact.name, artifact.version, artifact.path) == ("ferry", 1, "adapters/ferry/1")
    files = adaptation.adapter_read(artifact_dir / "adapters" / "ferry" / "1")
    assert files.config["r"] == 4 and len(files.tensors) == 2 * 4 * 2
    meta = files.metadata
    assert (
        meta["base_fingerprint"]
        == adaptation.base_fingerprint(gateway_model_dir)
        == artifact.base_fingerprint
    )
    assert (meta["base_model"], meta["variant_kind"], meta["environment"]) == (
        "default",
        "public",
        gateway.public.slug,
    )
    assert meta["dataset_ref"] == f"upload:{job.dataset_ref}" and meta["dataset_examples"] == 12
    metrics = artifact.metrics
    assert len(metrics["loss_curve"]) == 12 and metrics["steps"] == 12 and metrics["seconds"] > 0
    assert metrics["heldout_perplexity"] > 0 and metrics["base_heldout_perplexity"] > 0
    # And the job, its workload, the telemetry store and the console saw it through
    assert (job.state, job.steps_done, job.workload.state) == ("completed", 12, "completed")
    assert not job.checkpoint_dir.exists()
    samples = TelemetrySample.objects.filter(workload=job.workload).order_by("-at", "-id")
    assert samples.filter(metric="progress_fraction").first().value == 1.0
    assert samples.filter(metric="steps_done").first().value == 12
    assert samples.filter(metric="training_loss").first().value == pytest.approx(
        metrics["loss_curve"][-1], abs=1e-4
    )
    assert samples.filter(metric="eta_s").first().value == 0.0
    assert progress_read("adaptation", str(job.pk))["state"] == "completed"

    # A second run of the same name is version 2; the API lists both with their metrics
    assert _run_here(_start(staff_api)["id"]) == "completed"
    listed = staff_api.get("/api/v1/adapters?name=ferry").json()
    assert [(a["label"], a["metrics"]["steps"]) for a in listed] == [("ferry@2", 12), ("ferry@1", 12)]
    detail = staff_api.get(f"/api/v1/adaptations/{job.pk}").json()
    assert (detail["state"], detail["adapter"], detail["fraction_done"]) == ("completed", "ferry@1", 1.0)


def test_cancel_stops_a_queued_job_at_once_and_a_running_one_at_its_next_step(
    staff_api, gateway, artifact_dir
):
    from inference.adaptation_services import _ProgressReporter

    queued = _start(staff_api)
    response = post(staff_api, f"/api/v1/adaptations/{queued['id']}/cancel", {})
    assert (response.status_code, response.json()["state"]) == (202, "cancelled")
    assert post(staff_api, f"/api/v1/adaptations/{queued['id']}/cancel", {}).status_code == 409

    # A running job (live lease) is only flagged; its run sees the flag at its next step
    running = AdaptationJob.objects.get(pk=_start(staff_api)["id"])
    AdaptationJob.objects.filter(pk=running.pk).update(
        state="running", runner="worker-1", lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert post(staff_api, f"/api/v1/adaptations/{running.pk}/cancel", {}).json()["cancel_requested"] is True
    running.refresh_from_db()
    assert running.state == "running"
    assert _ProgressReporter(running, running.environment_id, "worker-1").control(3) == "cancel"


def test_a_job_whose_worker_died_is_requeued_and_resumes_from_its_checkpoint(
    staff_api, gateway, artifact_dir
):
    job = AdaptationJob.objects.get(pk=_start(staff_api, steps=12)["id"])
    # A first run stops after its step-5 checkpoint, as if its worker had been killed
    lora = adaptation.LoraSettings.from_dict(job.lora)
    from inference.adaptation_services import job_texts

    adaptation.train_adapter(
        job.ai_model.path,
        job_texts(job),
        lora,
        checkpoint_dir=job.checkpoint_dir,
        control=lambda s: None if s < 6 else "cancel",
    )
    AdaptationJob.objects.filter(pk=job.pk).update(
        state="running", runner="dead-worker", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert adaptation_jobs_recover(dispatch=False) == [job.pk]
    assert _run_here(job.pk) == "completed"

    job.refresh_from_db()
    assert job.resumed_from == [5] and job.attempts == 1
    assert job.artifact.metrics["resumed_from_step"] == 5


def test_pausing_a_job_that_is_not_running_returns_its_newest_checkpoint(staff_api, gateway, artifact_dir):
    job = AdaptationJob.objects.get(pk=_start(staff_api)["id"])

    checkpoint = adaptation_job_pause(job.workload_id, job.environment_id)

    assert checkpoint == {"job": job.pk, "step": 0, "path": None}
    assert AdaptationJob.objects.get(pk=job.pk).state == "paused"


def _artifact(gateway, version: int, *, secured: bool = False) -> AdapterArtifact:
    return AdapterArtifact.objects.create(
        name="ferry",
        version=version,
        kind="adaptation",
        path=f"adapters/ferry/{version}",
        ai_model=gateway.model,
        base_fingerprint=adaptation.base_fingerprint(gateway.model.path),
        secured=secured,
    )


def test_promotion_and_rollback_are_recorded_with_who_when_from_and_to(staff_api, gateway, artifact_dir):
    first, second = _artifact(gateway, 1), _artifact(gateway, 2)
    variant = gateway.public_variant

    promoted = post(staff_api, "/api/v1/promotions", {"variant": variant.name, "adapter": "ferry@1"})
    again = post(
        staff_api, "/api/v1/promotions", {"variant": variant.name, "adapter": "ferry", "reason": "v2"}
    )
    rolled = post(staff_api, "/api/v1/promotions/rollback", {"variant": variant.name, "reason": "worse"})

    assert [r.status_code for r in (promoted, again, rolled)] == [201, 201, 201]
    records = list(Promotion.objects.order_by("id"))
    assert [(r.action, r.from_artifact, r.to_artifact) for r in records] == [
        ("promote", None, first),
        ("promote", first, second),
        ("rollback", second, first),
    ]
    assert {r.decided_by_name for r in records} == {"operator"} and all(r.created_at for r in records)
    assert rolled.json()["reason"] == "worse"
    # Rolling back past the first promotion leaves the base model alone
    adapter_rollback(variant_id=variant.pk, user=staff_api.user)
    assert Promotion.objects.order_by("-id").first().to_artifact is None
    listed = staff_api.get("/api/v1/promotions").json()
    assert [row["action"] for row in listed] == ["rollback", "rollback", "promote", "promote"]


def test_a_secured_adapter_cannot_be_promoted_to_a_public_variant(gateway, artifact_dir, staff_api):
    from inference.adaptation_services import AdaptationRefused

    secured = _artifact(gateway, 1, secured=True)
    with pytest.raises(AdaptationRefused, match="only secured variants serve it"):
        adapter_promote(variant_id=gateway.public_variant.pk, artifact_id=secured.pk, user=staff_api.user)
    promotion = adapter_promote(
        variant_id=gateway.secured_variant.pk, artifact_id=secured.pk, user=staff_api.user
    )
    assert promotion.to_artifact == secured


def test_the_gateway_serves_a_named_or_promoted_adapter_and_a_secured_one_only_secured(gateway, artifact_dir):
    from variants.services import ClientFacts, PromptRefused, PromptSubmission, prompt_route

    public_adapter, secured_adapter = _artifact(gateway, 1), _artifact(gateway, 2, secured=True)
    ordinary = "How do I reverse a list in Python?"

    def route(**fields):
        return prompt_route(
            user=None, submission=PromptSubmission(ordinary, ordinary, **fields), client=ClientFacts()
        )

    # Named adapters ride with the request to the worker
    named = route(adapter="ferry@1")
    assert (named.route, named.adapter.label, named.target.adapter_label) == ("public", "ferry@1", "ferry@1")
    assert named.target.adapter_dir == str(public_adapter.directory)
    # A secured adapter takes an ordinary prompt to the secured variant (Example 2's step [4])
    secured = route(adapter="ferry@2")
    assert (secured.route, secured.adapter.label, secured.eligible) == ("secured", "ferry@2", True)
    # Unknown adapters are refused before anything is sent
    with pytest.raises(PromptRefused) as refused:
        route(adapter="nope")
    assert (refused.value.status, refused.value.code) == (422, "unknown_adapter")
    # Without a name, the variant's promoted adapter serves
    assert route().adapter is None
    adapter_promote(variant_id=gateway.public_variant.pk, artifact_id=public_adapter.pk, user=None)
    promoted = route()
    assert (promoted.adapter.label, promoted.adapter.promoted) == ("ferry@1", True)
    assert secured_adapter.pk != public_adapter.pk


def test_the_admin_starts_a_job_through_the_same_validation(admin_client_logged_in, gateway, artifact_dir):
    url = "/admin/inference/adaptationjob/add/"
    form = {
        "name": "from-admin",
        "kind": "adaptation",
        "ai_model": gateway.model.pk,
        "texts": "\n".join(PUBLIC_TEXTS),
        "lora_settings": json.dumps({**TEST_LORA, "rank": 0}),
        "target_variant": "auto",
    }
    refused = admin_client_logged_in.post(url, form)
    assert refused.status_code == 200 and b"rank must be a positive integer" in refused.content

    created = admin_client_logged_in.post(url, {**form, "lora_settings": json.dumps(TEST_LORA)})

    assert created.status_code == 302, created.content[:2000]
    job = AdaptationJob.objects.get()
    assert (job.name, job.origin, job.dataset_examples, job.variant.kind) == (
        "from-admin",
        "admin",
        12,
        "public",
    )
    assert admin_client_logged_in.get("/admin/inference/adaptationjob/").status_code == 200
    assert admin_client_logged_in.get(f"/admin/inference/adaptationjob/{job.pk}/change/").status_code == 200
    assert admin_client_logged_in.get("/admin/inference/adapterartifact/").status_code == 200
    assert admin_client_logged_in.get("/admin/inference/promotion/add/").status_code == 200


def test_a_dataset_file_under_artifact_dir_is_read_line_by_line(staff_api, gateway, artifact_dir):
    folder = Path(artifact_dir) / "datasets"
    folder.mkdir()
    lines = [{"text": PUBLIC_TEXTS[0]}, {"prompt": "Q?", "completion": "A."}]
    (folder / "notes.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")

    response = post(
        staff_api, "/api/v1/adaptations", {**adaptation_body(), "dataset": {"file": "notes.jsonl"}}
    )

    assert response.status_code == 202, response.content
    job = AdaptationJob.objects.get()
    assert (job.dataset_source, job.dataset_ref, job.dataset_examples) == ("file", "datasets/notes.jsonl", 2)
