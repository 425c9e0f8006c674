"""Split plans, privacy refusal, the orchestrator cycle and request validation (no node processes).

The orchestrator tests mark nodes alive by writing their heartbeat keys into the real
Redis themselves: no partition is served here, only decisions are made and stored.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from inference.planner import PlanError
from inference.split.dataplane import HEARTBEAT_TTL_MS, heartbeat_key
from inference.split.orchestrator import orchestrator_cycle
from inference.split.services import (
    SplitPrivacyUnavailable,
    SplitRequestError,
    dataplane_client,
    split_generate,
    split_node_register,
    split_plan_propose,
    take_privacy_violations,
)
from inference.split_models import OrchestratorDecision, OrchestratorPolicy, SplitPlan
from inference.triggers import MonitoringSnapshot
from placement.models import AIModel

pytestmark = pytest.mark.django_db

RUN = uuid.uuid4().hex[:6]


def node_name(label: str) -> str:
    return f"p{RUN}{label}"


@pytest.fixture
def ai_model(tiny_llama_dir):
    return AIModel.objects.create(
        name=f"tiny {RUN}",
        slug=f"tiny-{RUN}",
        directory=str(tiny_llama_dir),
        architecture="llama",
        layer_count=8,
    )


@pytest.fixture
def cluster():
    """Two slow trusted nodes and two fast untrusted ones, all heartbeating."""
    nodes = {}
    for label, trust, decode_ms in [
        ("t1", "trusted", 10.0),
        ("t2", "trusted", 10.0),
        ("u1", "untrusted", 0.1),
        ("u2", "untrusted", 0.1),
    ]:
        node = split_node_register(name=node_name(label), trust=trust)
        node.profile = {"decode_ms_per_layer": decode_ms}
        node.save()
        nodes[label] = node
        dataplane_client().set(
            heartbeat_key(node.name), json.dumps({"utilisation": 0.1}), px=HEARTBEAT_TTL_MS * 20
        )
    yield nodes
    for node in nodes.values():
        dataplane_client().delete(heartbeat_key(node.name))


def parts(*spec):
    return [{"start": s, "end": e, "node": node_name(n)} for s, e, n in spec]


def test_a_plan_with_p1_on_an_untrusted_node_is_refused(ai_model, cluster):
    with pytest.raises(PlanError, match="privacy: first partition .* must run on a trusted node"):
        split_plan_propose(ai_model=ai_model, partitions=parts((0, 4, "u1"), (4, 8, "t1")))
    assert SplitPlan.objects.count() == 0


def test_a_plan_with_pk_on_an_untrusted_node_is_refused(ai_model, cluster):
    with pytest.raises(PlanError, match="privacy: last partition .* LM head and sampling"):
        split_plan_propose(ai_model=ai_model, partitions=parts((0, 4, "t1"), (4, 8, "u2")))


def test_an_untrusted_middle_partition_is_accepted_and_numbered(ai_model, cluster):
    plan = split_plan_propose(ai_model=ai_model, partitions=parts((0, 2, "t1"), (2, 6, "u1"), (6, 8, "t2")))
    again = split_plan_propose(ai_model=ai_model, partitions=parts((0, 4, "t1"), (4, 8, "t2")))
    assert (plan.version, again.version) == (1, 2)
    assert plan.route == f"{node_name('t1')}[0-1] -> {node_name('u1')}[2-5] -> {node_name('t2')}[6-7]"


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        ([], "malformed plan: partitions must be a non-empty list"),
        ("a-b", "malformed plan"),
        ([{"start": 0, "end": 8}], 'malformed plan: P1 must have exactly the keys "start", "end", "node"'),
        ([{"start": "0", "end": 8, "node": "x"}], "malformed plan: P1 layer bounds must be integers"),
        ([{"start": 0, "end": 5, "node": "TRUSTED1"}], "plan covers layers 0-4 but the model has 8 layers"),
        ([{"start": 0, "end": 8, "node": "nobody"}], "P1 is assigned to unknown node 'nobody'"),
    ],
)
def test_a_malformed_plan_is_refused_with_a_clear_error(ai_model, cluster, partitions, message):
    if partitions and isinstance(partitions, list) and partitions[0].get("node") == "TRUSTED1":
        partitions = [dict(partitions[0], node=node_name("t1"))]
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace("[", r"\[")):
        split_plan_propose(ai_model=ai_model, partitions=partitions)


def test_the_admin_form_refuses_an_untrusted_first_partition(client, ai_model, cluster):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        reverse("admin:inference_splitplan_add"),
        {
            "ai_model": ai_model.pk,
            "partitions": json.dumps(parts((0, 4, "u1"), (4, 8, "t1"))),
            "reason": "try",
            "acknowledgements-TOTAL_FORMS": "0",
            "acknowledgements-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "must run on a trusted node" in response.content.decode()
    assert SplitPlan.objects.count() == 0


def test_the_admin_form_stores_a_valid_plan_awaiting_approval(client, ai_model, cluster):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        reverse("admin:inference_splitplan_add"),
        {
            "ai_model": ai_model.pk,
            "partitions": json.dumps(parts((0, 4, "t1"), (4, 8, "t2"))),
            "reason": "manual",
            "acknowledgements-TOTAL_FORMS": "0",
            "acknowledgements-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    plan = SplitPlan.objects.get()
    assert (plan.version, plan.state, plan.created_by) == (1, SplitPlan.State.AWAITING_APPROVAL, "root")


def activate_directly(ai_model, partitions) -> SplitPlan:
    # No node processes in this module: mark the plan active without a broadcast.
    plan = split_plan_propose(ai_model=ai_model, partitions=partitions, created_by="test")
    SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.ACTIVE)
    return plan


def test_an_orchestrator_cycle_over_the_latency_threshold_stores_its_decision_with_the_metrics(
    ai_model, cluster
):
    current = activate_directly(ai_model, parts((0, 8, "t1")))
    busy = {node_name("t1"): 0.2, node_name("t2"): 0.2}
    snapshot = MonitoringSnapshot(latency_ewma_ms=400.0, node_utilisation=busy)

    decision = orchestrator_cycle(ai_model=ai_model, snapshot=snapshot)

    assert decision.action == OrchestratorDecision.Action.RESPLIT
    assert decision.metrics["latency_ewma_ms"] == 400.0
    assert decision.triggers[0]["name"] == "latency"
    assert decision.triggers[0]["threshold"] == 150.0
    assert decision.plan_from == current
    proposed = decision.plan_to
    # The fast untrusted nodes take the middle layers, never the ends.
    assert proposed.partitions[0]["node"] in {node_name("t1"), node_name("t2")}
    assert proposed.partitions[-1]["node"] in {node_name("t1"), node_name("t2")}
    assert any(p["node"] in {node_name("u1"), node_name("u2")} for p in proposed.partitions)
    # auto_apply is off by default: the change waits for an administrator.
    assert proposed.state == SplitPlan.State.AWAITING_APPROVAL


def test_the_orchestrator_never_puts_p1_or_pk_on_untrusted_nodes_even_when_they_are_far_faster(
    ai_model, cluster
):
    OrchestratorPolicy.objects.create(cooldown_s=0.0)
    activate_directly(ai_model, parts((0, 4, "t1"), (4, 8, "t2")))
    for latency in (200.0, 900.0, 5000.0):
        decision = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=latency))
        if decision.plan_to is not None:
            ends = {decision.plan_to.partitions[0]["node"], decision.plan_to.partitions[-1]["node"]}
            assert ends <= {node_name("t1"), node_name("t2")}
    assert OrchestratorDecision.objects.filter(ai_model=ai_model).count() == 3


def test_a_quiet_cycle_keeps_the_plan_and_says_why(ai_model, cluster):
    activate_directly(ai_model, parts((0, 4, "t1"), (4, 8, "t2")))

    decision = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=149.0))

    assert decision.action == OrchestratorDecision.Action.KEEP
    assert decision.reasons == ["no trigger fired"]
    assert decision.plan_to is None


def test_a_run_of_quiet_cycles_is_one_decision_row_with_the_latest_metrics(ai_model, cluster):
    activate_directly(ai_model, parts((0, 4, "t1"), (4, 8, "t2")))
    first = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=90.0))
    second = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=120.0))
    assert second.pk == first.pk
    assert OrchestratorDecision.objects.filter(ai_model=ai_model).count() == 1
    assert OrchestratorDecision.objects.get().metrics["latency_ewma_ms"] == 120.0

    fired = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=400.0))
    quiet_again = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=80.0))
    assert len({first.pk, fired.pk, quiet_again.pk}) == 3


def test_auto_apply_sends_the_new_plan_to_broadcast_instead_of_approval(
    ai_model, cluster, django_capture_on_commit_callbacks
):
    OrchestratorPolicy.objects.create(auto_apply=True)
    activate_directly(ai_model, parts((0, 8, "t1")))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decision = orchestrator_cycle(ai_model=ai_model, snapshot=MonitoringSnapshot(latency_ewma_ms=400.0))

    assert decision.plan_to.state == SplitPlan.State.BROADCASTING
    assert len(callbacks) == 1  # the activation task is enqueued once the decision commits


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model_slug": "no-such-model"}, "unknown model 'no-such-model'"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": []}, "prompt is empty"),
        ({"max_new_tokens": 0}, "max_new_tokens must be between 1 and 255; got 0"),
        ({"max_new_tokens": 100_000}, "max_new_tokens must be between 1 and 255; got 100000"),
        ({"temperature": -1.0}, "temperature must be between 0 and 10"),
    ],
)
def test_bad_split_requests_fail_with_a_clear_error(ai_model, options, message):
    request = {"model_slug": ai_model.slug, "prompt": "Hello there", "max_new_tokens": 4} | options
    with pytest.raises(SplitRequestError, match=message):
        split_generate(**request)


def test_a_privacy_high_request_on_an_untrusted_route_is_refused_and_makes_the_next_cycle_go_all_trusted(
    ai_model, cluster
):
    current = activate_directly(ai_model, parts((0, 2, "t1"), (2, 6, "u1"), (6, 8, "t2")))
    take_privacy_violations(ai_model)  # nothing left over from elsewhere

    with pytest.raises(SplitPrivacyUnavailable, match=f"untrusted node\\(s\\) {node_name('u1')}"):
        split_generate(model_slug=ai_model.slug, prompt="Hello there", max_new_tokens=4, privacy="high")
    decision = orchestrator_cycle(ai_model=ai_model)
    again = orchestrator_cycle(ai_model=ai_model)

    assert decision.metrics["privacy_high_request"] is True
    assert [t["name"] for t in decision.triggers] == ["privacy"]
    assert decision.plan_from == current
    trusted = {node_name("t1"), node_name("t2")}
    assert {p["node"] for p in decision.plan_to.partitions} <= trusted
    # The cycle consumed the record: the next one does not see it again.
    assert again.metrics["privacy_high_request"] is False


def test_an_unknown_privacy_level_is_refused_and_not_recorded(ai_model, cluster):
    activate_directly(ai_model, parts((0, 4, "t1"), (4, 8, "t2")))
    take_privacy_violations(ai_model)

    with pytest.raises(SplitRequestError, match="privacy must be one of normal, high"):
        split_generate(model_slug=ai_model.slug, prompt="Hello", max_new_tokens=4, privacy="secret")

    assert take_privacy_violations(ai_model) == 0
