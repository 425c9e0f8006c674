# ruff: noqa: F811 - pytest fixtures are imported by name from adaptation_support
"""Adaptation and training workloads with real Celery workers: the public variant's worker on
the public broker and the secured variant's on the private one, the real database and Redis,
and the tiny real model.

- Example 2 (FIG. 4.3): adaptation on the public variant, then a prompt with personal health
  information served with that adapter on the secured variant, its text kept nowhere.
- A worker killed mid-run: the job resumes from its checkpoint on a new worker and ends with
  the adapter an uninterrupted run gives; the same across a migration to another environment.
- Claim 2 / Example 3: a training workload over the public variant's feedback, with secured
  prompts sent through the same gateway first: none of them is in the training set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.utils import timezone

from console.testing import subprocess_env
from inference import adaptation
from inference.adaptation_services import (
    adaptation_job_pause,
    adaptation_job_resume,
    adaptation_jobs_recover,
)
from inference.models import AdaptationJob, AdapterUse
from inference.serving import running_worker
from inference.tests.adaptation_support import (  # noqa: F401 - fixtures
    PUBLIC_TEXTS,
    TEST_LORA,
    adaptation_body,
    api,
    gateway,
    gateway_model_dir,
    make_api_user,
    post,
    sensitivity_artifact,
    staff_api,
)
from variants.models import FeedbackExample, PromptRequest
from variants.tests.conftest import PUBLIC_SLUG, SECURED_SLUG
from variants.tests.traces import redis_keys_containing, tables_containing

pytestmark = pytest.mark.django_db(transaction=True)

# Long enough that the test sees checkpoints written before the run ends, short enough to
# finish in seconds on the two-layer test model.
LONG_LORA = {**TEST_LORA, "steps": 240, "checkpoint_every": 10}
WORKER_ENV = {
    "SWITCHYARD_TORCH_THREADS": "1",
    # Frequent reports so the test sees progress and checkpoints promptly.
    "ADAPTATION_REPORT_EVERY_S": "0.1",
}


class Workers:
    """The two variant environments' workers; the public one can be killed and replaced."""

    def __init__(self, model_dir: Path, log_dir: Path) -> None:
        self.env = subprocess_env(SWITCHYARD_PRELOAD_MODELS=str(model_dir), **WORKER_ENV)
        self.log_dir = log_dir
        self._contexts: dict[str, object] = {}
        self.processes: dict[str, object] = {}

    def start(self, kind: str) -> None:
        private = kind == "secured"
        slug = SECURED_SLUG if private else PUBLIC_SLUG
        context = running_worker(
            queue=f"env.{slug}",
            private_path=private,
            env=self.env,
            log_path=self.log_dir / f"test-adapt-{slug}-{uuid.uuid4().hex[:6]}.log",
            cwd=settings.BASE_DIR,
        )
        self.processes[kind] = context.__enter__()
        self._contexts[kind] = context

    def kill(self, kind: str) -> None:
        """SIGKILL the worker and its pool processes: no warm shutdown, no requeue."""
        process = self.processes.pop(kind)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        context = self._contexts.pop(kind)
        context.__exit__(None, None, None)

    def stop(self) -> None:
        for kind in list(self._contexts):
            self._contexts.pop(kind).__exit__(None, None, None)

    def log(self, kind: str) -> str:
        return self.processes[kind].log_path.read_text()


