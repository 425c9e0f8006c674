# ruff: noqa: F811 - pytest fixtures are imported by name from adaptation_support
"""Training workloads over the public variant's feedback (claim 2, Example 3): what enters the
training set, and the schedule that starts them. The real-worker run is in
test_adaptation_workers (secured prompts never enter a training set)."""

from __future__ import annotations

import json

import pytest

from inference.adaptation_services import feedback_examples, feedback_training_schedule
from inference.models import AdaptationJob
from inference.tests.adaptation_support import artifact_dir, gateway, gateway_model_dir, sensitivity_artifact  # noqa: F401
from variants.models import FeedbackExample, PromptRequest

pytestmark = pytest.mark.django_db

ORDINARY = [
    "How do I reverse a list in Python without modifying the original?",
    "What is the difference between a tuple and a list?",
    "Explain list comprehensions with a short example.",
    "How do I sort a dictionary by value?",
]


def _request(gateway, route: str) -> PromptRequest:
    variant = gateway.secured_variant if route == "secured" else gateway.public_variant
    return PromptRequest.objects.create(
        eligible=True,
        route=route,
        variant=variant,
        environment=variant.environment,
        ai_model=gateway.model,
        status="completed",
    )


def _feedback(gateway, prompt: str, route: str = "public") -> FeedbackExample:
    return FeedbackExample.objects.create(
        request=_request(gateway, route), ai_model=gateway.model, prompt=prompt, payload=" the answer"
    )


def test_only_completed_public_requests_feedback_is_eligible_for_training(gateway, artifact_dir):
    kept = _feedback(gateway, ORDINARY[0])
    # A feedback row tied to a secured request should never exist; if one did, it stays out
    _feedback(gateway, "Pat's SSN is 536-22-8146", route="secured")
    failed = _feedback(gateway, ORDINARY[1])
    PromptRequest.objects.filter(pk=failed.request_id).update(status="failed")

    assert list(feedback_examples(ai_model=gateway.model)) == [kept]


def test_feedback_the_classifier_now_scores_as_secured_is_dropped_from_the_training_set(
    gateway, artifact_dir
):
    for prompt in ORDINARY[:3]:
        _feedback(gateway, prompt)
    # Routed public by an older classifier or threshold, but secured data by today's
    _feedback(gateway, "I'm Dana Whitfield, born 14/03/1987, and I was diagnosed with type 2 diabetes.")

    started = feedback_training_schedule(min_examples=4)

    job = AdaptationJob.objects.select_related("workload").get(pk=started[0])
    assert (job.kind, job.origin, job.variant.kind, job.dataset_examples, job.secured) == (
        "training",
        "schedule",
        "public",
        3,
        False,
    )
    lines = [json.loads(line)["text"] for line in (artifact_dir / job.dataset_ref).read_text().splitlines()]
    assert [line.split("\n")[0] for line in lines] == ORDINARY[:3]
    evidence = job.workload.placements.get().evidence
    assert (evidence["dropped_sensitive"], evidence["feedback_examples"]) == (1, 3)


def test_the_schedule_waits_for_enough_new_feedback_and_runs_one_training_at_a_time(gateway, artifact_dir):
    for prompt in ORDINARY[:3]:
        _feedback(gateway, prompt)
    assert feedback_training_schedule(min_examples=4) == []

    _feedback(gateway, ORDINARY[3])
    first = feedback_training_schedule(min_examples=4)
    assert len(first) == 1
    # While it has not finished, no second run starts, whatever arrives
    for prompt in ORDINARY:
        _feedback(gateway, prompt + " (again)")
    assert feedback_training_schedule(min_examples=4) == []

    # Once it finished, only feedback that arrived after it started counts
    AdaptationJob.objects.filter(pk=first[0]).update(state="completed")
    second = feedback_training_schedule(min_examples=4)
    assert len(second) == 1 and AdaptationJob.objects.get(pk=second[0]).dataset_examples == 8
