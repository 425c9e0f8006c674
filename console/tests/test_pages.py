import pytest


@pytest.mark.django_db
def test_health_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_dashboard_shows_the_demo_topology_to_staff(admin_client_logged_in, demo):
    response = admin_client_logged_in.get("/console/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "On-premise datacenter component A" in body
    assert "queue env.onprem-b" in body
    assert "Front-end device C" in body


@pytest.mark.django_db
def test_dashboard_requires_a_staff_login(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_prometheus_scrapes_the_conventional_metrics_path(client, demo):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert (
        'switchyard_link_bandwidth_mbps{from="Front-end device A",to="onprem-a",source="configured"} 100.0'
        in body
    )
