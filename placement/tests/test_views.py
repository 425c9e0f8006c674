"""The console's placement pages through Django's test client: evidence, approvals, progress."""

import pytest
from django.test import Client

from placement.loop import evidence_digest, workload_evaluate
from placement.models import ApprovalDecision, Migration, Recommendation
from placement.tests.test_loop import example_1_workload, observe_latency

pytestmark = pytest.mark.django_db

OVERVIEW = "/console/placement/"


@pytest.fixture
def recommendation(topology, placement_models) -> Recommendation:
    workload = example_1_workload(topology)
    observe_latency(workload)
    return workload_evaluate(workload_id=workload.pk, force=True).recommendation


@pytest.fixture
def operator(client, django_user_model):
    """A staff user who may look but not decide."""
    user = django_user_model.objects.create_user("operator", password="a-long-password-42", is_staff=True)
    client.force_login(user)
    return client


def test_the_pending_recommendation_shows_its_evidence_as_a_plotly_chart(
    admin_client_logged_in, recommendation
):
    response = admin_client_logged_in.get(OVERVIEW)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="recommendation-{recommendation.pk}"' in body
    assert f'id="evidence-chart-{recommendation.pk}"' in body
    assert "Plotly.newPlot" in body
    assert '<script src="/console/placement/plotly.js">' in body
    assert "cdn.plot.ly" not in body
    assert "On-premise datacenter component B" in body
    assert evidence_digest(recommendation.evidence()) in body
    assert "Approve and migrate" in body


def test_the_plotly_bundle_is_served_locally_and_cached(admin_client_logged_in):
    response = admin_client_logged_in.get("/console/placement/plotly.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript"
    assert len(response.content) > 1_000_000
    again = admin_client_logged_in.get("/console/placement/plotly.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_an_administrator_approves_from_the_console_and_the_migration_starts(
    admin_client_logged_in, recommendation
):
    digest = evidence_digest(recommendation.evidence())
    response = admin_client_logged_in.post(
        f"/console/placement/recommendations/{recommendation.pk}/approve",
        {"evidence": digest, "reason": "ok"},
    )
    assert response.status_code == 302
    migration = Migration.objects.get(recommendation=recommendation)
    assert response["Location"] == f"{OVERVIEW}#migration-{migration.pk}"
    decision = ApprovalDecision.objects.get(recommendation=recommendation)
    assert (decision.decided_by_name, decision.reason, decision.decision) == ("root-admin", "ok", "approve")
    progress = admin_client_logged_in.get(f"/console/placement/migrations/{migration.pk}.json").json()
    assert (progress["state"], progress["finished"], progress["to"]) == (
        "pending",
        False,
        recommendation.to_environment.slug,
    )
    assert progress["events"][0]["detail"] == "approved by root-admin"


def test_a_user_without_the_permission_gets_403(operator, recommendation):
    page = operator.get(OVERVIEW)
    assert page.status_code == 200
    assert "approve_recommendation" in page.content.decode()
    assert "Approve and migrate" not in page.content.decode()
    for action, data in (("approve", {}), ("reject", {"reason": "no"})):
        response = operator.post(f"/console/placement/recommendations/{recommendation.pk}/{action}", data)
        assert response.status_code == 403
    recommendation.refresh_from_db()
    assert recommendation.state == "pending"
    assert not ApprovalDecision.objects.exists()


def test_anonymous_visitors_are_sent_to_the_login_page(client, recommendation):
    assert client.get(OVERVIEW)["Location"].startswith("/admin/login/")
    response = client.post(f"/console/placement/recommendations/{recommendation.pk}/approve")
    assert response.status_code == 302
    assert not Migration.objects.exists()


def test_rejecting_without_a_reason_is_refused(admin_client_logged_in, recommendation):
    url = f"/console/placement/recommendations/{recommendation.pk}/reject"
    response = admin_client_logged_in.post(url, {"reason": "  "})
    assert response.status_code == 400
    assert "say why the recommendation is rejected" in response.content.decode()
    assert Recommendation.objects.get(pk=recommendation.pk).state == "pending"
    response = admin_client_logged_in.post(url, {"reason": "B is in maintenance"})
    assert response.status_code == 302
    assert ApprovalDecision.objects.get().reason == "B is in maintenance"


def test_deciding_twice_answers_409(admin_client_logged_in, recommendation):
    url = f"/console/placement/recommendations/{recommendation.pk}/reject"
    assert admin_client_logged_in.post(url, {"reason": "no"}).status_code == 302
    again = admin_client_logged_in.post(f"/console/placement/recommendations/{recommendation.pk}/approve")
    assert again.status_code == 409
    assert "rejected, not pending" in again.content.decode()


def test_decisions_are_csrf_protected(django_user_model, recommendation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("csrf-admin", "", "a-long-password-42"))
    response = client.post(f"/console/placement/recommendations/{recommendation.pk}/approve")
    assert response.status_code == 403
    assert not Migration.objects.exists()


def test_the_workload_page_shows_its_placement_history_and_latency(admin_client_logged_in, recommendation):
    response = admin_client_logged_in.get(f"/console/placement/workloads/{recommendation.workload_id}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "policy:Inferencing starts where the GPUs are" in body
    assert 'id="latency-chart"' in body
    assert "Pending approval" in body
