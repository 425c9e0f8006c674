"""An analytic performance model of production environments, and a seeded scenario generator.

Two users:

* the **profiling run** that gives the placement model its cold start: before any telemetry
  exists, the training agent fits the model on workloads *simulated* on the registered
  environments (and on random ones, so it generalises), with a little measurement noise;
* the **benchmark** (``bench/placement.py``), which draws held-out scenarios from the same
  generator with other seeds and scores placements against the noise-free truth.

The figures are a documented first-order model, not measurements: per-GPU dense 16-bit
throughput by architecture scaled by clock, a fixed model-FLOPs utilisation, ring all-reduce
over the interconnect, M/M/1-style queueing from the measured utilisation, and link transfer
as half the RTT plus serialisation each way. Pure Python and numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from placement.features import (
    GPU_ARCHITECTURES,
    EnvironmentProfile,
    LinkFigures,
    WorkloadProfile,
    compute_tflop,
    gpus_used,
    inference_exchange_ms,
    is_eligible,
    transfer_ms,
)

# Dense 16-bit TFLOP/s of one GPU at its reference boost clock (public datasheet magnitudes).
ARCH_TFLOPS = {
    "volta": 125.0, "turing": 65.0, "ampere": 312.0, "ada": 362.0,
    "hopper": 990.0, "blackwell": 2250.0,
}  # fmt: skip
ARCH_REFERENCE_CLOCK_MHZ = {
    "volta": 1530.0, "turing": 1590.0, "ampere": 1410.0, "ada": 2520.0,
    "hopper": 1980.0, "blackwell": 2100.0,
}  # fmt: skip
# Memory per GPU each architecture ships with (GB), for the generator.
ARCH_MEMORY_GB = {
    "volta": (16, 32), "turing": (16, 24), "ampere": (40, 80), "ada": (24, 48),
    "hopper": (80, 94, 141), "blackwell": (192,),
}  # fmt: skip
# A CPU core's useful 16/32-bit throughput, for environments without GPUs.
CPU_TFLOPS_PER_CORE = 0.04
# Fraction of peak a real workload reaches (model-FLOPs utilisation).
MFU_INFERENCING = 0.30
MFU_TRAINING = 0.40
# Fraction of the nominal link speed a collective reaches on each interconnect.
INTERCONNECT_EFFICIENCY = {"nvlink": 0.9, "infiniband": 0.8, "pcie": 0.6, "ethernet": 0.4, "none": 0.4}
# GPUs without a listed interconnect talk over the host network.
FALLBACK_INTERCONNECT_GBPS = 10.0
# Fixed cost of one forward pass (kernel launches, scheduling), ms.
FORWARD_OVERHEAD_MS = 1.5
# Latency of one collective hop, ms.
COLLECTIVE_HOP_MS = 0.02
# Busy fractions above this are treated as this (the queue would grow without bound).
MAX_UTILIZATION = 0.95


def _throughput_tflops(workload: WorkloadProfile, environment: EnvironmentProfile, mfu: float) -> float:
    gpus = gpus_used(workload, environment)
    arch = environment.gpu_architecture
    if gpus == 0 or arch not in ARCH_TFLOPS:
        return max(environment.cpu_cores, 1) * CPU_TFLOPS_PER_CORE * mfu
    clock_ratio = environment.gpu_clock_mhz / ARCH_REFERENCE_CLOCK_MHZ[arch]
    return gpus * ARCH_TFLOPS[arch] * clock_ratio * mfu


def _interconnect_gbps(environment: EnvironmentProfile) -> float:
    if environment.interconnect == "none" or environment.interconnect_gbps <= 0:
        return FALLBACK_INTERCONNECT_GBPS * INTERCONNECT_EFFICIENCY["ethernet"]
    efficiency = INTERCONNECT_EFFICIENCY.get(environment.interconnect, 0.5)
    return environment.interconnect_gbps * efficiency


def _utilization(environment: EnvironmentProfile) -> float:
    return min(max(environment.utilization, 0.0), MAX_UTILIZATION)


def inference_components_ms(workload: WorkloadProfile, environment: EnvironmentProfile) -> dict[str, float]:
    """Return one request's latency split (transfer, queueing, compute) in milliseconds."""
    throughput = _throughput_tflops(workload, environment, MFU_INFERENCING)
    compute = compute_tflop(workload) / throughput * 1000.0 + FORWARD_OVERHEAD_MS
    gpus = gpus_used(workload, environment)
    if gpus > 1:
        # Tensor parallelism: two all-reduces of the activations per layer; activations grow
        # with the square root of the parameter count (hidden size) and the tokens.
        layers = max(8.0, workload.model_parameters ** (1 / 3) / 12.0)
        activation_bytes = 2.0 * math.sqrt(workload.model_parameters) * workload.tokens_per_request
        activation_bytes *= workload.batch_size
        volume_bits = 2.0 * (gpus - 1) / gpus * activation_bytes * 8.0
        compute += volume_bits / (_interconnect_gbps(environment) * 1e9) * 1000.0
        compute += 2.0 * layers * COLLECTIVE_HOP_MS * math.log2(gpus)
    # Decoding images or documents on the host before the model sees them.
    preprocess = workload.request_bytes / 1e6 * 2.0 * 32.0 / max(environment.cpu_cores, 1)
    utilization = _utilization(environment)
    queue = (compute + preprocess) * utilization / (1.0 - utilization)
    transfer = 0.0
    if workload.front_end_ids:
        transfer = sum(
            transfer_ms(environment.link_to_device(d), workload.request_bytes)
            + transfer_ms(environment.link_to_device(d), workload.response_bytes)
            for d in workload.front_end_ids
        ) / len(workload.front_end_ids)
    return {"transfer_ms": transfer, "queue_ms": queue, "compute_ms": compute + preprocess}


