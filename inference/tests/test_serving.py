"""Whole-model serving through real Celery workers on the two brokers (public and private),
real Redis reply channels and a tiny real model."""

from __future__ import annotations

import re
import signal
import time
import uuid

import psutil
import pytest
import redis
from django.conf import settings

from console.testing import subprocess_env
from inference.serving import (
    GenerationFailed,
    ServingTarget,
    WorkerTimeout,
    broker_name,
    generation_dispatch,
    generation_serve,
    redis_client,
    reply_redis_url,
    running_worker,
    worker_argv,
)

# Both workers consume the same queue name, each on its own broker: a task sent on one
# broker can only reach the worker attached to it.
QUEUE_SLUG = f"serving-{uuid.uuid4().hex[:6]}"
PROMPT = "def fibonacci(n):"


@pytest.fixture(scope="module")
def workers(tiny_llama_dir):
    env = subprocess_env(SWITCHYARD_PRELOAD_MODELS=str(tiny_llama_dir), SWITCHYARD_TORCH_THREADS="1")
    log_dir = settings.VAR_DIR / "log"
    queue = f"env.{QUEUE_SLUG}"
    with (
        running_worker(
            queue=queue,
            private_path=True,
            env=env,
            log_path=log_dir / f"{QUEUE_SLUG}-private.log",
            cwd=settings.BASE_DIR,
        ) as private,
        running_worker(
            queue=queue,
            private_path=False,
            env=env,
            log_path=log_dir / f"{QUEUE_SLUG}-public.log",
            cwd=settings.BASE_DIR,
        ) as public,
    ):
        yield {"private": private, "public": public}


def target(model_dir, *, private: bool, slug: str = QUEUE_SLUG) -> ServingTarget:
    return ServingTarget(environment_slug=slug, private_path=private, model_dir=str(model_dir))


def received(worker) -> int:
    return len(re.findall(r"generate_text\[[0-9a-f-]+\] received", worker.log_path.read_text()))


def serve(model_dir, *, private: bool, stream: bool = False, max_new_tokens: int = 8, timeout_s: float = 60):
    channel = generation_dispatch(
        target=target(model_dir, private=private),
        request_id=uuid.uuid4().hex,
        prompt=PROMPT,
        max_new_tokens=max_new_tokens,
        stream=stream,
        timeout_s=timeout_s,
    )
    try:
        return channel.result()
    finally:
        channel.close()


class Environment:
    def __init__(self, network_path: str) -> None:
        self.network_path = network_path


def test_private_path_environments_use_the_private_broker_and_worker_command():
    private, public = Environment("private"), Environment("public")

    assert (broker_name(private), broker_name(public)) == ("private", "public")
    assert worker_argv(queue="env.secured", private_path=True)[3:6] == [
        "-A",
        "inference.serving:private_app",
        "worker",
    ]
    assert worker_argv(queue="env.public", private_path=False)[3:5] == ["-A", "console"]
    assert reply_redis_url(True) == settings.SECURED_REDIS_URL
    assert reply_redis_url(False) == settings.REDIS_URL


def test_a_private_request_reaches_only_the_worker_on_the_private_broker(tiny_llama_dir, workers):
    private_before, public_before = received(workers["private"]), received(workers["public"])

    reply = serve(tiny_llama_dir, private=True)

    assert reply.completion_tokens == 8 and reply.finish_reason == "length"
    assert reply.worker_timings["model_ms"] > 0
    assert received(workers["private"]) == private_before + 1
    assert received(workers["public"]) == public_before


def test_a_public_request_reaches_only_the_worker_on_the_public_broker(tiny_llama_dir, workers):
    private_before, public_before = received(workers["private"]), received(workers["public"])

    reply = serve(tiny_llama_dir, private=False)

    assert reply.completion_tokens == 8
    assert received(workers["public"]) == public_before + 1
    assert received(workers["private"]) == private_before


def test_streamed_pieces_add_up_to_the_non_streamed_text(tiny_llama_dir, workers):
    whole = serve(tiny_llama_dir, private=True, max_new_tokens=12)
    streamed = serve(tiny_llama_dir, private=True, max_new_tokens=12, stream=True)

    assert streamed.text == whole.text
    assert streamed.completion_tokens == whole.completion_tokens == 12


def test_an_unservable_request_comes_back_as_a_clear_error(tiny_llama_dir, workers):
    with pytest.raises(GenerationFailed) as failure:
        serve(tiny_llama_dir, private=False, max_new_tokens=5000)

    assert failure.value.code == "invalid_request"
    assert "max_new_tokens must be between 1 and" in str(failure.value)


def test_nobody_consuming_the_queue_gives_a_timeout_not_a_hang(tiny_llama_dir):
    slug = f"nobody-{uuid.uuid4().hex[:6]}"
    channel = generation_dispatch(
        target=target(tiny_llama_dir, private=True, slug=slug),
        request_id=uuid.uuid4().hex,
        prompt=PROMPT,
        max_new_tokens=4,
        timeout_s=1,
    )

    with pytest.raises(WorkerTimeout, match="no worker answered within 1 s"):
        channel.result()
    channel.close()
    redis.Redis.from_url(settings.SECURED_REDIS_URL).delete(f"env.{slug}")


def test_serving_the_same_request_twice_replies_once(tiny_llama_dir):
    # A redelivered task (its worker died after replying, before acknowledging) is skipped.
    url = settings.SECURED_REDIS_URL
    request_id, reply_key = uuid.uuid4().hex, f"sy:reply:test-{uuid.uuid4().hex}"
    request = dict(
        request_id=request_id,
        reply_key=reply_key,
        model_dir=str(tiny_llama_dir),
        prompt=PROMPT,
        max_new_tokens=4,
        temperature=0.0,
        top_p=1.0,
        seed=None,
        stream=False,
        deadline_unix=time.time() + 30,
        ttl_s=60,
    )

    outcomes = [generation_serve(reply_url=url, **request), generation_serve(reply_url=url, **request)]

    client = redis_client(url)
    events = [event for event in client.lrange(reply_key, 0, -1)]
    client.delete(reply_key)
    assert outcomes == ["done", "duplicate"]
    assert [b'"type":"done"' in event for event in events].count(True) == 1
    assert 0 < client.ttl(f"sy:gen:{request_id}:done") <= 60


def test_a_worker_process_killed_mid_generation_loses_no_request(tiny_llama_dir, workers):
    expected = serve(tiny_llama_dir, private=True, max_new_tokens=80, stream=True)
    channel = generation_dispatch(
        target=target(tiny_llama_dir, private=True),
        request_id=uuid.uuid4().hex,
        prompt=PROMPT,
        max_new_tokens=80,
        stream=True,
        timeout_s=90,
    )
    client = redis_client(settings.SECURED_REDIS_URL)
    deadline = time.monotonic() + 60
    while client.llen(channel.key) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)

    # When the pool process generating it dies (the worker's main process survives)
    for child in psutil.Process(workers["private"].pid).children():
        child.send_signal(signal.SIGKILL)

    # Then the message is redelivered, generated again, and the client sees one clean reply
    reply = channel.result()
    channel.close()
    assert reply.attempt == 2
    assert reply.text == expected.text
    assert reply.completion_tokens == expected.completion_tokens
