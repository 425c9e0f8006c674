"""Every refusal of the prompt APIs is JSON with a message and the right status, and none of
them repeats the prompt. These cases are decided before any worker is involved (except the
timeout, which is about the absence of one)."""

import json

import pytest

from variants.models import PromptRequest, Variant
from variants.throttles import tokens_charge

pytestmark = pytest.mark.django_db

SECRET = "Tell them my card is 4539 1488 0343 6467"


def post(api, body, path="/api/v1/prompts", **extra):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return api.post(path, data=raw, content_type="application/json", **extra)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == response.status_code
    assert error["message"]
    return error


def test_malformed_json_is_refused_with_400(api, gateway):
    response = post(api, '{"prompt": "unterminated')

    assert response.status_code == 400
    assert "JSON parse error" in error_of(response)["message"]


def test_empty_and_missing_prompts_are_refused_with_400(api, gateway):
    empty = post(api, {"prompt": "   \n"})
    missing = post(api, {"max_new_tokens": 5})
    not_an_object = post(api, ["a", "list"])

    assert (empty.status_code, missing.status_code, not_an_object.status_code) == (400, 400, 400)
    assert error_of(empty)["message"] == "prompt: The prompt is empty."
    assert error_of(missing)["message"] == "prompt: This field is required."


def test_prompt_longer_than_the_policy_allows_is_refused_with_413_without_echoing_it(api, gateway):
    gateway.policy.max_prompt_chars = 20
    gateway.policy.save()

    response = post(api, {"prompt": SECRET})

    assert response.status_code == 413
    assert error_of(response)["message"] == f"The prompt has {len(SECRET)} characters; the limit is 20."
    assert "4539" not in response.content.decode()


def test_request_body_over_the_byte_limit_is_refused_with_413(api, gateway, settings):
    settings.PROMPT_MAX_REQUEST_BYTES = 1024

    response = post(api, {"prompt": "x" * 2000})

    assert response.status_code == 413
    assert "the limit is 1024" in error_of(response)["message"]


def test_unknown_model_and_out_of_range_parameters_are_refused_with_422(api, gateway):
    unknown = post(api, {"prompt": "hello", "model": "gpt-17"})
    hot = post(api, {"prompt": "hello", "temperature": 7.5})
    long = post(api, {"prompt": "hello", "max_new_tokens": 100000})
    bad_top_p = post(api, {"prompt": "hello", "top_p": 0})

    assert [r.status_code for r in (unknown, hot, long, bad_top_p)] == [422, 422, 422, 422]
    assert error_of(unknown)["message"] == "Unknown model 'gpt-17'."
    assert error_of(hot)["message"] == "temperature: Ensure this value is less than or equal to 2.0."
    assert error_of(bad_top_p)["message"] == "top_p: Ensure this value is greater than 0."


def test_wrong_parameter_types_are_refused_with_400(api, gateway):
    response = post(api, {"prompt": "hello", "max_new_tokens": "many"})

    assert response.status_code == 400
    assert error_of(response)["message"] == "max_new_tokens: A valid integer is required."


