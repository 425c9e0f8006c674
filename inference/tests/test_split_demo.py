"""The demo's split rows, the initial plan's shape and the capacity profiler (no node processes)."""

from __future__ import annotations

import pytest

from inference.split.demo import DEMO_NODES, initial_partitions, load_split_demo
from inference.split.profile import profile_layers
from inference.split.services import node_profiles, split_node_register
from inference.split_models import OrchestratorPolicy, SplitNode
from placement.models import AIModel


def test_the_demo_creates_the_policy_and_three_split_nodes_once(demo):
    # ``demo`` ran load_demo, which calls load_split_demo; a second call changes nothing.
    assert load_split_demo() == {"split_nodes": 3}

    assert OrchestratorPolicy.objects.count() == 1
    names = [name for name, _, _ in DEMO_NODES]
    nodes = {node.name: node for node in SplitNode.objects.filter(name__in=names)}
    assert sorted(nodes) == sorted(names)
    assert nodes["split-edge"].is_trusted and nodes["split-core"].is_trusted
    assert not nodes["split-cloud"].is_trusted
    assert nodes["split-cloud"].environment.slug == "cloud"


def test_the_initial_plan_splits_layers_contiguously_in_node_order():
    assert initial_partitions(8, ["edge", "cloud", "core"]) == [
        {"start": 0, "end": 3, "node": "edge"},
        {"start": 3, "end": 5, "node": "cloud"},
        {"start": 5, "end": 8, "node": "core"},
    ]
    assert initial_partitions(2, ["a", "b", "c"]) == [
        {"start": 0, "end": 1, "node": "a"},
        {"start": 1, "end": 2, "node": "b"},
    ]


def test_profiling_reports_positive_per_layer_costs_and_the_hidden_state_size(tiny_llama_dir):
    profile = profile_layers(tiny_llama_dir, device="cpu", decode_steps=2)

    assert profile["decode_ms_per_layer"] > 0
    assert profile["prefill_ms_per_layer"] > 0
    assert profile["layers_profiled"] == 2
    # One position of a 64-wide float32 hidden state plus the wire header.
    assert profile["activation_bytes_per_token"] >= 64 * 4


@pytest.mark.django_db
def test_the_planner_uses_a_nodes_measured_profile_instead_of_the_default(tiny_llama_dir):
    ai_model = AIModel.objects.create(
        name="tiny profile", slug="tiny-profile", directory=str(tiny_llama_dir), architecture="llama"
    )
    node = split_node_register(name="profiled", trust="trusted")
    node.profile = {"decode_ms_per_layer": 2.5, "prefill_ms_per_layer": 0.25}
    node.save()
    unprofiled = split_node_register(name="unprofiled", trust="trusted")

    measured, default = node_profiles(ai_model, [node, unprofiled])

    assert measured.decode_ms_per_layer == (2.5,) * 8
    assert measured.prefill_ms_per_layer == (0.25,) * 8
    assert default.decode_ms_per_layer == (1.0,) * 8