def step_seconds(workload: WorkloadProfile, environment: EnvironmentProfile) -> float:
    """Return the wall time of one training or adaptation step in seconds."""
    throughput = _throughput_tflops(workload, environment, MFU_TRAINING)
    compute_s = compute_tflop(workload) / throughput
    gpus = gpus_used(workload, environment)
    allreduce_s = 0.0
    if gpus > 1:
        gradient_bytes = workload.model_parameters * workload.trainable_fraction * 2.0
        volume_bits = 2.0 * (gpus - 1) / gpus * gradient_bytes * 8.0
        allreduce_s = volume_bits / (_interconnect_gbps(environment) * 1e9)
        allreduce_s += 2.0 * (gpus - 1) * COLLECTIVE_HOP_MS / 1000.0
    # Reading the batch: faster storage tiers come with larger installations.
    storage_gbps = min(0.5 + environment.storage_gb / 20_000.0, 10.0)
    batch_gb = workload.sequence_tokens * workload.batch_size * 4.0 / 1e9
    if workload.dataset_gb > environment.storage_gb:
        storage_gbps /= 5.0  # the data does not fit: streamed from elsewhere
    data_s = batch_gb / storage_gbps
    # Other work on the accelerators takes its share of every step.
    slowdown = 1.0 / (1.0 - 0.8 * _utilization(environment))
    return (compute_s + allreduce_s + data_s) * slowdown


def adaptation_round_ms(workload: WorkloadProfile, environment: EnvironmentProfile) -> float:
    """Return FIG. 4.1's latency: feedback in, one adaptation step, the adapter out (ms)."""
    link = environment.link_to_environment(workload.inference_environment_id)
    return inference_exchange_ms(workload, link) + step_seconds(workload, environment) * 1000.0


def true_objective(workload: WorkloadProfile, environment: EnvironmentProfile, objective: str) -> float:
    """Return the noise-free objective: latency in ms or completion time in seconds."""
    if objective == "latency":
        if workload.kind == "inferencing":
            return sum(inference_components_ms(workload, environment).values())
        if workload.kind == "adaptation":
            return adaptation_round_ms(workload, environment)
        return step_seconds(workload, environment) * 1000.0
    if objective == "completion_time":
        if workload.kind == "inferencing":
            # An inferencing workload "completes" a batch of requests, one after another.
            return sum(inference_components_ms(workload, environment).values()) / 1000.0
        return max(workload.steps_remaining, 1.0) * step_seconds(workload, environment)
    raise ValueError(f"unknown objective {objective!r}")


# -- the scenario generator ----------------------------------------------------------------

_ARCH_WEIGHTS = {
    "none": 0.08, "volta": 0.08, "turing": 0.06, "ampere": 0.26, "ada": 0.2,
    "hopper": 0.24, "blackwell": 0.08,
}  # fmt: skip
_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)
_GPU_COUNT_WEIGHTS = (0.12, 0.1, 0.18, 0.25, 0.14, 0.1, 0.07, 0.04)
_INTERCONNECT_GBPS = {
    "nvlink": (600.0, 900.0, 1800.0),
    "infiniband": (200.0, 400.0),
    "pcie": (128.0, 256.0, 512.0),
}


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