def test_requests_without_credentials_are_refused_with_401(client, gateway):
    response = post(client, {"prompt": "hello"})
    chat = post(client, {"messages": [{"role": "user", "content": "hi"}]}, path="/v1/chat/completions")

    assert (response.status_code, chat.status_code) == (401, 401)
    assert error_of(response)["message"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == "Token"


def test_a_user_over_the_request_rate_is_throttled_with_429(api, gateway, settings):
    settings.PROMPT_RATE_PER_MINUTE = 2
    for _ in range(2):
        assert post(api, {"prompt": ""}).status_code == 400

    response = post(api, {"prompt": "hello"})

    assert response.status_code == 429
    assert error_of(response)["message"].startswith("Request was throttled.")
    assert int(response["Retry-After"]) > 0


def test_a_user_over_the_generated_token_budget_is_throttled_with_429(api, gateway, settings):
    settings.PROMPT_TOKENS_PER_MINUTE = 100
    tokens_charge(api.user.pk, 100)

    response = post(api, {"prompt": "hello"})

    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"


def test_no_available_secured_variant_refuses_a_sensitive_prompt_with_503_and_records_it(api, gateway):
    Variant.objects.filter(kind=Variant.Kind.SECURED).update(enabled=False)

    response = post(api, {"prompt": "My SSN is 536-22-8146 and my password is Tr0ub4dor&3"})

    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "no_variant"
    assert error["message"].startswith("No secured variant of model 'default' is available.")
    assert "536-22" not in response.content.decode()
    row = PromptRequest.objects.get()
    assert (row.route, row.status, row.error_code) == ("secured", "failed", "no_variant")
    assert row.variant is None


def test_missing_public_variant_falls_back_to_the_secured_one_never_the_reverse(api, gateway, settings):
    # With no worker behind the secured variant this request times out, but it went there.
    settings.INFERENCE_TIMEOUT_S = 1
    Variant.objects.filter(kind=Variant.Kind.PUBLIC).update(enabled=False)

    response = post(api, {"prompt": "What is the capital of Australia?"})

    assert response.status_code == 504
    row = PromptRequest.objects.get()
    assert (row.route, row.variant.kind) == ("secured", "secured")
    assert row.fail_reason == "no public variant available; served by the secured variant"


def test_no_worker_answering_gives_504_within_the_timeout(api, gateway, settings):
    settings.INFERENCE_TIMEOUT_S = 1

    response = post(api, {"prompt": "How do I sort a list in Python?"})

    assert response.status_code == 504
    error = error_of(response)
    assert error["code"] == "worker_timeout"
    assert error["message"].startswith("no worker answered within 1 s")
    row = PromptRequest.objects.get()
    assert (row.status, row.error_code) == ("failed", "worker_timeout")


def test_chat_completions_validates_its_messages(api, gateway):
    no_messages = post(api, {"model": "default", "messages": []}, path="/v1/chat/completions")
    image = post(
        api,
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        path="/v1/chat/completions",
    )
    two = post(api, {"messages": [{"role": "user", "content": "hi"}], "n": 2}, path="/v1/chat/completions")

    assert no_messages.status_code == 400
    assert image.status_code == 422
    assert "Only text content parts are supported." in error_of(image)["message"]
    assert two.status_code == 422


def test_openapi_schema_documents_the_prompt_endpoints_and_both_token_spellings(admin_client_logged_in):
    schema = admin_client_logged_in.get("/api/schema/", {"format": "json"}).json()

    assert {"/api/v1/prompts", "/api/v1/prompts/{request_id}", "/api/v1/policy/eligibility"} <= set(
        schema["paths"]
    )
    assert "post" in schema["paths"]["/v1/chat/completions"]
    assert {"tokenAuth", "bearerAuth"} <= set(schema["components"]["securitySchemes"])


def test_rendered_request_documents_match_the_documented_serializers(gateway, make_api_user):
    from variants.models import FeedbackExample
    from variants.serializers import PromptDetailSerializer, PromptResultSerializer, prompt_request_document

    user, _ = make_api_user()
    row = PromptRequest.objects.create(
        user=user, eligible=True, route="public", variant=gateway.public_variant, environment=gateway.public,
        ai_model=gateway.model, sensitivity=0.12, categories=["email"], status="completed", prompt_tokens=3,
        completion_tokens=2, timings={"total_ms": 4.5},
    )  # fmt: skip
    FeedbackExample.objects.create(request=row, ai_model=gateway.model, prompt="p", payload="q")
    row = PromptRequest.objects.select_related("variant", "environment", "ai_model", "feedback").get()
    row.payload = "q"

    assert prompt_request_document(row, payload="q") == json.loads(
        json.dumps(PromptResultSerializer(row).data)
    )
    assert prompt_request_document(row, detail=True) == json.loads(
        json.dumps(PromptDetailSerializer(row).data)
    )


def test_the_api_caps_new_tokens_where_the_runtime_does():
    from inference.runtime import MAX_NEW_TOKENS_CAP as runtime_cap
    from variants.serializers import MAX_NEW_TOKENS_CAP as api_cap

    assert api_cap == runtime_cap


def test_network_and_group_criteria_come_from_the_request_and_the_user(api, gateway, settings):
    # No worker serves these, so each ends in a 504; the routing rows are what is checked.
    from django.contrib.auth.models import Group

    settings.INFERENCE_TIMEOUT_S = 1
    gateway.policy.network_rule = "private_only"
    gateway.policy.private_networks = "10.0.0.0/8"
    gateway.policy.vpn_header = "X-Corp-VPN"
    gateway.policy.vpn_header_value = "tunnel-7"
    gateway.policy.save()

    post(api, {"prompt": "How do I sort a list?"}, REMOTE_ADDR="203.0.113.5")
    post(api, {"prompt": "How do I sort a list?"}, REMOTE_ADDR="10.4.5.6")
    post(api, {"prompt": "How do I sort a list?"}, REMOTE_ADDR="203.0.113.5", HTTP_X_CORP_VPN="tunnel-7")
    interns = Group.objects.create(name="interns")
    api.user.groups.add(interns)
    gateway.policy.bypass_groups.add(interns)
    gateway.policy.save()
    post(api, {"prompt": "How do I sort a list?"}, REMOTE_ADDR="10.4.5.6")

    rows = list(
        PromptRequest.objects.order_by("created_at").values_list("eligible", "eligibility_reason", "route")
    )
    assert rows == [
        (False, "public_network", "bypass"),
        (True, "default", "public"),
        (True, "default", "public"),
        (False, "bypass_group", "bypass"),
    ]


def test_only_the_owner_or_staff_can_read_a_request(api, gateway, make_api_user, django_user_model):
    from django.test import Client

    other, _ = make_api_user("mallory")
    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser("ops", "", "a-long-password-42"))
    row = PromptRequest.objects.create(
        user=other, eligible=True, route="secured", variant=gateway.secured_variant, status="completed"
    )

    assert api.get(f"/api/v1/prompts/{row.pk}").status_code == 404
    assert staff.get(f"/api/v1/prompts/{row.pk}").json()["route"] == "secured"
