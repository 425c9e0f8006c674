"""Measured links between split nodes: real node processes probe each other through real Redis.

The nodes (``run_split_node`` subprocesses, probing every 2 s here) measure RTT and
bandwidth through the data-plane Redis; ``split_links_sync`` copies the figures into the
rows the planner and the orchestrator read. Only positivity and presence are asserted:
the figures themselves depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from inference.split.dataplane import HEARTBEAT_TTL_MS, heartbeat_key
from inference.split.links import (
    PROBE_REPLY_PREFIX,
    LinkMeasurement,
    LinkProber,
    answer_probe,
    link_key,
    probe_key,
)
from inference.split.orchestrator import orchestrator_cycle
from inference.split.services import (
    DEFAULT_LINK_MBPS,
    dataplane_client,
    link_figures,
    node_links,
    split_links_sync,
    split_node_register,
    split_plan_propose,
)
from inference.split_models import LinkMeasurement as MeasuredLink
from inference.split_models import NodeLink, OrchestratorPolicy, SplitNode, SplitPlan
from inference.tests.test_split_nodes import node_processes
from placement.models import AIModel

RUN = uuid.uuid4().hex[:6]
PROBING = ("--profile-model", "", "--probe-interval-s", "2")
CONFIGURED_MBPS = 123.0
CONFIGURED_RTT_MS = 7.0


def wait_for(condition, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def both_links_in_redis(a: str, b: str) -> bool:
    return dataplane_client().exists(link_key(a, b), link_key(b, a)) == 2


def configure(a: str, b: str) -> None:
    NodeLink.objects.create(
        a=SplitNode.objects.get(name=a),
        b=SplitNode.objects.get(name=b),
        bandwidth_mbps=CONFIGURED_MBPS,
        rtt_ms=CONFIGURED_RTT_MS,
    )


@pytest.fixture
def ai_model(tiny_llama_dir):
    return AIModel.objects.create(
        name=f"tiny {RUN} {uuid.uuid4().hex[:4]}",
        slug=f"tiny-{RUN}-{uuid.uuid4().hex[:4]}",
        directory=str(tiny_llama_dir),
        architecture="llama",
        layer_count=8,
    )


def activate_directly(ai_model, partitions) -> SplitPlan:
    # The orchestrator only reads the active plan's row: no broadcast needed for a decision.
    plan = split_plan_propose(ai_model=ai_model, partitions=partitions, created_by="test")
    SplitPlan.objects.filter(pk=plan.pk).update(state=SplitPlan.State.ACTIVE, activated_at=timezone.now())
    return plan


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_live_nodes_measure_their_link_both_ways_and_the_planner_and_trigger_use_it(ai_model):
    a, b = f"l{RUN}a", f"l{RUN}b"
    with node_processes([a, b], extra_args=PROBING):
        for name in (a, b):
            split_node_register(name=name, trust="trusted")
        configure(a, b)
        wait_for(lambda: both_links_in_redis(a, b), "both nodes to measure their link")

        assert split_links_sync() >= 2
        # The real measurement fires the bandwidth trigger when the threshold is above it.
        activate_directly(ai_model, [{"start": 0, "end": 4, "node": a}, {"start": 4, "end": 8, "node": b}])
        OrchestratorPolicy.objects.create(bandwidth_mbps=1e12)
        decision = orchestrator_cycle(ai_model=ai_model)  # syncs the links again first
        # What the cycle saw: the rows as it synced them, fresh at the decision's time.
        rows = {
            (m.source.name, m.target.name): m for m in MeasuredLink.objects.select_related("source", "target")
        }
        nodes = list(SplitNode.objects.filter(name__in=[a, b]))
        [figures] = link_figures(nodes, now=decision.created_at)

    assert set(rows) == {(a, b), (b, a)}
    for row in rows.values():
        assert row.rtt_ms > 0
        assert row.bandwidth_mbps > 0
        assert row.payload_bytes == settings.SPLIT_LINK_PROBE_BYTES
        assert row.expires_at > row.measured_at
    # The measured figures override the configured ones; the worse direction counts.
    assert figures.source == "measured"
    assert sorted(figures.directions) == [f"{a}->{b}", f"{b}->{a}"]
    assert (figures.a, figures.b) == tuple(sorted((a, b)))
    assert figures.bandwidth_mbps == min(row.bandwidth_mbps for row in rows.values())
    assert figures.rtt_ms == max(row.rtt_ms for row in rows.values())
    assert (figures.bandwidth_mbps, figures.rtt_ms) != (CONFIGURED_MBPS, CONFIGURED_RTT_MS)
    [bandwidth] = [t for t in decision.triggers if t["name"] == "bandwidth"]
    assert bandwidth["observed"] == figures.bandwidth_mbps
    assert decision.metrics["link_bandwidth_mbps"] == [[*sorted((a, b)), figures.bandwidth_mbps]]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dead_peers_link_is_not_refreshed_and_the_planner_falls_back_to_the_configured_figure():
    a, b = f"l{RUN}c", f"l{RUN}d"
    with node_processes([a, b], extra_args=PROBING) as processes:
        for name in (a, b):
            split_node_register(name=name, trust="trusted")
        configure(a, b)
        wait_for(lambda: both_links_in_redis(a, b), "both nodes to measure their link")
        split_links_sync()
        nodes = list(SplitNode.objects.filter(name__in=[a, b]))
        measured_while_alive = link_figures(nodes)[0].source

        # When the peer dies without a word, its heartbeat lapses and the probes stop.
        os.killpg(processes[b].pid, signal.SIGKILL)
        processes[b].wait()
        killed_at = timezone.now()
        wait_for(
            lambda: not dataplane_client().exists(link_key(a, b), link_key(b, a)),
            "the dead peer's link to expire in Redis",
        )
        split_links_sync()
        wait_for(lambda: link_figures(nodes)[0].source != "measured", "the measurement to go stale")
        [figures] = link_figures(nodes)
        stale = list(MeasuredLink.objects.select_related("source"))

    assert measured_while_alive == "measured"
    assert (figures.source, figures.bandwidth_mbps, figures.rtt_ms) == (
        "configured",
        CONFIGURED_MBPS,
        CONFIGURED_RTT_MS,
    )
    assert node_links(nodes)[0].bandwidth_mbps == CONFIGURED_MBPS
    # The rows stay for the console, stale: nothing measured them after the kill.
    assert {row.source.name for row in stale} == {a, b}
    assert all(row.measured_at < killed_at and not row.is_fresh() for row in stale)


@pytest.fixture
def heartbeating():
    names = [f"l{RUN}t1", f"l{RUN}t2"]
    for name in names:
        split_node_register(name=name, trust="trusted")
        dataplane_client().set(
            heartbeat_key(name), json.dumps({"utilisation": 0.1}), px=HEARTBEAT_TTL_MS * 20
        )
    yield names
    for name in names:
        dataplane_client().delete(heartbeat_key(name), link_key(*names), link_key(*reversed(names)))


def inject(source: str, target: str, mbit_s: float, ttl_s: float = 90.0) -> None:
    """Store a measurement where a node's prober stores it (the same key, JSON and TTL)."""
    measurement = LinkMeasurement(source, target, 2.0, mbit_s, 1024, 5, 3, time.time(), ttl_s)
    LinkProber(source, dataplane_client()).store(measurement)


