"""Features of the workload placement model (patent paragraphs 59-63). Pure Python and numpy.

A *causal variable* (paragraph 62) is a quantity that may change how an AI workload performs
in an environment. This module names every variable the model knows how to compute
(``FEATURE_CATALOGUE``) and turns a workload plus its candidate environments into a feature
matrix. Which of them the model uses is chosen by administrators (the ``CausalVariable`` rows
in the admin); a trained model keeps the list it was trained with.

The same code builds the features for the profiling simulator, for the training agent's
telemetry history and for live recommendations, so the three always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

WORKLOAD_KINDS = ("inferencing", "training", "adaptation")
OBJECTIVES = ("latency", "completion_time")
GPU_ARCHITECTURES = ("none", "volta", "turing", "ampere", "ada", "hopper", "blackwell")
INTERCONNECTS = ("none", "ethernet", "pcie", "infiniband", "nvlink")

# A front-end device with no configured link reaches the environment over the public internet;
# these are the figures assumed for such a path (documented in the README).
UNLINKED_BANDWIDTH_MBPS = 50.0
UNLINKED_RTT_MS = 40.0
# Two workloads in the same environment talk over its local fabric.
LOCAL_BANDWIDTH_MBPS = 100_000.0
LOCAL_RTT_MS = 0.1
# Bytes per parameter of weights held for serving (16-bit) and the memory a GPU keeps free.
BYTES_PER_PARAMETER = 2.0
GPU_MEMORY_HEADROOM = 0.8


@dataclass(frozen=True)
class LinkFigures:
    """Bandwidth and round-trip time of one network path."""

    bandwidth_mbps: float
    rtt_ms: float


UNLINKED = LinkFigures(UNLINKED_BANDWIDTH_MBPS, UNLINKED_RTT_MS)
LOCAL = LinkFigures(LOCAL_BANDWIDTH_MBPS, LOCAL_RTT_MS)


def transfer_ms(link: LinkFigures, payload_bytes: float) -> float:
    """Return the one-way time to move a payload over a link: half the RTT plus serialisation."""
    # bits / (Mbit/s) = microseconds; / 1000 gives milliseconds.
    return link.rtt_ms / 2.0 + payload_bytes * 8.0 / (link.bandwidth_mbps * 1000.0)


@dataclass(frozen=True)
class EnvironmentProfile:
    """A candidate production environment: hardware causal variables, links and live load."""

    id: int
    slug: str
    trusted: bool
    gpu_architecture: str
    gpu_count: int
    gpu_clock_mhz: float
    gpu_memory_gb: float
    interconnect: str
    interconnect_gbps: float
    cpu_cores: int
    memory_gb: float
    storage_gb: float
    gpus_in_use: int = 0
    # Busy fraction (0-1) of the environment's accelerators (CPU when it has none), measured.
    utilization: float = 0.0
    accepts_work: bool = True
    # front-end device id -> link figures towards this environment
    front_end_links: dict[int, LinkFigures] = field(default_factory=dict)
    # other environment id -> link figures between it and this environment
    environment_links: dict[int, LinkFigures] = field(default_factory=dict)

    @property
    def free_gpus(self) -> int:
        """Return the GPUs no other workload holds."""
        return max(self.gpu_count - self.gpus_in_use, 0)

    def link_to_device(self, device_id: int) -> LinkFigures:
        """Return the link from a front-end device, or the public-internet assumption."""
        return self.front_end_links.get(device_id, UNLINKED)

    def link_to_environment(self, environment_id: int | None) -> LinkFigures:
        """Return the link to another environment (local fabric to itself, internet if unlinked)."""
        if environment_id is None or environment_id == self.id:
            return LOCAL
        return self.environment_links.get(environment_id, UNLINKED)


@dataclass(frozen=True)
class WorkloadProfile:
    """What the model needs to know about a workload; measured by telemetry where it can be."""

    kind: str
    objective: str
    batch_size: int = 1
    gpus_required: int = 1
    model_parameters: float = 1e8
    # Inferencing: tokens processed per request and bytes on the wire each way.
    tokens_per_request: float = 256.0
    request_bytes: float = 4_000.0
    response_bytes: float = 4_000.0
    front_end_ids: tuple[int, ...] = ()
    # Training and adaptation: work left and its shape.
    steps_remaining: float = 0.0
    sequence_tokens: float = 512.0
    trainable_fraction: float = 1.0
    dataset_gb: float = 1.0
    # Model adaptation (FIG. 4.1): where its inferencing workload runs and what it ships there.
    inference_environment_id: int | None = None
    adapter_bytes: float = 0.0
    handles_secured_data: bool = False
    current_environment_id: int | None = None

    @property
    def payload_bytes(self) -> float:
        """Return the bytes a request and its reply put on the wire together."""
        return self.request_bytes + self.response_bytes


def gpus_used(workload: WorkloadProfile, environment: EnvironmentProfile) -> int:
    """Return how many GPUs the workload would run on there (paragraph 62, number of GPUs used).

    At least what the workload asks for, more when its weights do not fit, never more than
    the environment's free GPUs; 0 means it would run on CPUs.
    """
    if environment.gpu_count <= 0:
        return 0
    weights_gb = workload.model_parameters * BYTES_PER_PARAMETER / 1e9
    per_gpu_gb = max(environment.gpu_memory_gb * GPU_MEMORY_HEADROOM, 1e-3)
    needed = max(workload.gpus_required, math.ceil(weights_gb / per_gpu_gb), 1)
    available = environment.free_gpus
    if workload.current_environment_id == environment.id:
        # The workload's own GPUs count as available where it already runs.
        available = min(environment.gpu_count, available + workload.gpus_required)
    return max(min(needed, available), 0)


def is_eligible(workload: WorkloadProfile, environment: EnvironmentProfile) -> bool:
    """Return True when the workload may run there: trust for secured data, capacity, status."""
    if workload.handles_secured_data and not environment.trusted:
        return False
    if not environment.accepts_work and environment.id != workload.current_environment_id:
        return False
    if workload.gpus_required > 0:
        return gpus_used(workload, environment) >= workload.gpus_required
    return True


def inference_exchange_ms(workload: WorkloadProfile, link: LinkFigures) -> float:
    """Return the time to pull one batch of feedback over a link and push the adapter back."""
    return transfer_ms(link, workload.request_bytes * workload.batch_size) + transfer_ms(
        link, workload.adapter_bytes
    )


def _mean_front_end(
    workload: WorkloadProfile, environment: EnvironmentProfile, fn: Callable[[LinkFigures], float]
) -> float:
    if not workload.front_end_ids:
        return fn(LOCAL)
    return sum(fn(environment.link_to_device(d)) for d in workload.front_end_ids) / len(
        workload.front_end_ids
    )


@dataclass(frozen=True)
class FeatureSpec:
    """One causal variable the model can use."""

    key: str
    label: str
    group: str  # hardware, link, workload or telemetry
    description: str
    compute: Callable[[WorkloadProfile, EnvironmentProfile], float]
    # What the value depends on: the environment alone, the workload alone, or both. Lets the
    # matrix builder compute each environment's and each workload's columns once, not per pair.
    scope: str = "pair"
    categories: tuple[str, ...] | None = None
    # True for the variables paragraph 62 lists by name.
    paragraph_62: bool = False

    @property
    def categorical(self) -> bool:
        """Return True when the value is a category code, not a quantity."""
        return self.categories is not None


def _code(categories: tuple[str, ...], value: str) -> float:
    # Unknown categories share one code after the known ones, so new hardware still predicts.
    try:
        return float(categories.index(value))
    except ValueError:
        return float(len(categories))


FEATURE_CATALOGUE: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "gpu_clock_mhz", "GPU clock speed (MHz)", "hardware",
        "Boost clock of the environment's back-end GPUs.",
        lambda w, e: float(e.gpu_clock_mhz), paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "gpu_architecture", "GPU architecture", "hardware",
        "Architecture generation of the environment's GPUs.",
        lambda w, e: _code(GPU_ARCHITECTURES, e.gpu_architecture or "none"),
        categories=GPU_ARCHITECTURES, paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "gpus_used", "Number of GPUs used", "hardware",
        "GPUs the workload would run on there: what it asks for, more if its weights need them, "
        "limited by the free GPUs.",
        lambda w, e: float(gpus_used(w, e)), paragraph_62=True,
    ),
    FeatureSpec(
        "gpu_count", "GPUs in the environment", "hardware",
        "Total GPUs of the environment.",
        lambda w, e: float(e.gpu_count), scope="environment",
    ),
    FeatureSpec(
        "gpu_occupancy", "Distribution of models across GPUs", "hardware",
        "Fraction of the environment's GPUs already holding other workloads' models.",
        lambda w, e: (e.gpus_in_use / e.gpu_count) if e.gpu_count else 0.0,
        paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "interconnect", "GPU-to-GPU interconnect and protocol", "hardware",
        "Interconnect technology (and so protocol) between the GPUs: NVLink, InfiniBand, PCIe...",
        lambda w, e: _code(INTERCONNECTS, e.interconnect or "none"),
        categories=INTERCONNECTS, paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "interconnect_gbps", "Interconnect speed (Gbit/s)", "hardware",
        "Speed of the GPU-to-GPU links.",
        lambda w, e: float(e.interconnect_gbps), paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "storage_gb", "Storage size (GB)", "hardware",
        "Storage available to workloads in the environment.",
        lambda w, e: float(e.storage_gb), paragraph_62=True, scope="environment",
    ),
    FeatureSpec(
        "gpu_memory_gb", "GPU memory (GB)", "hardware",
        "Memory of each GPU.",
        lambda w, e: float(e.gpu_memory_gb), scope="environment",
    ),
    FeatureSpec(
        "cpu_cores", "CPU cores", "hardware",
        "CPU cores of the environment (pre-processing, CPU-only serving).",
        lambda w, e: float(e.cpu_cores), scope="environment",
    ),
    FeatureSpec(
        "batch_size", "Batch size", "workload",
        "Batch size the workload runs with.",
        lambda w, e: float(w.batch_size), paragraph_62=True, scope="workload",
    ),
    FeatureSpec(
        "workload_kind", "Workload kind", "workload",
        "Inferencing, training or model adaptation (paragraph 63).",
        lambda w, e: _code(WORKLOAD_KINDS, w.kind), categories=WORKLOAD_KINDS, scope="workload",
    ),
    FeatureSpec(
        "model_parameters", "Model parameters", "workload",
        "Parameter count of the workload's AI model.",
        lambda w, e: float(w.model_parameters), scope="workload",
    ),
    FeatureSpec(
        "compute_tflop", "Compute per request or step (TFLOP)", "workload",
        "Floating-point work of one request (inferencing) or one step (training, adaptation).",
        lambda w, e: compute_tflop(w), scope="workload",
    ),
    FeatureSpec(
        "work_per_gpu_ghz", "Compute per aggregate GPU clock (TFLOP/GHz)", "workload",
        "Compute per request or step divided by the clock of the GPUs it would use (GPUs used "
        "x GHz; CPU cores stand in where there are none): the interaction of paragraph 62's "
        "clock speed and number of GPUs with the workload's size.",
        lambda w, e: work_per_gpu_ghz(w, e),
    ),
    FeatureSpec(
        "steps_remaining", "Steps remaining", "telemetry",
        "Training or adaptation steps left, from the progress the monitoring agent reports.",
        lambda w, e: float(w.steps_remaining), scope="workload",
    ),
    FeatureSpec(
        "dataset_gb", "Dataset size (GB)", "workload",
        "Training data the workload reads.",
        lambda w, e: float(w.dataset_gb), scope="workload",
    ),
    FeatureSpec(
        "payload_bytes", "Payload per request (bytes)", "telemetry",
        "Request plus reply size, as the gateway observes it.",
        lambda w, e: float(w.payload_bytes), scope="workload",
    ),
    FeatureSpec(
        "front_end_bandwidth_mbps", "Bandwidth to the front-end devices (Mbit/s)", "link",
        "Mean bandwidth of the links between the environment and the workload's front-end devices.",
        lambda w, e: _mean_front_end(w, e, lambda link: link.bandwidth_mbps),
    ),
    FeatureSpec(
        "front_end_rtt_ms", "RTT to the front-end devices (ms)", "link",
        "Mean round-trip time between the environment and the workload's front-end devices.",
        lambda w, e: _mean_front_end(w, e, lambda link: link.rtt_ms),
    ),
    FeatureSpec(
        "front_end_transfer_ms", "Transfer time to the front-end devices (ms)", "link",
        "Mean time to move one request and its reply over those links.",
        lambda w, e: _mean_front_end(
            w, e, lambda link: transfer_ms(link, w.request_bytes) + transfer_ms(link, w.response_bytes)
        ),
    ),
    FeatureSpec(
        "inference_link_bandwidth_mbps", "Bandwidth to the inferencing workload (Mbit/s)", "link",
        "Model adaptation (FIG. 4.1): bandwidth to the environment serving the adapted model.",
        lambda w, e: e.link_to_environment(w.inference_environment_id).bandwidth_mbps,
    ),
    FeatureSpec(
        "inference_link_rtt_ms", "RTT to the inferencing workload (ms)", "link",
        "Model adaptation (FIG. 4.1): round-trip time to the environment serving the adapted model.",
        lambda w, e: e.link_to_environment(w.inference_environment_id).rtt_ms,
    ),
    FeatureSpec(
        "inference_link_transfer_ms", "Exchange time with the inferencing workload (ms)", "link",
        "Model adaptation (FIG. 4.1): time to receive one batch of feedback from the environment "
        "serving the adapted model and to ship the updated adapter back.",
        lambda w, e: inference_exchange_ms(w, e.link_to_environment(w.inference_environment_id)),
    ),
    FeatureSpec(
        "environment_utilization", "Environment utilisation", "telemetry",
        "Busy fraction of the environment's accelerators, measured by the monitoring agent.",
        lambda w, e: float(e.utilization), scope="environment",
    ),
)  # fmt: skip

FEATURES_BY_KEY: dict[str, FeatureSpec] = {spec.key: spec for spec in FEATURE_CATALOGUE}
DEFAULT_FEATURE_KEYS: tuple[str, ...] = tuple(spec.key for spec in FEATURE_CATALOGUE)


def compute_tflop(workload: WorkloadProfile) -> float:
    """Return the work of one request or step in TFLOP (2 FLOP per parameter per token forward)."""
    if workload.kind == "inferencing":
        tokens = workload.tokens_per_request * workload.batch_size
        return 2.0 * workload.model_parameters * tokens / 1e12
    tokens = workload.sequence_tokens * workload.batch_size
    # Forward (2) plus backward (4); parameter-efficient adaptation skips most weight gradients.
    backward = 4.0 if workload.kind == "training" else 2.0 + 2.0 * workload.trainable_fraction
    return (2.0 + backward) * workload.model_parameters * tokens / 1e12


# A CPU core counts as this many GPU-GHz when an environment has no GPUs (only a scale for the
# feature above; the architecture category tells the model how fast such a "GPU" really is).
CPU_CORE_AS_GPU_GHZ = 0.01


def work_per_gpu_ghz(workload: WorkloadProfile, environment: EnvironmentProfile) -> float:
    """Return the workload's TFLOP per request or step over the GPU clock it would run on."""
    gpus = gpus_used(workload, environment)
    aggregate_ghz = gpus * environment.gpu_clock_mhz / 1000.0
    if aggregate_ghz <= 0:
        aggregate_ghz = max(environment.cpu_cores, 1) * CPU_CORE_AS_GPU_GHZ
    return compute_tflop(workload) / aggregate_ghz


