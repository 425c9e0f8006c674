"""The placement model: trained on the profiling run, it ranks environments and decides moves."""

from dataclasses import replace

import numpy as np
import pytest

from placement.features import (
    DEFAULT_FEATURE_KEYS,
    EnvironmentProfile,
    LinkFigures,
    WorkloadProfile,
    feature_matrix,
)
from placement.model import PlacementModel, choose, decide, fit, target_scale
from placement.simulator import profiling_samples


@pytest.fixture(scope="module")
def latency_model() -> tuple[PlacementModel, object]:
    keys = list(DEFAULT_FEATURE_KEYS)
    pairs, targets = profiling_samples(21, objective="latency", rows=4000)
    return fit(
        feature_matrix(pairs, keys),
        targets,
        objective="latency",
        feature_keys=keys,
        scale=target_scale([w for w, _ in pairs], "latency"),
    )


def example_1_environments() -> list[EnvironmentProfile]:
    base = dict(
        trusted=True, interconnect="nvlink", interconnect_gbps=900, cpu_cores=128, memory_gb=1024,
        storage_gb=50000, gpu_memory_gb=80,
    )  # fmt: skip
    a = EnvironmentProfile(
        id=1, slug="onprem-a", gpu_architecture="hopper", gpu_count=64, gpu_clock_mhz=1980,
        front_end_links={1: LinkFigures(100, 2.0), 2: LinkFigures(100, 2.5)}, **base,
    )  # fmt: skip
    b = EnvironmentProfile(
        id=2, slug="onprem-b", gpu_architecture="ada", gpu_count=8, gpu_clock_mhz=2520,
        front_end_links={1: LinkFigures(10000, 3.0), 2: LinkFigures(10000, 3.5), 3: LinkFigures(10000, 4.0)},
        **{**base, "gpu_memory_gb": 48},
    )  # fmt: skip
    cloud = replace(b, id=3, slug="cloud", trusted=False, front_end_links={4: LinkFigures(10000, 12.0)})
    return [a, b, cloud]


def test_held_out_quality_is_reported_in_the_objectives_unit(latency_model):
    _, metrics = latency_model
    assert metrics.held_out_rows == 800
    assert metrics.r2 > 0.5
    assert metrics.median_relative_error < 0.5
    assert metrics.mae > 0


def test_the_model_recommends_component_b_for_example_1(latency_model):
    model, _ = latency_model
    workload = WorkloadProfile(
        kind="inferencing", objective="latency", request_bytes=2e6, response_bytes=5e5,
        front_end_ids=(1, 2, 3), current_environment_id=1,
    )  # fmt: skip
    predicted = model.predict([workload], example_1_environments())[0]
    assert predicted[1] < predicted[0] / 5
    assert choose(model, [workload], example_1_environments()) == [2]


def test_secured_workloads_are_never_placed_outside_trusted_environments(latency_model):
    model, _ = latency_model
    environments = example_1_environments()
    # Only the untrusted cloud reaches device 4, so it is the best place by far ...
    workload = WorkloadProfile(
        kind="inferencing",
        objective="latency",
        request_bytes=2e6,
        front_end_ids=(4,),
        current_environment_id=1,
    )
    assert choose(model, [workload], environments) == [3]
    # ... unless the workload handles secured data.
    assert choose(model, [replace(workload, handles_secured_data=True)], environments) in ([1], [2])


def test_a_saved_model_predicts_the_same_after_loading(latency_model, tmp_path):
    model, _ = latency_model
    path = tmp_path / "latency-v1.joblib"
    model.save(path)
    loaded = PlacementModel.load(path)
    workload = WorkloadProfile(kind="inferencing", objective="latency", front_end_ids=(1,))
    np.testing.assert_array_equal(
        loaded.predict([workload], example_1_environments()),
        model.predict([workload], example_1_environments()),
    )
    assert loaded.feature_keys == list(DEFAULT_FEATURE_KEYS)


def test_a_move_is_recommended_only_beyond_the_margin():
    predicted = {1: 100.0, 2: 85.0, 3: 40.0}
    moved = decide(predicted, current_id=1, eligible_ids=[1, 2, 3], margin_fraction=0.2)
    assert (moved.best_id, moved.recommend, round(moved.improvement_fraction, 2)) == (3, True, 0.6)
    within = decide(predicted, current_id=1, eligible_ids=[1, 2], margin_fraction=0.2)
    assert (within.best_id, within.recommend) == (2, False)
    assert "within the 20% margin" in within.reason
    stays = decide(predicted, current_id=3, eligible_ids=[1, 2, 3], margin_fraction=0.2)
    assert (stays.best_id, stays.recommend) == (3, False)


def test_a_workload_whose_environment_became_ineligible_is_moved_even_for_little_gain():
    decision = decide({1: 100.0, 2: 95.0}, current_id=1, eligible_ids=[2], margin_fraction=0.2)
    assert (decision.best_id, decision.recommend) == (2, True)
    assert decision.reason == "the current environment is no longer eligible"