@pytest.fixture(scope="module")
def artifact_root(tmp_path_factory):
    """A private ARTIFACT_DIR for the module, set before the workers start (they inherit it)."""
    previous = settings.ARTIFACT_DIR
    root = tmp_path_factory.mktemp("adaptation-artifacts")
    settings.ARTIFACT_DIR = root
    yield root
    settings.ARTIFACT_DIR = previous


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker, gateway_model_dir, artifact_root):
    stack = Workers(gateway_model_dir, Path(settings.VAR_DIR) / "log")
    try:
        stack.start("secured")
        stack.start("public")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def reference_adapter(gateway_model_dir, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The adapter an uninterrupted run of LONG_LORA over PUBLIC_TEXTS ends with (in this process)."""
    out = tmp_path_factory.mktemp("reference") / "adapter"
    adaptation.train_adapter(
        gateway_model_dir, PUBLIC_TEXTS, adaptation.LoraSettings.from_dict(LONG_LORA), out_dir=out
    )
    return adaptation.adapter_read(out).tensors


def _count(log: str, task: str) -> int:
    return len(re.findall(rf"{re.escape(task)}\[[0-9a-f-]+\] received", log))


def _wait(job_id: int, predicate, timeout_s: float = 240.0) -> AdaptationJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = AdaptationJob.objects.select_related("artifact", "workload").get(pk=job_id)
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck in {job.state} at step {job.steps_done}: {job.error}")
        time.sleep(0.1)


def _assert_same_adapter(job: AdaptationJob, reference: dict[str, torch.Tensor]) -> None:
    tensors = adaptation.adapter_read(job.artifact.directory).tensors
    assert tensors.keys() == reference.keys()
    assert all(torch.equal(tensors[key], reference[key]) for key in reference)


def test_example_2_adapts_on_the_public_variant_then_serves_health_data_with_it_on_the_secured_one(
    api, gateway, workers, caplog
):
    marker = f"okapi{uuid.uuid4().hex[:8]}"
    prompt = (
        f"I'm Wilhelmina Quist ({marker}), born 14/03/1987. My doctor diagnosed type 2 diabetes and "
        "put me on metformin 500 mg; what should I ask at my next appointment?"
    )
    adapted_before = _count(workers.log("public"), "inference.tasks.adaptation_run")
    secured_before = _count(workers.log("secured"), "inference.tasks.generate_text")
    public_before = _count(workers.log("public"), "inference.tasks.generate_text")

    # [1] The front end asks for a payload from a model adapted on (non-sensitive) data
    response = post(
        api,
        "/api/v1/adapted-prompts",
        {
            "prompt": prompt,
            "max_new_tokens": 6,
            "adaptation": {"name": "ferry-faq", "dataset": {"texts": PUBLIC_TEXTS}, "lora": TEST_LORA},
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    # [2]-[3] The adaptation data holds nothing secured: the PEFT workload ran on the public variant
    assert body["adaptation"]["variant"] == "public" and body["adaptation"]["sensitive_examples"] == 0
    assert body["adaptation"]["environment"] == PUBLIC_SLUG
    assert _count(workers.log("public"), "inference.tasks.adaptation_run") == adapted_before + 1
    # [4]-[5] The request itself is health data: served on the secured variant, with the adapter
    assert (body["route"], body["variant"], body["environment"]) == ("secured", "secured", SECURED_SLUG)
    assert "health" in body["categories"]
    assert body["adapter"] == "ferry-faq@1" == body["adaptation"]["adapter"]
    assert response["X-Switchyard-Adapter"] == "ferry-faq@1"
    assert isinstance(body["payload"], str) and body["usage"]["completion_tokens"] > 0
    assert _count(workers.log("secured"), "inference.tasks.generate_text") == secured_before + 1
    assert _count(workers.log("public"), "inference.tasks.generate_text") == public_before
    # Only metadata is kept: which adapter served the request, never the prompt
    use = AdapterUse.objects.select_related("artifact").get(request_id=body["id"])
    assert (use.artifact.label, use.promoted, use.artifact.secured) == ("ferry-faq@1", False, False)
    for fragment in (marker, "Wilhelmina Quist"):
        assert tables_containing(fragment) == []
        assert redis_keys_containing(settings.REDIS_URL, fragment) == []
        assert fragment not in caplog.text
        assert fragment not in workers.log("secured") and fragment not in workers.log("public")
    assert not FeedbackExample.objects.exists()
    detail = api.get(f"/api/v1/prompts/{body['id']}").json()
    assert (detail["prompt"], detail["payload"], detail["adapter"]) == (None, None, "ferry-faq@1")


def test_a_job_whose_worker_is_killed_resumes_from_its_checkpoint_with_the_same_final_adapter(
    staff_api, gateway, workers, reference_adapter
):
    # Given a run on the public variant's worker that has written a checkpoint
    body = post(staff_api, "/api/v1/adaptations", adaptation_body(name="crash", **LONG_LORA)).json()
    running = _wait(body["id"], lambda job: job.checkpoint_step >= 10 or job.is_finished)
    assert running.state == "running", "the run finished before the worker could be killed"

    # When the worker dies without warning and a new one comes up
    workers.kill("public")
    stale = AdaptationJob.objects.get(pk=body["id"])
    assert stale.state == "running" and stale.steps_done < LONG_LORA["steps"]
    workers.start("public")
    # The recovery task runs once the dead worker's lease has run out
    assert adaptation_jobs_recover(now=timezone.now() + timedelta(seconds=61)) == [body["id"]]

    # Then the new worker resumes from the checkpoint and ends where an uninterrupted run ends
    job = _wait(body["id"], lambda job: job.is_finished)
    assert job.state == "completed", job.error
    assert job.resumed_from and job.resumed_from[-1] >= 10 and job.resumed_from[-1] % 10 == 0
    assert job.artifact.metrics["resumed_from_step"] == job.resumed_from[-1]
    assert job.attempts == 2
    _assert_same_adapter(job, reference_adapter)


def test_a_migrated_job_pauses_with_a_checkpoint_and_finishes_on_the_target(
    staff_api, gateway, workers, reference_adapter
):
    # Given a run on the public environment
    body = post(staff_api, "/api/v1/adaptations", adaptation_body(name="moving", **LONG_LORA)).json()
    _wait(body["id"], lambda job: job.checkpoint_step >= 10 or job.is_finished)
    job = AdaptationJob.objects.select_related("workload").get(pk=body["id"])

    # When the placement loop's migration pauses it, switches routing, and resumes it elsewhere
    checkpoint = adaptation_job_pause(job.workload_id, gateway.public.pk)
    assert checkpoint["state"] == "paused" and checkpoint["step"] > 0
    assert checkpoint["path"].startswith(f"checkpoints/adaptation-job-{job.pk}/step-")
    job.workload.environment = gateway.secured
    job.workload.save(update_fields=["environment"])
    adaptation_job_resume(job.workload_id, gateway.secured.pk, checkpoint)

    # Then it completes on the target from the checkpoint, with the uninterrupted run's adapter
    job = _wait(job.pk, lambda job: job.is_finished)
    assert (job.state, job.environment_id) == ("completed", gateway.secured.pk)
    assert job.resumed_from == [checkpoint["step"]]
    assert job.artifact.environment_id == gateway.secured.pk
    _assert_same_adapter(job, reference_adapter)


def test_secured_prompts_never_enter_the_training_set_of_a_training_workload(
    api, staff_api, gateway, workers, artifact_root
):
    # Given public and secured prompts sent through the gateway to the variants' workers
    public_prompts = [
        "How do I reverse a list in Python without modifying the original?",
        "What is the difference between a tuple and a list?",
        "Explain list comprehensions with a short example.",
    ]
    marker = f"quagga{uuid.uuid4().hex[:8]}"
    secured_prompts = [
        f"My SSN is 536-22-8146 and my email is pat.{marker}@gmail.com; fill in the tax form.",
        f"I'm Pat Okafor ({marker}); my HIV test came back positive, who should I tell at work?",
    ]
    for text in public_prompts + secured_prompts:
        response = post(api, "/api/v1/prompts", {"prompt": text, "max_new_tokens": 4})
        assert response.status_code == 200, response.content
    routes = sorted(PromptRequest.objects.values_list("route", flat=True))
    assert routes == ["public"] * 3 + ["secured"] * 2

    # When an administrator starts a training workload on the public variant's feedback
    response = post(staff_api, "/api/v1/trainings", {"model": "default", "lora": TEST_LORA})
    assert response.status_code == 202, response.content
    job = _wait(response.json()["id"], lambda job: job.is_finished)

    # Then it trained on exactly the public prompts and their payloads
    assert (job.state, job.kind, job.variant.kind, job.dataset_source) == (
        "completed",
        "training",
        "public",
        "feedback",
    )
    lines = [json.loads(line)["text"] for line in (artifact_root / job.dataset_ref).read_text().splitlines()]
    feedback = {f"{row.prompt}\n{row.payload}" for row in FeedbackExample.objects.all()}
    assert len(lines) == 3 and set(lines) == feedback
    assert sorted(line.split("\n")[0] for line in lines) == sorted(public_prompts)
    # And no secured prompt is anywhere: the dataset, the adapter's files, any table
    for fragment in (marker, "536-22-8146", "Okafor"):
        assert tables_containing(fragment) == []
        for path in artifact_root.rglob("*"):
            if path.is_file() and path.suffix in (".jsonl", ".json"):
                assert fragment not in path.read_text()
    assert job.workload.placements.get().evidence["feedback_examples"] == 3

    # The new version can be promoted to the public variant, served, and rolled back
    label = job.artifact.label
    promoted = post(
        staff_api, "/api/v1/promotions", {"variant": gateway.public_variant.name, "adapter": label}
    )
    assert promoted.status_code == 201, promoted.content
    served = post(api, "/api/v1/prompts", {"prompt": public_prompts[0], "max_new_tokens": 4}).json()
    assert (served["route"], served["adapter"]) == ("public", label)
    assert AdapterUse.objects.get(request_id=served["id"]).promoted is True
    assert (
        post(staff_api, "/api/v1/promotions/rollback", {"variant": gateway.public_variant.name}).status_code
        == 201
    )
    after = post(api, "/api/v1/prompts", {"prompt": public_prompts[1], "max_new_tokens": 4}).json()
    assert after["adapter"] is None