def check_feature_keys(keys: Sequence[str]) -> list[str]:
    """Return the keys in catalogue order, refusing unknown ones and an empty selection."""
    unknown = sorted(set(keys) - set(FEATURES_BY_KEY))
    if unknown:
        raise ValueError(f"unknown causal variables: {', '.join(unknown)}")
    ordered = [spec.key for spec in FEATURE_CATALOGUE if spec.key in set(keys)]
    if not ordered:
        raise ValueError("the placement model needs at least one causal variable")
    return ordered


def feature_row(
    workload: WorkloadProfile, environment: EnvironmentProfile, keys: Sequence[str]
) -> list[float]:
    """Return the feature values of one (workload, candidate environment) pair."""
    return [FEATURES_BY_KEY[key].compute(workload, environment) for key in keys]


def feature_matrix(
    pairs: Sequence[tuple[WorkloadProfile, EnvironmentProfile]], keys: Sequence[str]
) -> np.ndarray:
    """Return the float matrix of many pairs, one row each, columns in ``keys`` order."""
    specs = [FEATURES_BY_KEY[key] for key in keys]
    matrix = np.empty((len(pairs), len(specs)), dtype=np.float64)
    for row, (workload, environment) in enumerate(pairs):
        for column, spec in enumerate(specs):
            matrix[row, column] = spec.compute(workload, environment)
    return matrix