@pytest.mark.django_db
def test_the_bandwidth_trigger_fires_on_a_measured_route_link_below_the_threshold(ai_model, heartbeating):
    t1, t2 = heartbeating
    activate_directly(ai_model, [{"start": 0, "end": 4, "node": t1}, {"start": 4, "end": 8, "node": t2}])
    inject(t1, t2, 20.0)
    inject(t2, t1, 35.0)

    decision = orchestrator_cycle(ai_model=ai_model)

    [bandwidth] = [t for t in decision.triggers if t["name"] == "bandwidth"]
    assert bandwidth["observed"] == 20.0
    assert bandwidth["threshold"] == 50.0
    assert f"{t1}-{t2}" in bandwidth["detail"]
    assert MeasuredLink.objects.get(source__name=t1, target__name=t2).bandwidth_mbps == 20.0


@pytest.mark.django_db
def test_a_configured_figure_alone_does_not_fire_the_bandwidth_trigger(ai_model, heartbeating):
    t1, t2 = heartbeating
    configure(t1, t2)
    NodeLink.objects.update(bandwidth_mbps=10.0)
    activate_directly(ai_model, [{"start": 0, "end": 4, "node": t1}, {"start": 4, "end": 8, "node": t2}])

    decision = orchestrator_cycle(ai_model=ai_model)

    assert decision.triggers == []
    assert decision.metrics["link_bandwidth_mbps"] == []
    # The planner still plans with it.
    assert node_links(list(SplitNode.objects.filter(name__in=heartbeating)))[0].bandwidth_mbps == 10.0


