"""Split generation across real node processes (``run_split_node``) through real Redis.

Each node is a ``manage.py run_split_node`` subprocess holding only its partition of the
tiny Llama model; the test process is the coordinator. Tokens are compared with the whole
model's greedy output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from console.testing import subprocess_env
from inference.runtime import encode_prompt, generate, load_model
from inference.split.coordinator import Coordinator
from inference.split.dataplane import latency_key, live_nodes, read_active_plan
from inference.split.services import (
    active_plan_of,
    dataplane_client,
    split_generate,
    split_node_register,
    split_plan_activate,
    split_plan_propose,
)
from inference.split_models import OrchestratorDecision, PlanAcknowledgement, SplitNode, SplitPlan
from placement.models import AIModel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROMPT = "The function returns the value of"
NEW_TOKENS = 12
RUN = uuid.uuid4().hex[:6]


@contextmanager
def node_processes(names: list[str], extra_args: tuple[str, ...] = ("--profile-model", "")):
    """Start one ``run_split_node`` process per name; wait until each heartbeats."""
    log_dir = Path(settings.VAR_DIR) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name in names:
        log = open(log_dir / f"split-node-{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        processes[name] = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_split_node",
                "--node",
                name,
                "--trust",
                "trusted",
                "--threads",
                "1",
                *extra_args,
            ],
            cwd=settings.BASE_DIR,
            env=subprocess_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not all(live_nodes(dataplane_client(), names).values()):
            for name, process in processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"node {name} exited: {(log_dir / f'split-node-{name}.log').read_text()[-2000:]}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError("split nodes did not heartbeat within 120 s")
            time.sleep(0.2)
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


NODES = [f"n{RUN}a", f"n{RUN}b", f"n{RUN}c"]


@pytest.fixture(scope="module")
def nodes(django_db_setup):
    with node_processes(NODES) as processes:
        yield processes


@pytest.fixture(scope="module")
def whole_tokens(tiny_llama_dir) -> list[int]:
    loaded = load_model(tiny_llama_dir, device="cpu")
    return generate(loaded, PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False).token_ids


@pytest.fixture
def ai_model(tiny_llama_dir, nodes):
    # The transactional test database is emptied after each test: register the rows again.
    for name in NODES:
        split_node_register(name=name, trust="trusted")
    return AIModel.objects.create(
        name=f"tiny {RUN} {uuid.uuid4().hex[:4]}",
        slug=f"tiny-{RUN}-{uuid.uuid4().hex[:4]}",
        directory=str(tiny_llama_dir),
        architecture="llama",
        layer_count=8,
    )


def activate(ai_model, partitions) -> SplitPlan:
    plan = split_plan_propose(ai_model=ai_model, partitions=partitions, created_by="test")
    return split_plan_activate(plan=plan, timeout_s=60)


def parts(*spec):
    return [{"start": s, "end": e, "node": n} for s, e, n in spec]


def test_two_partitions_on_two_node_processes_give_the_whole_models_tokens(ai_model, whole_tokens):
    a, b, _ = NODES
    plan = activate(ai_model, parts((0, 4, a), (4, 8, b)))

    reply = split_generate(
        model_slug=ai_model.slug, prompt=PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False
    )

    assert reply.token_ids == whole_tokens
    assert plan.state == SplitPlan.State.ACTIVE
    # Every decode step's latency reached Redis for the orchestrator (sent with later pushes).
    samples = dataplane_client().lrange(latency_key(ai_model.slug), 0, -1)
    assert len(samples) == NEW_TOKENS - 1
    assert sorted(PlanAcknowledgement.objects.filter(plan=plan).values_list("layers", flat=True)) == [
        [0, 4],
        [4, 8],
    ]
    assert reply.generation.replays == 0
    # Per decoded token one position of 64 float32 values crosses the boundary.
    assert len(reply.generation.boundary_bytes) == 1
    assert reply.generation.boundary_bytes[0] == 64 * 4 + 4 + 2 + 3 * 8


def test_three_partitions_give_the_whole_models_tokens(ai_model, whole_tokens):
    a, b, c = NODES
    activate(ai_model, parts((0, 2, c), (2, 5, a), (5, 8, b)))

    reply = split_generate(
        model_slug=ai_model.slug, prompt=PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False
    )

    assert reply.token_ids == whole_tokens
    assert len(reply.generation.boundary_bytes) == 2


def test_a_plan_change_mid_generation_replays_and_keeps_the_tokens(ai_model, whole_tokens):
    a, b, c = NODES
    first = activate(ai_model, parts((0, 4, a), (4, 8, b)))

    def resplit(step: int) -> None:
        if step == 5:
            activate(ai_model, parts((0, 3, b), (3, 6, c), (6, 8, a)))

    reply = split_generate(
        model_slug=ai_model.slug,
        prompt=PROMPT,
        max_new_tokens=NEW_TOKENS,
        stop_on_eos=False,
        before_step=resplit,
    )

    assert reply.token_ids == whole_tokens
    assert reply.generation.plan_versions == [first.version, first.version + 1]
    assert reply.generation.replays == 0  # the coordinator saw the new version before sending
    first.refresh_from_db()
    assert first.state == SplitPlan.State.SUPERSEDED
    assert active_plan_of(ai_model).version == first.version + 1


def test_a_plan_changed_behind_the_coordinators_back_is_caught_by_the_nodes(ai_model, nodes):
    """The running loop meets ``stale_plan`` at a pruned node and the history is replayed."""
    a, b, c = NODES
    # Long enough that the loop cannot finish before the hook at the first token holds it.
    new_tokens = 200
    loaded = load_model(ai_model.path, device="cpu")
    expected = generate(loaded, PROMPT, max_new_tokens=new_tokens, stop_on_eos=False).token_ids
    first = activate(ai_model, parts((0, 4, a), (4, 8, b)))
    old_plan = read_active_plan(dataplane_client(), ai_model.slug)
    state = {"hiding": False, "after_hook": False}

    def plan_source():
        # Asked right after the hook, the coordinator is shown the old plan until it asks
        # for another reason (a node's stale_plan answer): only the nodes can tell it that
        # the plan moved on.
        if state["hiding"] and state["after_hook"]:
            state["after_hook"] = False
            return old_plan
        state["hiding"] = False
        return read_active_plan(dataplane_client(), ai_model.slug)

    def resplit(step: int) -> None:
        if step == 1:
            # Hold b so the running loop cannot finish before the new plan is active.
            os.kill(nodes[b].pid, signal.SIGSTOP)
            try:
                activate(ai_model, parts((0, 5, c), (5, 8, a)))
            finally:
                os.kill(nodes[b].pid, signal.SIGCONT)
            state["hiding"] = True
        state["after_hook"] = True

    coordinator = Coordinator(dataplane_client(), ai_model.slug, plan_source=plan_source)
    generation = coordinator.generate(
        encode_prompt(loaded, PROMPT), max_new_tokens=new_tokens, stop_on_eos=False, before_step=resplit
    )

    assert generation.token_ids == expected
    assert generation.replays == 1
    assert generation.plan_versions == [first.version, first.version + 1]


def test_a_node_killed_mid_generation_is_replaced_and_the_tokens_do_not_change(ai_model, whole_tokens):
    a, b, _ = NODES
    doomed = f"n{RUN}d"
    with node_processes([doomed]) as extra:
        split_node_register(name=doomed, trust="trusted")
        activate(ai_model, parts((0, 4, a), (4, 8, doomed)))

        def kill(step: int) -> None:
            if step == 4:
                os.killpg(extra[doomed].pid, signal.SIGKILL)
                extra[doomed].wait()

        reply = split_generate(
            model_slug=ai_model.slug,
            prompt=PROMPT,
            max_new_tokens=NEW_TOKENS,
            stop_on_eos=False,
            step_timeout_s=60,
            before_step=kill,
        )

    assert reply.token_ids == whole_tokens
    assert reply.generation.lost_nodes == [doomed]
    assert reply.generation.replays == 1
    current = active_plan_of(ai_model)
    assert doomed not in [p["node"] for p in current.partitions]
    assert current.created_by == "recovery"
    decision = OrchestratorDecision.objects.get(plan_to=current)
    assert decision.triggers[0]["name"] == "node_lost"


def test_a_started_node_profiles_its_layers_and_stores_positive_costs(tiny_llama_dir, django_db_setup):
    ai_model = AIModel.objects.create(
        name=f"tiny {RUN} profile",
        slug=f"tiny-{RUN}-profile",
        directory=str(tiny_llama_dir),
        architecture="llama",
        layer_count=8,
    )
    name = f"n{RUN}prof"
    with node_processes([name], extra_args=("--profile-model", ai_model.slug)):
        node = SplitNode.objects.get(name=name)

    assert node.profile["decode_ms_per_layer"] > 0
    assert node.profile["prefill_ms_per_layer"] > 0
    assert node.profile["activation_bytes_per_token"] >= 64 * 4
    assert node.profile["model"] == ai_model.slug


def test_the_split_api_answers_with_the_whole_models_tokens_and_the_plan_version(
    ai_model, whole_tokens, client, django_user_model
):
    from rest_framework.authtoken.models import Token

    a, b, _ = NODES
    plan = activate(ai_model, parts((0, 4, a), (4, 8, b)))
    user = django_user_model.objects.create_user(f"api-{RUN}", password="a-long-password-42")
    body = {"model": ai_model.slug, "prompt": PROMPT, "max_new_tokens": NEW_TOKENS, "stop_on_eos": False}

    response = client.post(
        "/api/v1/split/generate",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}",
    )

    assert response.status_code == 200
    answer = response.json()
    assert answer["tokens"] == whole_tokens
    assert answer["plan_version"] == plan.version
    assert answer["timings"]["decode_steps"] == NEW_TOKENS - 1
    assert answer["text"]


def test_the_demo_bootstrap_activates_a_first_plan_over_the_running_nodes_once(ai_model, whole_tokens):
    from inference.split.demo import bootstrap_initial_plan

    plan = bootstrap_initial_plan(model_slug=ai_model.slug, nodes=NODES, timeout_s=60)
    again = bootstrap_initial_plan(model_slug=ai_model.slug, nodes=NODES, timeout_s=60)
    reply = split_generate(
        model_slug=ai_model.slug, prompt=PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False
    )

    assert plan.state == SplitPlan.State.ACTIVE
    assert [p["node"] for p in plan.partitions] == NODES
    assert [(p["start"], p["end"]) for p in plan.partitions] == [(0, 3), (3, 5), (5, 8)]
    assert again.pk == plan.pk
    assert reply.token_ids == whole_tokens


def test_spinning_nodes_give_the_whole_models_tokens_and_keep_serving_after_idling(ai_model, whole_tokens):
    spinning = [f"n{RUN}s1", f"n{RUN}s2"]
    with node_processes(spinning, ("--profile-model", "", "--spin-ms", "50")):
        for name in spinning:
            split_node_register(name=name, trust="trusted")
        activate(ai_model, parts((0, 4, spinning[0]), (4, 8, spinning[1])))

        first = split_generate(
            model_slug=ai_model.slug, prompt=PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False
        )
        # Past the spin window the nodes block in BLPOP again, and still wake for work.
        time.sleep(0.7)
        second = split_generate(
            model_slug=ai_model.slug, prompt=PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False
        )

    assert first.token_ids == whole_tokens
    assert second.token_ids == whole_tokens
    assert first.generation.replays == second.generation.replays == 0