@dataclass(frozen=True)
class Scenario:
    """A set of environments, front-end devices and workloads to place."""

    environments: list[EnvironmentProfile]
    workloads: list[WorkloadProfile]
    device_ids: list[int]


def generate_environment(
    rng: np.random.Generator, environment_id: int, device_ids: list[int]
) -> EnvironmentProfile:
    """Return one random environment with varied causal variables and links."""
    arch = str(rng.choice(list(_ARCH_WEIGHTS), p=list(_ARCH_WEIGHTS.values())))
    if arch == "none":
        gpu_count, clock, memory, interconnect, interconnect_gbps = 0, 0.0, 0.0, "none", 0.0
    else:
        gpu_count = int(rng.choice(_GPU_COUNTS, p=_GPU_COUNT_WEIGHTS))
        clock = ARCH_REFERENCE_CLOCK_MHZ[arch] * rng.uniform(0.8, 1.1)
        memory = float(rng.choice(ARCH_MEMORY_GB[arch]))
        if gpu_count == 1:
            interconnect, interconnect_gbps = "none", 0.0
        else:
            interconnect = str(
                rng.choice(["nvlink", "infiniband", "pcie", "ethernet"], p=[0.4, 0.2, 0.3, 0.1])
            )
            interconnect_gbps = (
                float(rng.choice(_INTERCONNECT_GBPS[interconnect]))
                if interconnect in _INTERCONNECT_GBPS
                else float(rng.choice([25.0, 100.0]))
            )
    front_end_links = {
        device: LinkFigures(_loguniform(rng, 10.0, 40_000.0), _loguniform(rng, 0.5, 80.0))
        for device in device_ids
        if rng.random() < 0.45
    }
    occupancy = float(rng.beta(1.2, 2.5)) if gpu_count else 0.0
    return EnvironmentProfile(
        id=environment_id,
        slug=f"sim-{environment_id}",
        trusted=bool(rng.random() < 0.4),
        gpu_architecture=arch,
        gpu_count=gpu_count,
        gpu_clock_mhz=clock,
        gpu_memory_gb=memory,
        interconnect=interconnect,
        interconnect_gbps=interconnect_gbps,
        cpu_cores=int(rng.choice([8, 16, 32, 64, 128, 256])),
        memory_gb=float(rng.choice([64, 256, 512, 1024, 2048])),
        storage_gb=_loguniform(rng, 200.0, 200_000.0),
        gpus_in_use=int(round(occupancy * gpu_count * 0.8)),
        utilization=float(rng.beta(1.5, 3.0)),
        front_end_links=front_end_links,
    )


def _with_environment_links(
    rng: np.random.Generator, environments: list[EnvironmentProfile]
) -> list[EnvironmentProfile]:
    """Return the environments with random links among them (symmetric)."""
    links: dict[int, dict[int, LinkFigures]] = {e.id: dict(e.environment_links) for e in environments}
    for i, a in enumerate(environments):
        for b in environments[i + 1 :]:
            if rng.random() < 0.3:
                figures = LinkFigures(_loguniform(rng, 500.0, 100_000.0), _loguniform(rng, 0.3, 40.0))
                links[a.id][b.id] = figures
                links[b.id][a.id] = figures
    return [replace(e, environment_links=links[e.id]) for e in environments]