@pytest.mark.django_db
def test_an_expired_measurement_gives_way_to_the_configured_figure_then_the_default(heartbeating):
    t1, t2 = heartbeating
    inject(t1, t2, 20.0)
    split_links_sync()
    nodes = list(SplitNode.objects.filter(name__in=heartbeating))
    assert link_figures(nodes)[0].source == "measured"

    later = timezone.now() + timedelta(seconds=120)
    assert link_figures(nodes, now=later)[0].source == "default"
    assert link_figures(nodes, now=later)[0].bandwidth_mbps == DEFAULT_LINK_MBPS
    configure(t1, t2)
    assert link_figures(nodes, now=later)[0].source == "configured"


def test_a_node_echoes_only_into_probe_reply_lists():
    from inference.split.dataplane import frame_message

    client = dataplane_client()
    reply = f"{PROBE_REPLY_PREFIX}{RUN}"
    elsewhere = f"split:inbox:{RUN}"
    try:
        assert answer_probe(client, frame_message({"reply": reply, "seq": 0}, b"x" * 10))
        assert not answer_probe(client, frame_message({"reply": elsewhere, "seq": 0}, b"x"))
        assert not answer_probe(client, b"\x00")
        assert client.llen(reply) == 1
        assert client.exists(elsewhere) == 0
    finally:
        client.delete(reply, probe_key(RUN))


@pytest.mark.django_db
def test_the_split_page_shows_which_link_figures_are_measured_and_when(
    client, django_user_model, heartbeating
):
    t1, t2 = heartbeating
    t3 = f"l{RUN}t3"
    split_node_register(name=t3, trust="untrusted")
    inject(t1, t2, 20.0)
    split_links_sync()
    configure(t1, t3)
    stale = timezone.now() - timedelta(minutes=5)
    MeasuredLink.objects.create(
        source=SplitNode.objects.get(name=t3),
        target=SplitNode.objects.get(name=t1),
        rtt_ms=3.0,
        bandwidth_mbps=80.0,
        measured_at=stale,
        expires_at=stale + timedelta(seconds=90),
    )
    client.force_login(django_user_model.objects.create_user(f"staff-{RUN}", password="pw", is_staff=True))

    page = client.get("/console/split/").content.decode()

    links = page[page.index('<table id="links">') : page.index("</table>", page.index('<table id="links">'))]
    assert f"{t1} – {t2}</td>" in links
    assert '20.0 Mbit/s, 2.00 ms <span class="pill ok">measured</span>' in links
    assert f"{t1} → {t2}: 20.0 Mbit/s, 2.00 ms" in links
    # The stale measurement is shown as such; the planner uses the configured figure.
    assert f"{t3} → {t1}: 80.0 Mbit/s, 3.00 ms" in links
    assert '<span class="pill warn">stale</span>' in links
    assert (
        f'{CONFIGURED_MBPS:.1f} Mbit/s, {CONFIGURED_RTT_MS:.2f} ms <span class="pill">configured</span>'
        in links
    )
    assert f"{t2} – {t3}" not in links  # neither measured nor configured: the default


@pytest.mark.django_db
def test_the_admin_lists_measured_links_read_only_and_configured_links(admin_client, heartbeating):
    t1, t2 = heartbeating
    inject(t1, t2, 20.0)
    split_links_sync()
    configure(t1, t2)

    measured = admin_client.get("/admin/inference/linkmeasurement/")
    configured = admin_client.get("/admin/inference/nodelink/")
    add = admin_client.get("/admin/inference/linkmeasurement/add/")

    assert measured.status_code == 200
    assert t1 in measured.content.decode() and "20.0" in measured.content.decode()
    assert configured.status_code == 200
    assert "123.0" in configured.content.decode()
    assert add.status_code == 403
