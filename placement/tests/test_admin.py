"""Staff manage environments and policies in the Django admin, with field-level validation."""

import pytest

from placement.models import InitialPlacementPolicy, NetworkLink, ProductionEnvironment

pytestmark = pytest.mark.django_db

ENV_URL = "/admin/placement/productionenvironment/"


def environment_form(**overrides):
    data = {
        "name": "Edge node 7",
        "slug": "edge-7",
        "kind": "edge",
        "status": "active",
        "description": "",
        "trust": "public",
        "network_path": "public",
        "gpu_model": "Jetson Orin",
        "gpu_architecture": "ampere",
        "gpu_count": "1",
        "gpu_clock_mhz": "1300",
        "gpu_memory_gb": "32",
        "interconnect": "none",
        "interconnect_gbps": "0",
        "cpu_cores": "12",
        "memory_gb": "32",
        "storage_gb": "64",
        "incoming_links-TOTAL_FORMS": "0",
        "incoming_links-INITIAL_FORMS": "0",
        "incoming_links-MIN_NUM_FORMS": "0",
        "incoming_links-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_staff_lists_the_demo_environments(admin_client_logged_in, demo):
    response = admin_client_logged_in.get(ENV_URL)
    assert response.status_code == 200
    body = response.content.decode()
    for name in ["On-premise datacenter component A", "Cloud production environment"]:
        assert name in body


def test_staff_adds_an_environment(admin_client_logged_in):
    response = admin_client_logged_in.post(ENV_URL + "add/", environment_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    created = ProductionEnvironment.objects.get(slug="edge-7")
    assert (created.gpu_count, created.gpu_clock_mhz, created.queue_name) == (1, 1300, "env.edge-7")


def test_staff_edits_an_environment(admin_client_logged_in, demo):
    environment = ProductionEnvironment.objects.get(slug="cloud")
    form = environment_form(name=environment.name, slug="cloud", kind="cloud", gpu_count="24")
    response = admin_client_logged_in.post(f"{ENV_URL}{environment.id}/change/", form)
    assert response.status_code == 302
    environment.refresh_from_db()
    assert environment.gpu_count == 24


def errors_of(response):
    return response.context["adminform"].form.errors


def test_negative_gpu_count_is_rejected_with_a_field_error(admin_client_logged_in):
    response = admin_client_logged_in.post(ENV_URL + "add/", environment_form(gpu_count="-2"))
    assert response.status_code == 200
    assert "gpu_count" in errors_of(response)
    assert not ProductionEnvironment.objects.filter(slug="edge-7").exists()


def test_duplicate_slug_is_rejected_with_a_field_error(admin_client_logged_in, demo):
    response = admin_client_logged_in.post(ENV_URL + "add/", environment_form(name="Another", slug="cloud"))
    assert response.status_code == 200
    assert "already exists" in str(errors_of(response)["slug"])


def test_gpus_without_clock_are_rejected(admin_client_logged_in):
    response = admin_client_logged_in.post(ENV_URL + "add/", environment_form(gpu_clock_mhz="0"))
    assert response.status_code == 200
    assert "clock speed" in str(errors_of(response)["gpu_clock_mhz"])


def test_secured_environment_over_public_path_is_rejected(admin_client_logged_in):
    response = admin_client_logged_in.post(
        ENV_URL + "add/", environment_form(trust="secured", network_path="public")
    )
    assert response.status_code == 200
    assert "private path" in str(errors_of(response)["network_path"])


@pytest.mark.parametrize("bandwidth", ["0", "-10"])
def test_link_bandwidth_must_be_positive(admin_client_logged_in, demo, bandwidth):
    env = ProductionEnvironment.objects.get(slug="cloud")
    from placement.models import FrontEndDevice

    device = FrontEndDevice.objects.get(slug="device-c")
    before = NetworkLink.objects.count()
    response = admin_client_logged_in.post(
        "/admin/placement/networklink/add/",
        {
            "front_end_device": device.id,
            "environment": env.id,
            "bandwidth_mbps": bandwidth,
            "rtt_ms": "5",
            "figures_source": "configured",
        },
    )
    assert response.status_code == 200
    assert "greater than 0" in str(errors_of(response)["bandwidth_mbps"])
    assert NetworkLink.objects.count() == before


def test_staff_edits_a_policy_and_fixed_strategy_needs_an_environment(admin_client_logged_in, demo):
    policy = InitialPlacementPolicy.objects.get(name="Anything else: most free GPUs")
    url = f"/admin/placement/initialplacementpolicy/{policy.id}/change/"
    form = {
        "name": policy.name,
        "order": "50",
        "enabled": "on",
        "match_kind": "",
        "match_model": "",
        "strategy": "fixed",
        "environment": "",
    }
    response = admin_client_logged_in.post(url, form)
    assert response.status_code == 200
    assert "needs an environment" in str(errors_of(response)["environment"])

    form["environment"] = str(ProductionEnvironment.objects.get(slug="cloud").id)
    response = admin_client_logged_in.post(url, form)
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.order, policy.strategy, policy.environment.slug) == (50, "fixed", "cloud")
