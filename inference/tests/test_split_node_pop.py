"""How a split node waits for work (``NodeServer.pop``), against the real data-plane Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from inference.split.dataplane import control_key, inbox_key
from inference.split.node import POLL_TIMEOUT_S, NodeServer
from inference.split.services import dataplane_client


@pytest.fixture
def server():
    client = dataplane_client()
    node = NodeServer(f"pop-{uuid.uuid4().hex[:8]}", client, spin_s=0.05)
    keys = [control_key(node.name), inbox_key(node.name)]
    yield node, keys
    client.delete(*keys)


def test_a_message_pushed_while_the_node_spins_is_popped(server):
    node, keys = server
    client = dataplane_client()
    pusher = threading.Timer(0.01, lambda: client.rpush(keys[1], b"activation"))
    pusher.start()

    popped = node.pop(keys, time.perf_counter() + node.spin_s)
    pusher.join()

    assert popped == (keys[1].encode(), b"activation")


def test_a_spinning_node_still_takes_control_commands_before_activations(server):
    node, keys = server
    client = dataplane_client()
    client.rpush(keys[1], b"activation")
    client.rpush(keys[0], b'{"op": "drop", "model_key": "m"}')

    first = node.pop(keys, time.perf_counter() + node.spin_s)
    second = node.pop(keys, time.perf_counter() + node.spin_s)

    assert first == (keys[0].encode(), b'{"op": "drop", "model_key": "m"}')
    assert second == (keys[1].encode(), b"activation")


def test_with_nothing_to_do_a_spinning_pop_returns_none_after_the_poll_timeout(server):
    node, keys = server

    started = time.monotonic()
    popped = node.pop(keys, time.perf_counter() + node.spin_s)
    waited = time.monotonic() - started

    assert popped is None
    # It waited out the BLPOP (not just the spin window), so an idle node does not busy-loop.
    assert waited >= POLL_TIMEOUT_S * 0.9
    # The connection went back to the pool in a clean state: a plain pop works after it.
    dataplane_client().rpush(keys[1], b"later")
    assert node.pop(keys, 0.0) == (keys[1].encode(), b"later")
