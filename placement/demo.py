"""The demo topology: the patent's Example 1 (FIG. 3) plus the secured and public environments
of Examples 2-3. Loaded by ``manage.py load_demo``; idempotent (keyed on slugs)."""

from __future__ import annotations

from django.db import transaction

from placement.models import (
    AIModel,
    FrontEndDevice,
    InitialPlacementPolicy,
    NetworkLink,
    ProductionEnvironment,
)

ENVIRONMENTS = [
    # Example 1, component A (362): many GPUs, direct connection to front-end devices A and B only.
    dict(
        slug="onprem-a", name="On-premise datacenter component A", kind="on_premise",
        trust="secured", network_path="private",
        gpu_model="H100 SXM", gpu_architecture="hopper", gpu_count=64, gpu_clock_mhz=1980,
        gpu_memory_gb=80, interconnect="nvlink", interconnect_gbps=900,
        cpu_cores=256, memory_gb=2048, storage_gb=100000,
        description="Example 1 (362): large GPU pool, direct links to front-end devices A and B.",
    ),
    # Example 1, component B (364): fewer GPUs, high-bandwidth links to front-end devices A, B, C.
    dict(
        slug="onprem-b", name="On-premise datacenter component B", kind="core",
        trust="secured", network_path="private",
        gpu_model="L40S", gpu_architecture="ada", gpu_count=8, gpu_clock_mhz=2520,
        gpu_memory_gb=48, interconnect="pcie", interconnect_gbps=512,
        cpu_cores=64, memory_gb=512, storage_gb=20000,
        description="Example 1 (364): fewer GPUs, high-bandwidth links to front-end devices A-C.",
    ),
    # Example 1, cloud production environment (366): high-bandwidth link to a fourth front end.
    dict(
        slug="cloud", name="Cloud production environment", kind="cloud",
        trust="public", network_path="public",
        gpu_model="A100 80GB", gpu_architecture="ampere", gpu_count=16, gpu_clock_mhz=1410,
        gpu_memory_gb=80, interconnect="nvlink", interconnect_gbps=600,
        cpu_cores=96, memory_gb=1024, storage_gb=50000,
        description="Example 1 (366): elastic capacity, high-bandwidth link to front-end device D.",
    ),
    # Examples 2-3: the secured variant's environment, reached over a VPN.
    dict(
        slug="secured", name="Secured variant environment", kind="on_premise",
        trust="secured", network_path="private",
        gpu_model="L4", gpu_architecture="ada", gpu_count=4, gpu_clock_mhz=2040,
        gpu_memory_gb=24, interconnect="pcie", interconnect_gbps=128,
        cpu_cores=32, memory_gb=256, storage_gb=8000,
        description="Examples 2-3 (570, 760): private path, nothing kept for training.",
    ),
    # Examples 2-3: the public variant's environment, reached over the public network.
    dict(
        slug="public", name="Public variant environment", kind="cloud",
        trust="public", network_path="public",
        gpu_model="L4", gpu_architecture="ada", gpu_count=8, gpu_clock_mhz=2040,
        gpu_memory_gb=24, interconnect="pcie", interconnect_gbps=128,
        cpu_cores=48, memory_gb=384, storage_gb=16000,
        description="Examples 2-3 (560, 770): prompts and payloads may feed retraining.",
    ),
]  # fmt: skip

FRONT_END_DEVICES = [
    dict(slug="device-a", name="Front-end device A", kind="site", location="Headquarters"),
    dict(slug="device-b", name="Front-end device B", kind="site", location="Branch office"),
    dict(slug="device-c", name="Front-end device C", kind="application", location="Plant"),
    dict(slug="device-d", name="Front-end device D", kind="browser", location="Remote staff"),
]

# (device, environment, bandwidth_mbps, rtt_ms): Example 1's links, plus the variants' paths.
DEVICE_LINKS = [
    ("device-a", "onprem-a", 100, 2.0),  # direct but narrow: transfer is A's limiting factor
    ("device-b", "onprem-a", 100, 2.5),
    ("device-a", "onprem-b", 10000, 3.0),  # high bandwidth to A, B and C
    ("device-b", "onprem-b", 10000, 3.5),
    ("device-c", "onprem-b", 10000, 4.0),
    ("device-d", "cloud", 10000, 12.0),  # the fourth front end's high-bandwidth cloud link
    ("device-a", "secured", 1000, 8.0),  # over the VPN
    ("device-a", "public", 1000, 15.0),  # over the public network
    ("device-d", "public", 1000, 20.0),
]

ENVIRONMENT_LINKS = [
    ("onprem-a", "onprem-b", 100000, 0.5),
    ("onprem-b", "onprem-a", 100000, 0.5),
    ("onprem-b", "cloud", 10000, 10.0),
    ("cloud", "onprem-b", 10000, 10.0),
]

POLICIES = [
    dict(
        name="Secured data stays on trusted environments",
        order=10, strategy="most_free_gpus", trusted_only=True, secured_data_only=True,
        match_kind="",
    ),
    dict(
        name="Inferencing starts where the GPUs are",
        order=20, strategy="fixed", match_kind="inferencing", environment="onprem-a",
    ),
    dict(name="Anything else: most free GPUs", order=100, strategy="most_free_gpus", match_kind=""),
]  # fmt: skip


@transaction.atomic
def load_demo(*, model_directory: str = "default") -> dict[str, int]:
    """Create or update the demo rows; return how many of each there are afterwards."""
    environments = {}
    for spec in ENVIRONMENTS:
        values = dict(spec)
        slug = values.pop("slug")
        environments[slug], _ = ProductionEnvironment.objects.update_or_create(slug=slug, defaults=values)
    devices = {}
    for spec in FRONT_END_DEVICES:
        values = dict(spec)
        slug = values.pop("slug")
        devices[slug], _ = FrontEndDevice.objects.update_or_create(slug=slug, defaults=values)
    for device, environment, bandwidth_mbps, rtt_ms in DEVICE_LINKS:
        NetworkLink.objects.update_or_create(
            front_end_device=devices[device],
            environment=environments[environment],
            defaults={"bandwidth_mbps": bandwidth_mbps, "rtt_ms": rtt_ms},
        )
    for source, target, bandwidth_mbps, rtt_ms in ENVIRONMENT_LINKS:
        NetworkLink.objects.update_or_create(
            source_environment=environments[source],
            environment=environments[target],
            defaults={"bandwidth_mbps": bandwidth_mbps, "rtt_ms": rtt_ms},
        )
    AIModel.objects.get_or_create(
        slug="default",
        defaults={
            "name": "Switchyard default model",
            "directory": model_directory,
            "architecture": "llama",
            "layer_count": 8,
        },
    )
    for spec in POLICIES:
        values = dict(spec)
        name = values.pop("name")
        env_slug = values.pop("environment", None)
        values["environment"] = environments[env_slug] if env_slug else None
        InitialPlacementPolicy.objects.update_or_create(name=name, defaults=values)
    from variants.demo import load_variant_demo  # the prompt gateway's variants and policy

    variant_counts = load_variant_demo(model_slug="default")
    from inference.split.demo import load_split_demo  # split nodes and the orchestrator policy

    variant_counts.update(load_split_demo())
    return {
        "environments": ProductionEnvironment.objects.count(),
        "front_end_devices": FrontEndDevice.objects.count(),
        "links": NetworkLink.objects.count(),
        "policies": InitialPlacementPolicy.objects.count(),
        "models": AIModel.objects.count(),
        **variant_counts,
    }
