"""The causal variables: what they compute, and that both matrix builders agree."""

import numpy as np
import pytest

from placement.features import (
    DEFAULT_FEATURE_KEYS,
    EnvironmentProfile,
    LinkFigures,
    WorkloadProfile,
    candidate_matrix,
    check_feature_keys,
    describe,
    feature_matrix,
    gpus_used,
    is_eligible,
    transfer_ms,
)
from placement.simulator import generate_scenario


def environment(**overrides) -> EnvironmentProfile:
    values = dict(
        id=1, slug="a", trusted=True, gpu_architecture="hopper", gpu_count=8, gpu_clock_mhz=1980,
        gpu_memory_gb=80, interconnect="nvlink", interconnect_gbps=900, cpu_cores=64, memory_gb=512,
        storage_gb=10000,
    )  # fmt: skip
    values.update(overrides)
    return EnvironmentProfile(**values)


def test_transfer_time_is_half_the_rtt_plus_serialisation():
    # 1 MB over 100 Mbit/s is 80 ms on the wire, plus half of a 2 ms round trip.
    assert transfer_ms(LinkFigures(100.0, 2.0), 1_000_000) == pytest.approx(81.0)


def test_a_secured_workload_is_only_eligible_in_trusted_environments():
    workload = WorkloadProfile(kind="inferencing", objective="latency", handles_secured_data=True)
    assert is_eligible(workload, environment(trusted=True))
    assert not is_eligible(workload, environment(trusted=False))


def test_gpus_used_grows_with_the_weights_and_is_capped_by_free_gpus():
    big = WorkloadProfile(kind="inferencing", objective="latency", gpus_required=1, model_parameters=70e9)
    # 140 GB of 16-bit weights on 80 GB GPUs (64 GB usable) need three of them.
    assert gpus_used(big, environment()) == 3
    assert gpus_used(big, environment(gpus_in_use=7)) == 1
    assert not is_eligible(
        WorkloadProfile(kind="training", objective="completion_time", gpus_required=4),
        environment(gpus_in_use=6),
    )


def test_the_workloads_own_gpus_count_as_free_where_it_already_runs():
    workload = WorkloadProfile(
        kind="training", objective="completion_time", gpus_required=4, current_environment_id=1
    )
    assert gpus_used(workload, environment(gpus_in_use=8)) == 4


def test_front_end_features_use_the_internet_assumption_for_unlinked_devices():
    workload = WorkloadProfile(kind="inferencing", objective="latency", front_end_ids=(1, 2))
    env = environment(front_end_links={1: LinkFigures(10_000.0, 2.0)})
    described = describe(workload, env, ["front_end_bandwidth_mbps", "front_end_rtt_ms", "gpu_architecture"])
    assert described == {
        "front_end_bandwidth_mbps": 5025.0,
        "front_end_rtt_ms": 21.0,
        "gpu_architecture": "hopper",
    }


def test_the_vectorised_matrix_equals_the_pair_by_pair_matrix():
    scenario = generate_scenario(3, environments=20, workloads=12)
    keys = list(DEFAULT_FEATURE_KEYS)
    fast = candidate_matrix(scenario.workloads, scenario.environments, keys)
    pairs = [(w, e) for w in scenario.workloads for e in scenario.environments]
    slow = feature_matrix(pairs, keys)
    assert fast.shape == (12 * len(scenario.environments), len(keys))
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_unknown_or_empty_feature_selections_are_refused():
    with pytest.raises(ValueError, match="unknown causal variables: warp_drive"):
        check_feature_keys(["gpu_count", "warp_drive"])
    with pytest.raises(ValueError, match="at least one"):
        check_feature_keys([])
    assert check_feature_keys(["storage_gb", "gpu_clock_mhz"]) == ["gpu_clock_mhz", "storage_gb"]