def generate_workload(
    rng: np.random.Generator,
    environments: list[EnvironmentProfile],
    device_ids: list[int],
    *,
    kind: str | None = None,
) -> WorkloadProfile | None:
    """Return one random workload placed on a random eligible environment (None if none fits)."""
    kind = kind or str(rng.choice(["inferencing", "training", "adaptation"]))
    if kind == "inferencing":
        objective = "latency"
        parameters = _loguniform(rng, 5e7, 7e10)
    elif kind == "training":
        objective = "completion_time"
        parameters = _loguniform(rng, 5e7, 1.3e10)
    else:
        objective = str(rng.choice(["latency", "completion_time"]))
        parameters = _loguniform(rng, 1e8, 7e10)
    trainable = 1.0 if kind == "training" else _loguniform(rng, 0.001, 0.05)
    devices = list(rng.choice(device_ids, size=int(rng.integers(1, 5)), replace=False)) if device_ids else []
    workload = WorkloadProfile(
        kind=kind,
        objective=objective,
        batch_size=int(rng.choice([1, 2, 4, 8, 16, 32, 64])),
        gpus_required=int(rng.choice([0, 1, 1, 1, 2, 4, 8])),
        model_parameters=parameters,
        tokens_per_request=_loguniform(rng, 32.0, 4096.0),
        request_bytes=_loguniform(rng, 500.0, 5e7),
        response_bytes=_loguniform(rng, 500.0, 2e7),
        front_end_ids=tuple(int(d) for d in devices),
        steps_remaining=_loguniform(rng, 100.0, 200_000.0) if kind != "inferencing" else 0.0,
        sequence_tokens=float(rng.choice([256, 512, 1024, 2048, 4096])),
        trainable_fraction=trainable,
        dataset_gb=_loguniform(rng, 0.1, 5000.0),
        inference_environment_id=(
            int(rng.choice([e.id for e in environments])) if kind == "adaptation" else None
        ),
        adapter_bytes=parameters * trainable * 2.0 if kind == "adaptation" else 0.0,
        handles_secured_data=bool(rng.random() < 0.25),
    )
    eligible = [e for e in environments if is_eligible(workload, e)]
    if not eligible:
        return None
    current = eligible[int(rng.integers(len(eligible)))]
    return replace(workload, current_environment_id=current.id)


def generate_scenario(
    seed: int,
    *,
    environments: int = 60,
    workloads: int = 50,
    devices: int = 16,
    extra_environments: list[EnvironmentProfile] | None = None,
) -> Scenario:
    """Return a seeded scenario: environments, front-end devices and workloads of all three kinds."""
    rng = np.random.default_rng(seed)
    device_ids = list(range(1, devices + 1))
    generated = [generate_environment(rng, 10_000 + i, device_ids) for i in range(environments)]
    envs = _with_environment_links(rng, [*(extra_environments or []), *generated])
    kinds = ["inferencing", "training", "adaptation"]
    placed: list[WorkloadProfile] = []
    attempts = 0
    while len(placed) < workloads and attempts < workloads * 20:
        attempts += 1
        workload = generate_workload(rng, envs, device_ids, kind=kinds[len(placed) % 3])
        if workload is not None:
            placed.append(workload)
    return Scenario(environments=envs, workloads=placed, device_ids=device_ids)


def profiling_samples(
    seed: int,
    *,
    objective: str,
    rows: int,
    extra_environments: list[EnvironmentProfile] | None = None,
    extra_device_ids: list[int] | None = None,
    noise_sigma: float = 0.05,
) -> tuple[list[tuple[WorkloadProfile, EnvironmentProfile]], np.ndarray]:
    """Return simulated (workload, environment) pairs and their measured objective.

    This is the cold-start profiling run: synthetic workloads of the kinds the objective
    concerns, run (in the analytic model) on random environments and on the registered ones,
    with log-normal measurement noise of ``noise_sigma``.
    """
    rng = np.random.default_rng(seed)
    kinds = ["inferencing", "adaptation"] if objective == "latency" else ["training", "adaptation"]
    pairs: list[tuple[WorkloadProfile, EnvironmentProfile]] = []
    values: list[float] = []
    round_index = 0
    while len(pairs) < rows:
        round_index += 1
        device_ids = list(range(1, 17))
        extra = list(extra_environments or [])
        if extra_device_ids:
            device_ids = sorted(set(device_ids) | set(extra_device_ids))
        generated = [generate_environment(rng, 100_000 * round_index + i, device_ids) for i in range(30)]
        environments = _with_environment_links(rng, [*extra, *generated])
        for _ in range(12):
            kind = str(rng.choice(kinds))
            workload = generate_workload(rng, environments, device_ids, kind=kind)
            if workload is None:
                continue
            if kind == "adaptation":
                workload = replace(workload, objective=objective)
            for environment in environments:
                if not is_eligible(workload, environment):
                    continue
                truth = true_objective(workload, environment, objective)
                pairs.append((workload, environment))
                values.append(truth * float(math.exp(rng.normal(0.0, noise_sigma))))
    return pairs[:rows], np.asarray(values[:rows], dtype=np.float64)


__all__ = [
    "GPU_ARCHITECTURES",
    "Scenario",
    "adaptation_round_ms",
    "generate_scenario",
    "inference_components_ms",
    "profiling_samples",
    "step_seconds",
    "true_objective",
]
