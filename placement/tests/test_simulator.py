"""The analytic performance model behaves like the hardware it describes."""

from dataclasses import replace

import pytest

from placement.features import EnvironmentProfile, LinkFigures, WorkloadProfile
from placement.simulator import (
    generate_scenario,
    inference_components_ms,
    profiling_samples,
    step_seconds,
    true_objective,
)

ENV = EnvironmentProfile(
    id=1, slug="a", trusted=True, gpu_architecture="ampere", gpu_count=8, gpu_clock_mhz=1410,
    gpu_memory_gb=80, interconnect="nvlink", interconnect_gbps=600, cpu_cores=64, memory_gb=512,
    storage_gb=20000,
)  # fmt: skip


def test_a_narrow_front_end_link_makes_transfer_the_limiting_factor():
    # Example 1: images over a 100 Mbit/s link dominate the request's latency.
    workload = WorkloadProfile(
        kind="inferencing", objective="latency", request_bytes=2e6, response_bytes=5e5, front_end_ids=(1,)
    )
    narrow = inference_components_ms(workload, replace(ENV, front_end_links={1: LinkFigures(100.0, 2.0)}))
    wide = inference_components_ms(workload, replace(ENV, front_end_links={1: LinkFigures(10_000.0, 3.0)}))
    assert narrow["transfer_ms"] == pytest.approx(202.0)
    assert narrow["transfer_ms"] > 10 * narrow["compute_ms"]
    assert wide["transfer_ms"] == pytest.approx(5.0)


def test_more_gpus_and_less_load_shorten_a_training_step():
    # Large batches: with tiny ones the gradient all-reduce dominates and more GPUs do not help.
    workload = WorkloadProfile(
        kind="training", objective="completion_time", gpus_required=1, model_parameters=1e9, batch_size=64
    )
    one = step_seconds(workload, replace(ENV, gpu_count=1))
    eight = step_seconds(replace(workload, gpus_required=8), ENV)
    loaded = step_seconds(replace(workload, gpus_required=8), replace(ENV, utilization=0.9))
    assert eight < one / 4
    assert loaded > 3 * eight


def test_completion_time_is_the_remaining_steps_times_the_step_time():
    workload = WorkloadProfile(kind="training", objective="completion_time", steps_remaining=500)
    assert true_objective(workload, ENV, "completion_time") == pytest.approx(
        500 * step_seconds(workload, ENV)
    )


def test_scenarios_are_seeded_and_hold_every_kind_of_workload():
    first = generate_scenario(42, environments=55, workloads=30)
    again = generate_scenario(42, environments=55, workloads=30)
    assert first == again
    assert len(first.environments) == 55
    assert {w.kind for w in first.workloads} == {"inferencing", "training", "adaptation"}
    assert len({e.gpu_architecture for e in first.environments}) >= 5


def test_the_profiling_run_only_pairs_workloads_with_eligible_environments():
    pairs, values = profiling_samples(5, objective="latency", rows=300)
    assert len(pairs) == len(values) == 300
    assert all(e.trusted for w, e in pairs if w.handles_secured_data)
    assert {w.kind for w, _ in pairs} == {"inferencing", "adaptation"}
    assert (values > 0).all()
