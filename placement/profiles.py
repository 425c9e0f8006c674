"""Database rows -> the plain profiles the placement model reads (``placement.features``)."""

from __future__ import annotations

from dataclasses import replace

from django.db.models import Sum

from placement.features import EnvironmentProfile, LinkFigures, WorkloadProfile
from placement.models import NetworkLink, ProductionEnvironment, Workload
from telemetry.selectors import environment_utilization

_OCCUPYING_STATES = [
    Workload.State.PLACED,
    Workload.State.RUNNING,
    Workload.State.MIGRATING,
    Workload.State.PAUSED,
]
# Defaults for what a workload's config does not say and telemetry has not measured yet.
DEFAULT_MODEL_PARAMETERS = 1e8
DEFAULT_TOKENS_PER_REQUEST = 256.0
DEFAULT_REQUEST_BYTES = 4_000.0
DEFAULT_RESPONSE_BYTES = 4_000.0
DEFAULT_STEPS_TOTAL = 1_000.0
DEFAULT_SEQUENCE_TOKENS = 512.0
DEFAULT_ADAPTER_TRAINABLE_FRACTION = 0.01


def environment_profiles(*, utilization_window_s: float = 300.0) -> list[EnvironmentProfile]:
    """Return every environment that is not offline, with links, GPU occupancy and measured load."""
    environments = list(ProductionEnvironment.objects.exclude(status=ProductionEnvironment.Status.OFFLINE))
    in_use = dict(
        Workload.objects.filter(state__in=_OCCUPYING_STATES, environment__isnull=False)
        .values_list("environment_id")
        .annotate(total=Sum("gpus_required"))
        .values_list("environment_id", "total")
    )
    device_links: dict[int, dict[int, LinkFigures]] = {e.id: {} for e in environments}
    environment_links: dict[int, dict[int, LinkFigures]] = {e.id: {} for e in environments}
    for link in NetworkLink.objects.all():
        figures = LinkFigures(link.bandwidth_mbps, link.rtt_ms)
        if link.front_end_device_id and link.environment_id in device_links:
            device_links[link.environment_id][link.front_end_device_id] = figures
        elif link.source_environment_id:
            if link.environment_id in environment_links:
                environment_links[link.environment_id][link.source_environment_id] = figures
            # A link is usable both ways; an explicit reverse link, when configured, wins.
            if link.source_environment_id in environment_links:
                environment_links[link.source_environment_id].setdefault(link.environment_id, figures)
    return [
        EnvironmentProfile(
            id=e.id,
            slug=e.slug,
            trusted=e.is_trusted,
            gpu_architecture=e.gpu_architecture or "none",
            gpu_count=e.gpu_count,
            gpu_clock_mhz=float(e.gpu_clock_mhz),
            gpu_memory_gb=float(e.gpu_memory_gb),
            interconnect=e.interconnect,
            interconnect_gbps=float(e.interconnect_gbps),
            cpu_cores=e.cpu_cores,
            memory_gb=float(e.memory_gb),
            storage_gb=float(e.storage_gb),
            gpus_in_use=int(in_use.get(e.id, 0) or 0),
            utilization=environment_utilization(environment_id=e.id, window_s=utilization_window_s),
            accepts_work=e.accepts_work,
            front_end_links=device_links[e.id],
            environment_links=environment_links[e.id],
        )
        for e in environments
    ]


def workload_profile(
    workload: Workload,
    *,
    payload_bytes: float | None = None,
    fraction_done: float | None = None,
    steps_total: float | None = None,
    environment_id: int | None = None,
) -> WorkloadProfile:
    """Return the workload as the placement model sees it; telemetry figures override the config."""
    config = workload.config or {}
    parameters = float(
        workload.ai_model.parameter_count or config.get("model_parameters") or DEFAULT_MODEL_PARAMETERS
    )
    request_bytes = float(config.get("request_bytes", DEFAULT_REQUEST_BYTES))
    response_bytes = float(config.get("response_bytes", DEFAULT_RESPONSE_BYTES))
    if payload_bytes:
        # The gateway measures the sum; keep the configured proportion between the two.
        share = request_bytes / (request_bytes + response_bytes) if request_bytes + response_bytes else 0.5
        request_bytes, response_bytes = payload_bytes * share, payload_bytes * (1 - share)
    total_steps = float(steps_total or config.get("steps_total") or DEFAULT_STEPS_TOTAL)
    done = float(fraction_done or 0.0)
    trainable = (
        1.0
        if workload.kind == Workload.Kind.TRAINING
        else float(config.get("trainable_fraction", DEFAULT_ADAPTER_TRAINABLE_FRACTION))
    )
    inference_environment_id = config.get("inference_environment_id")
    if workload.inference_workload_id:
        inference_environment_id = workload.inference_workload.environment_id
    return WorkloadProfile(
        kind=workload.kind,
        objective=workload.objective,
        batch_size=workload.batch_size,
        gpus_required=workload.gpus_required,
        model_parameters=parameters,
        tokens_per_request=float(config.get("tokens_per_request", DEFAULT_TOKENS_PER_REQUEST)),
        request_bytes=request_bytes,
        response_bytes=response_bytes,
        front_end_ids=tuple(sorted(workload.front_end_devices.values_list("id", flat=True))),
        steps_remaining=0.0
        if workload.kind == Workload.Kind.INFERENCING
        else max(total_steps * (1 - done), 1.0),
        sequence_tokens=float(config.get("sequence_tokens", DEFAULT_SEQUENCE_TOKENS)),
        trainable_fraction=trainable,
        dataset_gb=float(config.get("dataset_gb", 1.0)),
        inference_environment_id=inference_environment_id,
        adapter_bytes=float(config.get("adapter_bytes", parameters * trainable * 2.0))
        if workload.kind == Workload.Kind.ADAPTATION
        else 0.0,
        handles_secured_data=workload.handles_secured_data,
        current_environment_id=environment_id if environment_id is not None else workload.environment_id,
    )


def with_objective(profile: WorkloadProfile, objective: str) -> WorkloadProfile:
    """Return the profile asking for another objective."""
    return replace(profile, objective=objective)
