"""The split generate API's errors and the console's split page (no node processes)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from inference.split.dataplane import HEARTBEAT_TTL_MS, heartbeat_key
from inference.split.services import dataplane_client, split_node_register, split_plan_propose
from inference.split_models import OrchestratorDecision, SplitPlan
from placement.models import AIModel, ProductionEnvironment
from variants.models import Variant

pytestmark = pytest.mark.django_db

RUN = uuid.uuid4().hex[:6]
URL = "/api/v1/split/generate"


def node_name(label: str) -> str:
    return f"c{RUN}{label}"


@pytest.fixture
def ai_model(tiny_llama_dir):
    return AIModel.objects.create(
        name=f"tiny {RUN}", slug=f"tiny-{RUN}", directory=str(tiny_llama_dir), architecture="llama"
    )


@pytest.fixture
def nodes():
    for label, trust in [("edge", "trusted"), ("cloud", "untrusted"), ("core", "trusted")]:
        split_node_register(name=node_name(label), trust=trust)
        dataplane_client().set(heartbeat_key(node_name(label)), json.dumps({}), px=HEARTBEAT_TTL_MS * 20)
    yield
    for label in ("edge", "cloud", "core"):
        dataplane_client().delete(heartbeat_key(node_name(label)))


def parts(*spec):
    return [{"start": s, "end": e, "node": node_name(n)} for s, e, n in spec]


@pytest.fixture
def api(client, django_user_model):
    user = django_user_model.objects.create_user(f"api-{RUN}", password="a-long-password-42")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_the_split_api_needs_a_token(client, ai_model):
    response = post(client, {"model": ai_model.slug, "prompt": "Hello"})
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "no-such-model", "prompt": "Hello"}, 422, "unknown model 'no-such-model'"),
        ({"prompt": "   "}, 422, "prompt is empty"),
        ({"prompt": "Hello", "max_new_tokens": 0}, 422, "max_new_tokens must be between 1 and 255; got 0"),
        ({"prompt": "Hello", "max_new_tokens": "many"}, 400, "max_new_tokens: A valid integer is required."),
        ({"max_new_tokens": 4}, 400, "prompt: This field is required."),
        ({"prompt": "Hello", "privacy": "secret"}, 400, 'privacy: "secret" is not a valid choice.'),
    ],
)
def test_bad_split_requests_get_a_json_error_with_a_message(api, ai_model, body, status, message):
    response = post(api, {"model": ai_model.slug} | body)

    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_a_model_without_an_active_plan_answers_503(api, ai_model):
    response = post(api, {"model": ai_model.slug, "prompt": "Hello", "max_new_tokens": 4})

    assert response.status_code == 503
    assert response.json()["error"]["message"] == f"model {ai_model.slug!r} has no active split plan"


def test_a_privacy_high_request_on_an_untrusted_route_answers_503_and_names_the_node(api, ai_model, nodes):
    plan = split_plan_propose(
        ai_model=ai_model, partitions=parts((0, 3, "edge"), (3, 5, "cloud"), (5, 8, "core"))
    )
    SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.ACTIVE)

    response = post(api, {"model": ai_model.slug, "prompt": "Hello", "max_new_tokens": 4, "privacy": "high"})

    assert response.status_code == 503
    assert f"untrusted node(s) {node_name('cloud')}" in response.json()["error"]["message"]


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user(f"staff-{RUN}", password="a-long-password-42", is_staff=True)
    client.force_login(user)
    return user


def test_the_split_page_lists_plans_with_trust_pending_approvals_and_decisions(
    client, staff, ai_model, nodes
):
    active = split_plan_propose(
        ai_model=ai_model, partitions=parts((0, 3, "edge"), (3, 5, "cloud"), (5, 8, "core"))
    )
    SplitPlan.objects.filter(pk=active.pk).update(state=SplitPlan.State.ACTIVE)
    pending = split_plan_propose(
        ai_model=ai_model,
        partitions=parts((0, 4, "edge"), (4, 8, "core")),
        created_by="orchestrator",
        reason="privacy: a privacy=high request would cross untrusted node(s)",
        state=SplitPlan.State.AWAITING_APPROVAL,
    )
    OrchestratorDecision.objects.create(
        ai_model=ai_model,
        action=OrchestratorDecision.Action.RESPLIT,
        triggers=[{"name": "privacy", "observed": 1.0, "threshold": 0.0, "detail": "crosses cloud"}],
        metrics={"latency_ewma_ms": 42.5, "privacy_high_request": True},
        plan_from=active,
        plan_to=pending,
    )
    staff.user_permissions.add(Permission.objects.get(codename="change_splitplan"))
    public = ProductionEnvironment.objects.create(name=f"Public {RUN}", slug=f"public-{RUN}")
    Variant.objects.create(
        name=f"split-public-{RUN}", kind="public", environment=public, ai_model=ai_model, serving="split"
    )
    Variant.objects.create(name=f"whole-public-{RUN}", kind="public", environment=public, ai_model=ai_model)

    page = client.get("/console/split/").content.decode()

    # The active plan names the variant it serves; the pending one serves nothing yet.
    assert page.count(f'<td class="served">split-public-{RUN}</td>') == 1
    assert f"whole-public-{RUN}" not in page
    assert f'layers 3–4 on {node_name("cloud")} <span class="pill warn">untrusted</span>' in page
    assert f'layers 0–2 on {node_name("edge")} <span class="pill ok">trusted</span>' in page
    assert f'action="/console/split/plans/{pending.pk}/approve"' in page
    assert "privacy: 1.0 (threshold 0.0)" in page
    assert "latency_ewma_ms: 42.5" in page
    assert "Split inference</a>" in page  # the nav link


def test_staff_without_the_permission_see_no_approve_button_and_cannot_approve(
    client, staff, ai_model, nodes
):
    pending = split_plan_propose(
        ai_model=ai_model, partitions=parts((0, 8, "edge")), state=SplitPlan.State.AWAITING_APPROVAL
    )

    page = client.get("/console/split/").content.decode()
    response = client.post(f"/console/split/plans/{pending.pk}/approve")

    assert "needs permission to change split plans" in page
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.state == SplitPlan.State.AWAITING_APPROVAL


def test_approving_a_pending_plan_starts_its_broadcast(
    client, staff, ai_model, nodes, django_capture_on_commit_callbacks
):
    staff.user_permissions.add(Permission.objects.get(codename="change_splitplan"))
    pending = split_plan_propose(
        ai_model=ai_model, partitions=parts((0, 8, "edge")), state=SplitPlan.State.AWAITING_APPROVAL
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/console/split/plans/{pending.pk}/approve")

    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.state, pending.approved_by) == (SplitPlan.State.BROADCASTING, staff)
    assert len(callbacks) == 1  # the activation task, enqueued on commit


def test_the_split_page_needs_a_staff_login(client):
    response = client.get("/console/split/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]
