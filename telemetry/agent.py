"""What the monitoring agent measures on the host it runs on (patent paragraph 45, FIG. 1.3 162).

Host figures come from psutil; GPU figures from NVML (``pynvml``) or, failing that, from
``nvidia-smi``, and are simply absent on a machine without NVIDIA GPUs. No Django here: the
tasks in ``telemetry.tasks`` call these and store the results.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Reading:
    """One measured value."""

    metric: str
    value: float
    unit: str


@dataclass(frozen=True)
class NetworkCounters:
    """Cumulative interface byte counters at a moment, for computing a rate between two reads."""

    bytes_sent: int
    bytes_recv: int
    at_monotonic_s: float


def network_counters() -> NetworkCounters:
    """Return the host's cumulative network byte counters now."""
    counters = psutil.net_io_counters()
    return NetworkCounters(counters.bytes_sent, counters.bytes_recv, time.monotonic())


def host_readings(
    previous: NetworkCounters | None, storage_path: str = "/"
) -> tuple[list[Reading], NetworkCounters]:
    """Return CPU, memory, storage and network-rate readings, and the counters for next time.

    The network rate needs two reads; on the first call (``previous`` None) it is omitted.
    """
    # A short sampling interval: the first call of cpu_percent(None) in a process returns 0.
    cpu_percent = psutil.cpu_percent(interval=0.2)
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(storage_path)
    readings = [
        Reading("cpu_percent", cpu_percent, "percent"),
        Reading("memory_percent", memory.percent, "percent"),
        Reading("memory_used_bytes", float(memory.total - memory.available), "bytes"),
        Reading("storage_percent", disk.percent, "percent"),
        Reading("storage_free_bytes", float(disk.free), "bytes"),
    ]
    now = network_counters()
    if previous is not None:
        elapsed_s = now.at_monotonic_s - previous.at_monotonic_s
        if elapsed_s > 0:
            sent = max(now.bytes_sent - previous.bytes_sent, 0) / elapsed_s
            received = max(now.bytes_recv - previous.bytes_recv, 0) / elapsed_s
            readings.append(Reading("network_sent_bytes_per_s", sent, "bytes/s"))
            readings.append(Reading("network_received_bytes_per_s", received, "bytes/s"))
    return readings, now


def _nvml_readings() -> list[Reading] | None:
    try:
        import pynvml  # optional: only present where NVIDIA GPUs are
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: treat as no GPU
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return []
        utilization, used, total = 0.0, 0.0, 0.0
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            utilization += pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            used += memory.used
            total += memory.total
        return _gpu_readings(utilization / count, used, total, count)
    finally:
        pynvml.nvmlShutdown()


def _nvidia_smi_readings() -> list[Reading] | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        output = subprocess.run(
            [binary, "--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    rows = [[float(part) for part in line.split(",")] for line in output.strip().splitlines() if line.strip()]
    if not rows:
        return []
    utilization = sum(row[0] for row in rows) / len(rows)
    # nvidia-smi reports MiB.
    used = sum(row[1] for row in rows) * 2**20
    total = sum(row[2] for row in rows) * 2**20
    return _gpu_readings(utilization, used, total, len(rows))


def _gpu_readings(utilization: float, used: float, total: float, count: int) -> list[Reading]:
    return [
        Reading("gpu_utilization_percent", utilization, "percent"),
        Reading("gpu_memory_used_bytes", used, "bytes"),
        Reading("gpu_memory_percent", 100.0 * used / total if total else 0.0, "percent"),
        Reading("gpu_devices", float(count), "count"),
    ]


def gpu_readings() -> list[Reading]:
    """Return GPU utilisation and memory readings, or nothing on a host without NVIDIA GPUs."""
    readings = _nvml_readings()
    if readings is None:
        readings = _nvidia_smi_readings()
    return readings or []


def timed_ms(probe) -> float:
    """Return how long one call of ``probe()`` takes, in milliseconds (a round-trip probe)."""
    started = time.perf_counter()
    probe()
    return (time.perf_counter() - started) * 1000.0
