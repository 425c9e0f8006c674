"""The prompt gateway end to end: real HTTP through Django, the real database, real Redis
(two logical databases: the public broker and the private path), real Celery worker
processes (one per variant environment, the secured one on the private broker) and a
tiny real model."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from django.conf import settings

from console.testing import subprocess_env
from inference.serving import running_worker
from variants.models import EligibilityPolicy, FeedbackExample, PromptRequest, SensitivityModel
from variants.tests.conftest import PUBLIC_SLUG, SECURED_SLUG
from variants.tests.traces import contains, redis_keys_containing, tables_containing

pytestmark = pytest.mark.django_db(transaction=True)

ORDINARY = "How do I reverse a list in Python without modifying the original?"


@pytest.fixture(scope="module")
def workers(django_db_setup, gateway_model_dir):
    """Run the secured environment's worker on the private broker and the public one's on the public."""
    env = subprocess_env(SWITCHYARD_PRELOAD_MODELS=str(gateway_model_dir), SWITCHYARD_TORCH_THREADS="1")
    log_dir = settings.VAR_DIR / "log"
    with (
        running_worker(
            queue=f"env.{SECURED_SLUG}",
            private_path=True,
            env=env,
            log_path=log_dir / f"test-{SECURED_SLUG}.log",
            cwd=settings.BASE_DIR,
        ) as secured,
        running_worker(
            queue=f"env.{PUBLIC_SLUG}",
            private_path=False,
            env=env,
            log_path=log_dir / f"test-{PUBLIC_SLUG}.log",
            cwd=settings.BASE_DIR,
        ) as public,
    ):
        yield {"secured": secured, "public": public}


def served_count(worker) -> int:
    return len(re.findall(r"generate_text\[[0-9a-f-]+\] received", worker.log_path.read_text()))


def prompt(api, text: str, **fields):
    body = {"prompt": text, "max_new_tokens": 6, **fields}
    return api.post("/api/v1/prompts", data=json.dumps(body), content_type="application/json")


def test_sensitive_prompt_goes_to_the_secured_variant_and_leaves_no_trace(api, gateway, workers, caplog):
    caplog.set_level(logging.DEBUG)
    marker = f"quokka{uuid.uuid4().hex[:10]}"
    text = (
        f"Hi, I'm Dana Whitfield, born 14/03/1987. My email is dana.{marker}@gmail.com and my "
        f"SSN is 536-22-8146 - can you fill in the loan form for me?"
    )
    secured_before, public_before = served_count(workers["secured"]), served_count(workers["public"])

    response = prompt(api, text)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["route"], body["variant"], body["eligible"]) == ("secured", "secured", True)
    assert body["environment"] == SECURED_SLUG
    assert body["sensitivity"] >= gateway.policy.threshold
    assert {"email"} <= set(body["categories"])
    assert isinstance(body["payload"], str) and body["usage"]["completion_tokens"] > 0
    assert response["X-Switchyard-Variant"] == "Secured variant"
    # It travelled to the secured environment's worker, on the private broker, and nowhere else.
    assert served_count(workers["secured"]) == secured_before + 1
    assert served_count(workers["public"]) == public_before
    # Then no trace of its text anywhere it could have been left.
    for fragment in (marker, "536-22-8146", "Dana Whitfield"):
        assert tables_containing(fragment) == []
        assert redis_keys_containing(settings.REDIS_URL, fragment) == []
        assert fragment not in caplog.text
        for worker in workers.values():
            assert fragment not in worker.log_path.read_text()
    assert not FeedbackExample.objects.exists()
    # Only metadata was kept, and GET shows only that.
    row = PromptRequest.objects.get(pk=body["id"])
    assert (row.route, row.status, row.fail_closed) == ("secured", "completed", False)
    assert row.timings["model_ms"] > 0 and row.timings["total_ms"] >= row.timings["model_ms"]
    detail = api.get(f"/api/v1/prompts/{body['id']}").json()
    assert (detail["prompt"], detail["payload"]) == (None, None)


def test_ordinary_prompt_goes_to_the_public_variant_and_is_kept_as_feedback(api, gateway, workers):
    response = prompt(api, ORDINARY)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["route"], body["variant"], body["environment"]) == ("public", "public", PUBLIC_SLUG)
    assert body["sensitivity"] < gateway.policy.threshold
    feedback = FeedbackExample.objects.get()
    assert (feedback.prompt, feedback.payload) == (ORDINARY, body["payload"])
    assert str(feedback.request_id) == body["id"]
    detail = api.get(f"/api/v1/prompts/{body['id']}").json()
    assert (detail["prompt"], detail["payload"], detail["status"]) == (ORDINARY, body["payload"], "completed")


def test_a_served_request_feeds_its_latency_split_to_the_monitoring_agent(api, gateway, workers):
    from placement.models import ProductionEnvironment, Workload
    from telemetry.models import TelemetrySample

    # Given the model's inferencing workload placed on the public environment
    public = ProductionEnvironment.objects.get(slug=PUBLIC_SLUG)
    workload = Workload.objects.create(
        name="chat", kind="inferencing", objective="latency", ai_model=gateway.model,
        environment=public, state="running",
    )  # fmt: skip
    # When an ordinary prompt is served there
    body = prompt(api, ORDINARY).json()
    assert body["environment"] == PUBLIC_SLUG
    # Then the placement loop sees its compute, queueing and transfer times, and the total
    samples = {
        s.metric: s.value for s in TelemetrySample.objects.filter(workload=workload, environment=public)
    }
    assert samples["latency_compute_ms"] == pytest.approx(body["timings"]["model_ms"])
    assert samples["latency_queue_ms"] == pytest.approx(body["timings"]["queue_ms"])
    assert samples["latency_total_ms"] == pytest.approx(body["timings"]["total_ms"], rel=1e-3)


def test_request_that_is_not_eligible_bypasses_variant_selection(api, gateway, workers):
    gateway.policy.bypass_phrases = "#quick"
    gateway.policy.save()

    response = prompt(api, "#quick what is 2 + 2?")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["eligible"], body["eligibility_reason"], body["route"]) == (False, "bypass_phrase", "bypass")
    assert (body["variant"], body["sensitivity"], body["environment"]) == (None, None, PUBLIC_SLUG)
    assert response["X-Switchyard-Eligible"] == "false"
    assert not FeedbackExample.objects.exists()


def test_a_classifier_that_raises_sends_the_request_to_the_secured_variant(api, gateway, workers, tmp_path):
    # Given an active sensitivity model whose artifact is corrupt
    broken = tmp_path / "broken-artifact"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    SensitivityModel.objects.update(active=False)
    SensitivityModel.objects.create(version=2, path=str(broken), active=True)

    # When an ordinary prompt arrives
    response = prompt(api, ORDINARY)

    # Then it fails closed: secured, recorded, nothing kept for training
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["route"], body["fail_closed"]) == ("secured", True)
    assert body["fail_reason"].startswith("classifier: sensitivity model v2 cannot be loaded")
    assert response["X-Switchyard-Fail-Closed"] == "true"
    assert PromptRequest.objects.get().fail_closed is True
    assert not FeedbackExample.objects.exists()


def test_a_conversation_routed_to_the_secured_variant_stays_there(api, gateway, workers):
    first = prompt(api, "My SSN is 536-22-8146, please fill in the tax form.", session_id="c-1")
    follow_up = prompt(api, ORDINARY, session_id="c-1")
    other = prompt(api, ORDINARY, session_id="c-2")

    assert first.json()["route"] == "secured"
    assert (follow_up.json()["route"], follow_up.json()["session_pinned"]) == ("secured", True)
    assert (other.json()["route"], other.json()["session_pinned"]) == ("public", False)
    assert FeedbackExample.objects.count() == 1


def test_generated_tokens_count_against_the_users_budget(api, gateway, workers, settings):
    settings.PROMPT_TOKENS_PER_MINUTE = 5

    first = prompt(api, ORDINARY, max_new_tokens=6)
    second = prompt(api, ORDINARY)

    assert first.status_code == 200
    assert first.json()["usage"]["completion_tokens"] >= 5
    assert second.status_code == 429


def test_policy_document_is_versioned_for_front_end_devices(api, gateway):
    first = api.get("/api/v1/policy/eligibility")
    gateway.policy.bypass_phrases = "#public"
    gateway.policy.vpn_header_value = "vpn-shared-secret"
    gateway.policy.save()
    second = api.get("/api/v1/policy/eligibility")
    unchanged = api.get("/api/v1/policy/eligibility", HTTP_IF_NONE_MATCH=second["ETag"])

    assert second.json()["version"] > first.json()["version"]
    assert second.json()["bypass_phrases"] == ["#public"]
    assert "vpn-shared-secret" not in second.content.decode()
    assert unchanged.status_code == 304
    assert EligibilityPolicy.objects.get().version == second.json()["version"]


def test_secured_prompt_text_is_not_in_the_worker_message_log_even_when_it_fails(api, gateway, workers):
    # A prompt too long for the model's context is refused by the worker; the refusal names
    # token counts only.
    marker = f"wombat{uuid.uuid4().hex[:8]}"
    text = f"My password is {marker}. " + "word " * 400

    response = prompt(api, text, max_new_tokens=200)

    assert response.status_code == 422
    assert "exceeds the model's context" in response.json()["error"]["message"]
    assert marker not in response.content.decode()
    assert marker not in workers["secured"].log_path.read_text()
    assert tables_containing(marker) == []


def test_trace_search_finds_a_marker_inside_a_queued_celery_message():
    # The searches above can fail: a base64 message body in a list is decoded and searched.
    import base64

    body = base64.b64encode(json.dumps([[], {"prompt": "secret-zebra"}, {}]).encode()).decode()
    message = json.dumps({"body": body, "headers": {"argsrepr": "()"}}).encode()

    assert contains(message, "secret-zebra") is True
    assert contains(message, "secret-okapi") is False


def test_the_openai_python_client_gets_chat_completions_and_routing_headers(
    live_server, make_api_user, gateway, workers
):
    from openai import OpenAI

    _, key = make_api_user("sdk-user")
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="default",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": ORDINARY}],
        max_tokens=5,
    )
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.model == "default"
    assert completion.choices[0].message.role == "assistant"
    assert isinstance(completion.choices[0].message.content, str)
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert 1 <= completion.usage.completion_tokens <= 5
    assert raw.headers["X-Switchyard-Route"] == "public"
    assert raw.headers["X-Switchyard-Eligible"] == "true"
    assert float(raw.headers["X-Switchyard-Sensitivity"]) < 0.5
    row = PromptRequest.objects.get(pk=raw.headers["X-Switchyard-Request-Id"])
    assert (row.source, row.completion_tokens) == ("openai", completion.usage.completion_tokens)


def test_the_openai_python_client_streams_a_secured_completion(live_server, make_api_user, gateway, workers):
    from openai import OpenAI

    _, key = make_api_user("sdk-streamer")
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    secret = "My bank PIN is 4921 and my card number is 4539 1488 0343 6467."

    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": secret}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage]
    assert chunks[0].object == "chat.completion.chunk"
    assert finish in (["length"], ["stop"])
    assert len(usage) == 1 and usage[0].completion_tokens >= 1
    row = PromptRequest.objects.get()
    assert (row.route, row.status, row.source) == ("secured", "completed", "openai")
    assert row.completion_tokens == usage[0].completion_tokens
    assert len(text) >= 1
    assert tables_containing("4539 1488") == []


def test_a_stream_the_client_abandons_is_still_recorded(api, gateway, workers):
    body = {"messages": [{"role": "user", "content": ORDINARY}], "max_tokens": 4, "stream": True}
    response = api.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"

    response.close()  # the client went away before reading anything

    row = PromptRequest.objects.get()
    assert (row.status, row.error_code, row.route) == ("failed", "client_gone", "public")
    assert not FeedbackExample.objects.exists()
