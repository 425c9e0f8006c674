"""The gateway's per-process caches: reused between requests, dropped by an administrator's edit.

Each web process keeps the routing rows, the classifier and API tokens it read; saving or
deleting any of them must take effect on the very next request, not after a timeout.
"""

from __future__ import annotations

import pytest

from placement.models import Workload
from variants import selectors
from variants.services import ClientFacts, PromptSubmission, prompt_route

pytestmark = pytest.mark.django_db(transaction=True)

ORDINARY = "How do I reverse a list in Python without modifying the original?"


@pytest.fixture
def cached(settings):
    """Keep routing rows for an hour: only an invalidation can make a request see an edit."""
    settings.PROMPT_ROUTING_CACHE_S = 3600
    selectors.forget_cached()
    yield
    selectors.forget_cached()


def route(user, text: str = ORDINARY):
    # What one gateway request does: one read of the routing version, then the routing.
    with selectors.request_scope():
        return prompt_route(
            user=user, submission=PromptSubmission(prompt=text, classify_text=text), client=ClientFacts()
        )


def test_a_second_request_reads_no_routing_rows(gateway, make_api_user, cached, django_assert_num_queries):
    user, _ = make_api_user()
    assert route(user).route == "public"
    with django_assert_num_queries(0):
        assert route(user).route == "public"


def test_an_edited_threshold_applies_to_the_next_request(gateway, make_api_user, cached):
    user, _ = make_api_user()
    first = route(user)
    assert first.route == "public"
    assert first.sensitivity > 0.0
    # When the administrator lowers the threshold below the prompt's score
    gateway.policy.threshold = 0.0
    gateway.policy.save()
    # Then the next request already goes to the secured variant, under the new policy version
    after = route(user)
    assert after.route == "secured"
    assert after.threshold == 0.0
    assert after.policy_version == gateway.policy.version


def test_a_disabled_variant_stops_serving_on_the_next_request(gateway, make_api_user, cached):
    user, _ = make_api_user()
    assert route(user).variant == gateway.public_variant
    gateway.public_variant.enabled = False
    gateway.public_variant.save()
    decision = route(user)
    # No public variant left: the secured one serves it (never the reverse).
    assert decision.variant == gateway.secured_variant
    assert "no public variant" in decision.fail_reason


def test_a_newly_placed_inferencing_workload_receives_the_next_latency_sample(gateway, cached):
    with selectors.request_scope():
        assert selectors.inferencing_workload_id(gateway.model.pk, gateway.public.pk) is None
    workload = Workload.objects.create(
        name="public inferencing",
        kind=Workload.Kind.INFERENCING,
        objective=Workload.Objective.LATENCY,
        ai_model=gateway.model,
        environment=gateway.public,
    )
    with selectors.request_scope():
        assert selectors.inferencing_workload_id(gateway.model.pk, gateway.public.pk) == workload.pk


def test_a_deleted_token_is_refused_on_the_next_request(client, gateway, make_api_user, cached):
    from rest_framework.authtoken.models import Token

    _, key = make_api_user()
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/v1/policy/eligibility", **headers).status_code == 200
    assert client.get("/api/v1/policy/eligibility", **headers).status_code == 200
    Token.objects.filter(key=key).get().delete()
    response = client.get("/api/v1/policy/eligibility", **headers)
    assert response.status_code == 401


def test_a_deactivated_user_is_refused_on_the_next_request(client, gateway, make_api_user, cached):
    user, key = make_api_user()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert client.get("/api/v1/policy/eligibility", **headers).status_code == 200
    user.is_active = False
    user.save()
    response = client.get("/api/v1/policy/eligibility", **headers)
    assert response.status_code == 401
    assert "inactive" in response.json()["error"]["message"].lower()
