"""A public variant served through its model's split plan: the gateway coordinates real
split-node processes (``run_split_node``) over the data-plane Redis; no Celery worker runs.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inference.runtime import generate, load_model
from inference.split.services import split_node_register, split_plan_activate, split_plan_propose
from inference.tests.test_split_nodes import node_processes
from variants.models import FeedbackExample, PromptRequest, Variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ORDINARY = "How do I reverse a list in Python without modifying the original?"
NODES = [f"gw{uuid.uuid4().hex[:6]}a", f"gw{uuid.uuid4().hex[:6]}b"]


@pytest.fixture(scope="module")
def split_nodes(django_db_setup):
    with node_processes(NODES) as processes:
        yield processes


@pytest.fixture
def split_served(gateway, split_nodes):
    """The gateway's public variant served by a two-partition plan over the two nodes."""
    for name in NODES:
        split_node_register(name=name, trust="trusted")
    plan = split_plan_propose(
        ai_model=gateway.model,
        partitions=[{"start": 0, "end": 1, "node": NODES[0]}, {"start": 1, "end": 2, "node": NODES[1]}],
        created_by="test",
    )
    split_plan_activate(plan=plan, timeout_s=60)
    gateway.public_variant.serving = Variant.Serving.SPLIT
    gateway.public_variant.save()
    return gateway


def whole_model_text(model_dir, prompt: str, max_new_tokens: int) -> str:
    return generate(load_model(model_dir, device="cpu"), prompt, max_new_tokens=max_new_tokens).text


def test_a_split_served_public_variant_answers_with_the_whole_models_text_and_keeps_feedback(
    api, split_served, gateway_model_dir
):
    response = api.post(
        "/api/v1/prompts",
        data=json.dumps({"prompt": ORDINARY, "max_new_tokens": 8}),
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["route"], body["variant"]) == ("public", "public")
    assert body["payload"] == whole_model_text(gateway_model_dir, ORDINARY, 8)
    assert body["timings"]["model_ms"] > 0
    row = PromptRequest.objects.get(pk=body["id"])
    assert (row.status, row.variant.serving) == ("completed", "split")
    assert 1 <= body["usage"]["completion_tokens"] == row.completion_tokens <= 8
    feedback = FeedbackExample.objects.get()
    assert (feedback.prompt, feedback.payload) == (ORDINARY, body["payload"])


def test_a_split_served_variant_streams_token_by_token_over_the_openai_api(
    api, split_served, gateway_model_dir
):
    body = {"messages": [{"role": "user", "content": ORDINARY}], "max_tokens": 8, "stream": True}

    response = api.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = [
        json.loads(line.removeprefix(b"data: "))
        for line in b"".join(response.streaming_content).splitlines()
        if line.startswith(b"data: {")
    ]
    pieces = [e["choices"][0]["delta"].get("content") for e in events if e.get("choices")]
    pieces = [p for p in pieces if p]
    row = PromptRequest.objects.get()
    assert (row.route, row.status, row.source) == ("public", "completed", "openai")
    # The text came as the tokens arrived, not as one block at the end.
    assert len(pieces) >= 2
    feedback = FeedbackExample.objects.get()
    assert "".join(pieces) == feedback.payload
    assert ORDINARY in feedback.prompt  # as the chat template rendered it
    assert feedback.payload == whole_model_text(gateway_model_dir, feedback.prompt, 8)


def test_a_split_stream_the_client_abandons_is_recorded_and_stopped(api, split_served):
    body = {"messages": [{"role": "user", "content": ORDINARY}], "max_tokens": 8, "stream": True}
    response = api.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200

    response.close()  # the client went away before reading anything

    row = PromptRequest.objects.get()
    assert (row.status, row.error_code, row.route) == ("failed", "client_gone", "public")
    assert not FeedbackExample.objects.exists()


def test_without_an_active_split_plan_a_stream_is_refused_with_503_before_it_starts(api, gateway):
    Variant.objects.filter(pk=gateway.public_variant.pk).update(serving=Variant.Serving.SPLIT)
    body = {"messages": [{"role": "user", "content": ORDINARY}], "max_tokens": 4, "stream": True}

    response = api.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "split_unavailable"
    assert PromptRequest.objects.get().error_code == "split_unavailable"


def test_without_an_active_split_plan_the_request_is_refused_with_503_and_recorded(api, gateway):
    Variant.objects.filter(pk=gateway.public_variant.pk).update(serving=Variant.Serving.SPLIT)

    response = api.post(
        "/api/v1/prompts",
        data=json.dumps({"prompt": ORDINARY, "max_new_tokens": 4}),
        content_type="application/json",
    )

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "split_unavailable"
    assert "no active split plan" in error["message"]
    row = PromptRequest.objects.get()
    assert (row.route, row.status, row.error_code) == ("public", "failed", "split_unavailable")
    assert not FeedbackExample.objects.exists()


def test_a_secured_variant_is_never_split_served(gateway):
    secured = gateway.secured_variant
    secured.serving = Variant.Serving.SPLIT

    with pytest.raises(ValidationError) as raised:
        secured.full_clean()
    assert "serving" in raised.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(pk=secured.pk).update(serving=Variant.Serving.SPLIT)