class EnvironmentArrays:
    """The candidate environments as numpy columns, built once per decision round."""

    def __init__(self, environments: Sequence[EnvironmentProfile], device_ids: Sequence[int]):
        self.environments = list(environments)
        self.ids = np.array([e.id for e in environments], dtype=np.int64)
        self.index_of = {e.id: j for j, e in enumerate(environments)}
        self.gpu_count = np.array([e.gpu_count for e in environments], dtype=np.float64)
        self.free_gpus = np.array([e.free_gpus for e in environments], dtype=np.float64)
        self.gpu_memory_gb = np.array([e.gpu_memory_gb for e in environments], dtype=np.float64)
        self.gpu_clock_mhz = np.array([e.gpu_clock_mhz for e in environments], dtype=np.float64)
        self.cpu_cores = np.array([e.cpu_cores for e in environments], dtype=np.float64)
        self.trusted = np.array([e.trusted for e in environments], dtype=bool)
        self.accepts_work = np.array([e.accepts_work for e in environments], dtype=bool)
        self.device_column = {device: k for k, device in enumerate(sorted(set(device_ids)))}
        shape = (len(environments), len(self.device_column))
        self.bandwidth_mbps = np.full(shape, UNLINKED_BANDWIDTH_MBPS)
        self.rtt_ms = np.full(shape, UNLINKED_RTT_MS)
        for j, environment in enumerate(environments):
            for device, link in environment.front_end_links.items():
                k = self.device_column.get(device)
                if k is not None:
                    self.bandwidth_mbps[j, k] = link.bandwidth_mbps
                    self.rtt_ms[j, k] = link.rtt_ms

    def gpus_used(self, workload: WorkloadProfile) -> np.ndarray:
        """Return ``gpus_used`` for the workload in every environment (vectorised)."""
        weights_gb = workload.model_parameters * BYTES_PER_PARAMETER / 1e9
        per_gpu_gb = np.maximum(self.gpu_memory_gb * GPU_MEMORY_HEADROOM, 1e-3)
        needed = np.maximum(np.ceil(weights_gb / per_gpu_gb), max(workload.gpus_required, 1))
        available = self.free_gpus.copy()
        own = self.index_of.get(workload.current_environment_id)
        if own is not None:
            available[own] = min(self.gpu_count[own], available[own] + workload.gpus_required)
        used = np.maximum(np.minimum(needed, available), 0.0)
        return np.where(self.gpu_count > 0, used, 0.0)

    def eligible(self, workload: WorkloadProfile) -> np.ndarray:
        """Return ``is_eligible`` for the workload in every environment (vectorised)."""
        mask = self.trusted | (not workload.handles_secured_data)
        accepts = self.accepts_work.copy()
        own = self.index_of.get(workload.current_environment_id)
        if own is not None:
            accepts[own] = True
        mask &= accepts
        if workload.gpus_required > 0:
            mask &= self.gpus_used(workload) >= workload.gpus_required
        return mask

    def front_end(self, workload: WorkloadProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return mean bandwidth, RTT and request+reply transfer time to the workload's devices."""
        n = len(self.environments)
        if not workload.front_end_ids:
            local = np.ones(n)
            transfer = LOCAL_RTT_MS + workload.payload_bytes * 8.0 / (LOCAL_BANDWIDTH_MBPS * 1000.0)
            return local * LOCAL_BANDWIDTH_MBPS, local * LOCAL_RTT_MS, local * transfer
        columns = [self.device_column.get(d) for d in workload.front_end_ids]
        known = [k for k in columns if k is not None]
        unknown = len(columns) - len(known)
        bandwidth = self.bandwidth_mbps[:, known]
        rtt = self.rtt_ms[:, known]
        # Per device: RTT (half each way) plus serialisation of the request and the reply.
        transfer = rtt + workload.payload_bytes * 8.0 / (bandwidth * 1000.0)
        unlinked_transfer = UNLINKED_RTT_MS + workload.payload_bytes * 8.0 / (
            UNLINKED_BANDWIDTH_MBPS * 1000.0
        )
        count = len(columns)
        return (
            (bandwidth.sum(axis=1) + unknown * UNLINKED_BANDWIDTH_MBPS) / count,
            (rtt.sum(axis=1) + unknown * UNLINKED_RTT_MS) / count,
            (transfer.sum(axis=1) + unknown * unlinked_transfer) / count,
        )


def _pair_columns(
    workload: WorkloadProfile, arrays: EnvironmentArrays, keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return the vectorised pair-scope columns the keys ask for."""
    columns: dict[str, np.ndarray] = {}
    wanted = set(keys)
    if wanted & {"gpus_used", "work_per_gpu_ghz"}:
        used = arrays.gpus_used(workload)
        columns["gpus_used"] = used
        aggregate_ghz = used * arrays.gpu_clock_mhz / 1000.0
        aggregate_ghz = np.where(
            aggregate_ghz > 0, aggregate_ghz, np.maximum(arrays.cpu_cores, 1) * CPU_CORE_AS_GPU_GHZ
        )
        columns["work_per_gpu_ghz"] = compute_tflop(workload) / aggregate_ghz
    if wanted & {"front_end_bandwidth_mbps", "front_end_rtt_ms", "front_end_transfer_ms"}:
        bandwidth, rtt, transfer = arrays.front_end(workload)
        columns["front_end_bandwidth_mbps"] = bandwidth
        columns["front_end_rtt_ms"] = rtt
        columns["front_end_transfer_ms"] = transfer
    if wanted & {"inference_link_bandwidth_mbps", "inference_link_rtt_ms", "inference_link_transfer_ms"}:
        # Only model adaptation has an inferencing workload to talk to; the rest talk locally.
        target = workload.inference_environment_id
        links = [e.link_to_environment(target) for e in arrays.environments] if target is not None else None
        n = len(arrays.environments)
        if links is None:
            columns["inference_link_bandwidth_mbps"] = np.full(n, LOCAL_BANDWIDTH_MBPS)
            columns["inference_link_rtt_ms"] = np.full(n, LOCAL_RTT_MS)
            columns["inference_link_transfer_ms"] = np.full(n, inference_exchange_ms(workload, LOCAL))
        else:
            columns["inference_link_bandwidth_mbps"] = np.array([link.bandwidth_mbps for link in links])
            columns["inference_link_rtt_ms"] = np.array([link.rtt_ms for link in links])
            columns["inference_link_transfer_ms"] = np.array(
                [inference_exchange_ms(workload, link) for link in links]
            )
    return columns


def candidate_matrix(
    workloads: Sequence[WorkloadProfile],
    environments: Sequence[EnvironmentProfile],
    keys: Sequence[str],
    arrays: EnvironmentArrays | None = None,
) -> np.ndarray:
    """Return the features of every workload in every environment, workload-major.

    Row ``i * len(environments) + j`` is workload ``i`` in environment ``j``. Columns that
    depend on one side only are computed once per environment or workload and broadcast, and
    the link and GPU columns are vectorised, which keeps a 50 x 100 decision within a few
    milliseconds. Gives the same numbers as ``feature_matrix`` on the same pairs.
    """
    n_w, n_e = len(workloads), len(environments)
    if arrays is None:
        arrays = EnvironmentArrays(environments, [d for w in workloads for d in w.front_end_ids])
    matrix = np.empty((n_w, n_e, len(keys)), dtype=np.float64)
    pair_columns = [_pair_columns(w, arrays, keys) for w in workloads]
    for column, key in enumerate(keys):
        spec = FEATURES_BY_KEY[key]
        if spec.scope == "environment":
            probe = workloads[0] if workloads else None
            values = np.array([spec.compute(probe, e) for e in environments], dtype=np.float64)
            matrix[:, :, column] = values[np.newaxis, :]
        elif spec.scope == "workload":
            probe_env = environments[0] if environments else None
            values = np.array([spec.compute(w, probe_env) for w in workloads], dtype=np.float64)
            matrix[:, :, column] = values[:, np.newaxis]
        else:
            for i, workload in enumerate(workloads):
                vectorised = pair_columns[i].get(key)
                if vectorised is not None:
                    matrix[i, :, column] = vectorised
                else:
                    matrix[i, :, column] = [spec.compute(workload, e) for e in environments]
    return matrix.reshape(n_w * n_e, len(keys))


def categorical_mask(keys: Sequence[str]) -> np.ndarray:
    """Return which columns hold category codes (for the regressor's native categorical splits)."""
    return np.array([FEATURES_BY_KEY[key].categorical for key in keys], dtype=bool)


def describe(workload: WorkloadProfile, environment: EnvironmentProfile, keys: Sequence[str]) -> dict:
    """Return the features of one pair as {key: readable value} (categories by name), for evidence."""
    described: dict[str, float | str] = {}
    for key in keys:
        spec = FEATURES_BY_KEY[key]
        value = spec.compute(workload, environment)
        if spec.categories is not None:
            index = int(value)
            described[key] = spec.categories[index] if index < len(spec.categories) else "other"
        else:
            described[key] = round(value, 4)
    return described
