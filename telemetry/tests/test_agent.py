"""What the monitoring agent measures on this host, and the link model the data path honours."""

import shutil
import time
from types import SimpleNamespace

import pytest

from telemetry.agent import gpu_readings, host_readings
from telemetry.links import simulate_transfer, transfer_delay_ms


def test_host_readings_cover_cpu_memory_storage_and_the_network_rate():
    first, counters = host_readings(None)
    assert {r.metric for r in first} == {
        "cpu_percent",
        "memory_percent",
        "memory_used_bytes",
        "storage_percent",
        "storage_free_bytes",
    }
    assert all(0 <= r.value <= 100 for r in first if r.unit == "percent")
    time.sleep(0.05)
    second, _ = host_readings(counters)
    rates = {r.metric: r.value for r in second if r.unit == "bytes/s"}
    assert set(rates) == {"network_sent_bytes_per_s", "network_received_bytes_per_s"}
    assert all(value >= 0 for value in rates.values())


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has NVIDIA GPUs")
def test_a_host_without_nvidia_gpus_reports_no_gpu_figures():
    assert gpu_readings() == []


def test_transfer_delay_is_half_the_rtt_plus_serialisation():
    link = SimpleNamespace(bandwidth_mbps=100.0, rtt_ms=2.0)
    assert transfer_delay_ms(link, 2_000_000) == pytest.approx(161.0)
    # No configured link: the public-internet assumption (50 Mbit/s, 40 ms)
    assert transfer_delay_ms(None, 500_000) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        transfer_delay_ms(link, -1)


def test_the_simulated_transfer_really_waits():
    waited_ms = simulate_transfer(SimpleNamespace(bandwidth_mbps=1000.0, rtt_ms=40.0), 0)
    assert waited_ms >= 20.0
