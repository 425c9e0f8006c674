import pytest
from django.core.management import call_command

from placement.models import FrontEndDevice, NetworkLink, ProductionEnvironment

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        "environments": sorted(
            ProductionEnvironment.objects.values_list("slug", "gpu_count", "trust", "network_path")
        ),
        "links": sorted(
            (str(link), link.bandwidth_mbps, link.rtt_ms)
            for link in NetworkLink.objects.select_related(
                "front_end_device", "source_environment", "environment"
            )
        ),
        "devices": sorted(FrontEndDevice.objects.values_list("slug", flat=True)),
    }


def test_load_demo_twice_gives_the_same_rows():
    call_command("load_demo")
    first = snapshot()
    call_command("load_demo")
    assert snapshot() == first
    assert len(first["environments"]) == 5
    assert first["devices"] == ["device-a", "device-b", "device-c", "device-d"]


def test_demo_matches_example_1_topology():
    call_command("load_demo")
    component_a = ProductionEnvironment.objects.get(slug="onprem-a")
    component_b = ProductionEnvironment.objects.get(slug="onprem-b")
    # Component A has many more GPUs than B
    assert component_a.gpu_count > component_b.gpu_count
    linked = lambda env: sorted(  # noqa: E731
        env.incoming_links.filter(front_end_device__isnull=False).values_list(
            "front_end_device__slug", flat=True
        )
    )
    assert linked(component_a) == ["device-a", "device-b"]
    assert linked(component_b) == ["device-a", "device-b", "device-c"]
    assert linked(ProductionEnvironment.objects.get(slug="cloud")) == ["device-d"]
    # B's links to the front ends have more bandwidth than A's
    a_bw = max(
        component_a.incoming_links.filter(front_end_device__isnull=False).values_list(
            "bandwidth_mbps", flat=True
        )
    )
    b_bw = min(
        component_b.incoming_links.filter(front_end_device__isnull=False).values_list(
            "bandwidth_mbps", flat=True
        )
    )
    assert b_bw > a_bw
    secured = ProductionEnvironment.objects.get(slug="secured")
    public = ProductionEnvironment.objects.get(slug="public")
    assert (secured.trust, secured.network_path) == ("secured", "private")
    assert (public.trust, public.network_path) == ("public", "public")
