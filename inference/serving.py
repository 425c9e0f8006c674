"""Whole-model serving: the gateway sends a generation to an environment's worker and waits.

Path of one request (patent FIG. 2.3 steps 246-252 and FIG. 6 step 606):

1. The gateway publishes ``inference.tasks.generate_text`` on the environment's queue
   ``env.<slug>``. An environment reached over the *private* network path gets its tasks
   on the private broker (``SECURED_REDIS_URL``) through :data:`private_app`; every other
   environment uses the ordinary broker (``REDIS_URL``). The task's printable arguments
   are redacted and it stores no result, so the prompt reaches neither a log line nor
   the result backend.
2. The worker (one process per environment, model kept warm by
   ``inference.runtime.get_model``) generates and pushes its reply, as JSON events, to a
   random, short-lived Redis list on the same Redis as the broker that delivered it.
3. The gateway pops that list with a bounded wait: no answer within the timeout is a
   clear :class:`WorkerTimeout`, never a hang.

A worker of a private-path environment runs as::

    python -m celery -A inference.serving:private_app worker -Q env.<slug> -n env.<slug>@%h -c 1

(:func:`worker_argv` builds that line for ``runstack``, the tests and the benchmark.)
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from django.conf import settings

from console.celery import app as public_app
from console.celery import environment_queue
from console.envconfig import kombu_redis_url

logger = logging.getLogger(__name__)

GENERATE_TASK = "inference.tasks.generate_text"
PRIVATE_APP_NAME = "switchyard-private"
# Printable stand-ins for the task's arguments: Celery logs and events show these instead.
REDACTED_ARGS = "()"
REDACTED_KWARGS = "{'redacted': True}"
# The worker checks for a cancelled request (client gone) every this many generated pieces.
CANCEL_CHECK_EVERY = 16


def _make_private_app() -> Celery:
    # Same settings and task registry as the public app; only the broker (and the result
    # backend, which this path never uses) differ. The constructor's broker wins over the
    # CELERY_BROKER_URL setting. set_as_current=False keeps it from becoming the process's
    # default app, so other code's .delay() calls still go to the public broker.
    url = kombu_redis_url(settings.SECURED_REDIS_URL)
    app = Celery(PRIVATE_APP_NAME, broker=url, backend=url, set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    return app


private_app = _make_private_app()


class WorkerTimeout(Exception):
    """No worker answered (or finished) within the request's timeout."""

    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.started = started


class GenerationFailed(Exception):
    """The worker answered with an error; ``code`` is machine-readable, the message is safe."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ServingTarget:
    """Where a generation runs: an environment's queue and path, and the model directory."""

    environment_slug: str
    private_path: bool
    model_dir: str
    # A LoRA adapter applied for this request only (FIG. 4.3 step 454), and how replies name it.
    adapter_dir: str | None = None
    adapter_label: str | None = None
    # Set when the generation runs through this model's active split plan instead.
    split_model: str | None = None

    @property
    def queue(self) -> str:
        """Return the environment's Celery queue."""
        return environment_queue(self.environment_slug)


def uses_private_path(environment: Any) -> bool:
    """Return True when an environment is reached over the private network path."""
    return getattr(environment, "network_path", "public") == "private"


def broker_name(environment: Any) -> str:
    """Return "private" or "public": which broker an environment's worker must consume."""
    return "private" if uses_private_path(environment) else "public"


def celery_app_for(environment: Any) -> Celery:
    """Return the Celery app whose broker reaches an environment's workers."""
    return private_app if uses_private_path(environment) else public_app


def reply_redis_url(private_path: bool) -> str:
    """Return the Redis that carries replies for a path (the same server as its broker)."""
    return settings.SECURED_REDIS_URL if private_path else settings.REDIS_URL


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """Return this process's client (and connection pool) for a Redis URL."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            # The socket timeout must outlast the longest BLPOP wait (the request timeout).
            client = redis.Redis.from_url(
                url,
                health_check_interval=30,
                socket_connect_timeout=5,
                socket_timeout=max(settings.INFERENCE_TIMEOUT_S * 2, 30.0),
            )
            _clients[url] = client
        return client


def _keys(request_id: str) -> tuple[str, str, str]:
    base = f"sy:gen:{request_id}"
    return f"{base}:attempts", f"{base}:done", f"{base}:cancel"


@dataclass
class GenerationReply:
    """A finished generation as the gateway sees it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    attempt: int
    worker_timings: dict[str, float] = field(default_factory=dict)
    # The adapter the worker applied, as it reports it (None: the base model alone).
    adapter: str | None = None


class ReplyChannel:
    """The gateway's end of one request's private reply list."""

    def __init__(
        self, client: redis.Redis, key: str, request_id: str, timeout_s: float, started_at: float
    ) -> None:
        self._client = client
        self.key = key
        self.request_id = request_id
        self.timeout_s = timeout_s
        self._deadline = started_at + timeout_s
        self.started = False
        self.finished = False
        self.attempt = 0
        self._next_index = 0

    def _pop(self) -> dict:
        remaining = self._deadline - time.monotonic()
        item = None
        if remaining > 0:
            # BLPOP takes fractional seconds; at least 10 ms so a tiny remainder still waits.
            item = self._client.blpop([self.key], timeout=max(remaining, 0.01))
        if item is None:
            seconds = f"{self.timeout_s:g}"
            if self.started:
                raise WorkerTimeout(f"the worker did not finish within {seconds} s", started=True)
            raise WorkerTimeout(f"no worker answered within {seconds} s", started=False)
        return json.loads(item[1])

    def events(self) -> Iterator[dict]:
        """Yield start, piece and done events in order; raise on an error or a timeout.

        A redelivered task (its first worker died) starts again from piece 0; generation
        is deterministic for the same request, so pieces already passed on are skipped.
        """
        while True:
            event = self._pop()
            kind = event.get("type")
            if kind == "start":
                self.attempt = max(self.attempt, int(event.get("attempt", 1)))
                if not self.started:
                    self.started = True
                    yield event
            elif kind == "piece":
                index = int(event["index"])
                if index == self._next_index:
                    self._next_index += 1
                    yield event
            elif kind == "done":
                self.finished = True
                yield event
                return
            elif kind == "error":
                self.finished = True
                raise GenerationFailed(str(event.get("code", "internal")), str(event.get("message", "")))

    def wait_started(self) -> dict:
        """Block until a worker has taken the request; return its start event."""
        for event in self.events():
            if event["type"] == "start":
                return event
            break
        raise GenerationFailed("protocol", "the worker replied out of order")

    def result(self) -> GenerationReply:
        """Block until the generation is done and return it."""
        pieces: list[str] = []
        for event in self.events():
            if event["type"] == "piece":
                pieces.append(event["text"])
            elif event["type"] == "done":
                return reply_from_done(event, "".join(pieces), self.attempt)
        raise GenerationFailed("protocol", "the reply ended without a result")

    def close(self) -> None:
        """Drop the reply list; tell a still-running worker to stop."""
        if self.finished:
            return  # the last event was popped, and Redis drops an empty list by itself
        try:
            _, _, cancel_key = _keys(self.request_id)
            pipe = self._client.pipeline(transaction=False)
            pipe.delete(self.key)
            pipe.set(cancel_key, b"1", ex=max(int(self.timeout_s * 2), 1))
            pipe.execute()
        except redis.RedisError:  # the keys expire on their own
            logger.warning("could not clean up the reply channel of request %s", self.request_id)


def reply_from_done(event: Mapping, streamed_text: str, attempt: int) -> GenerationReply:
    """Return the reply a done event describes (the text is in it unless it was streamed)."""
    return GenerationReply(
        text=event.get("text") if event.get("text") is not None else streamed_text,
        prompt_tokens=int(event.get("prompt_tokens", 0)),
        completion_tokens=int(event.get("completion_tokens", 0)),
        finish_reason=str(event.get("finish_reason", "")),
        attempt=int(event.get("attempt", attempt)),
        worker_timings={k: float(v) for k, v in (event.get("timings") or {}).items()},
        adapter=event.get("adapter"),
    )


def generation_dispatch(
    *,
    target: ServingTarget,
    request_id: str,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    stream: bool = False,
    timeout_s: float | None = None,
) -> ReplyChannel:
    """Send a generation to the target environment's workers; return the channel to wait on.

    A target with ``split_model`` runs through that model's active split plan instead; its
    channel (``inference.split.services.SplitChannel``) coordinates the nodes when read.
    """
    timeout_s = float(timeout_s if timeout_s is not None else settings.INFERENCE_TIMEOUT_S)
    if target.split_model:
        from inference.split.services import SplitChannel

        return SplitChannel(
            model_slug=target.split_model,
            request_id=request_id,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            adapter=target.adapter_label,
            stream=stream,
        )
    started = time.monotonic()
    client = redis_client(reply_redis_url(target.private_path))
    # 192 random bits: only the gateway and the worker that takes the task know the key.
    reply_key = f"sy:reply:{secrets.token_urlsafe(24)}"
    task_publish(
        private_app if target.private_path else public_app,
        client,
        queue=target.queue,
        kwargs={
            "request_id": request_id,
            "reply_key": reply_key,
            "model_dir": target.model_dir,
            "prompt": prompt,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "stream": stream,
            "sent_unix": time.time(),
            "deadline_unix": time.time() + timeout_s,
            "ttl_s": reply_ttl_s(timeout_s),
            # Only when set, so a request without an adapter reads exactly as before.
            **(
                {"adapter_dir": target.adapter_dir, "adapter_label": target.adapter_label}
                if target.adapter_dir
                else {}
            ),
        },
        # A message nobody took before the gateway gave up is dropped unread.
        expires_s=timeout_s,
    )
    return ReplyChannel(client, reply_key, request_id, timeout_s, started)


def task_publish(app: Celery, client: redis.Redis, *, queue: str, kwargs: dict, expires_s: float) -> str:
    """Put a ``generate_text`` message on an environment queue with one LPUSH; return the task id.

    The message is the one ``app.send_task`` would send (Celery's own protocol-2 headers and
    body from ``app.amqp.as_task_v2``, in the envelope kombu's Redis transport reads), minus
    the per-call producer, queue declaration and client set-up that make ``send_task`` cost
    about a millisecond of CPU. ``client`` must be the Redis behind ``app``'s broker (the
    reply path's Redis is). The printable arguments are redacted and no result is stored.
    """
    task_id = str(uuid.uuid4())
    message = app.amqp.as_task_v2(
        task_id,
        GENERATE_TASK,
        kwargs=kwargs,
        expires=expires_s,
        argsrepr=REDACTED_ARGS,
        kwargsrepr=REDACTED_KWARGS,
        ignore_result=True,
    )
    body = json.dumps(message.body).encode()
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": message.headers,
        "properties": {
            **message.properties,
            "reply_to": app.thread_oid,
            "argsrepr": REDACTED_ARGS,
            "kwargsrepr": REDACTED_KWARGS,
            "delivery_mode": 2,
            "expiration": str(int(expires_s * 1000)),
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    client.lpush(queue, json.dumps(envelope))
    return task_id


def reply_ttl_s(timeout_s: float) -> int:
    """Return how long reply keys live: twice the wait, so a late reply still expires."""
    return max(int(timeout_s * 2), 2)


# --- the worker's side -------------------------------------------------------------------


def _push(client: redis.Redis, key: str, ttl_s: int, *events: dict, extra: tuple = ()) -> None:
    pipe = client.pipeline(transaction=True)
    for event in events:
        pipe.rpush(key, json.dumps(event, separators=(",", ":")))
    pipe.expire(key, ttl_s)
    for command in extra:
        command(pipe)
    pipe.execute()


def generation_serve(
    *,
    reply_url: str,
    request_id: str,
    reply_key: str,
    model_dir: str,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    stream: bool,
    deadline_unix: float,
    ttl_s: int,
    sent_unix: float = 0.0,
    adapter_dir: str | None = None,
    adapter_label: str | None = None,
) -> str:
    """Generate on this worker and push the reply; return a one-word outcome (no text).

    Idempotent per request id: a request whose reply was already pushed (the task was
    redelivered after its worker died between replying and acknowledging) is skipped, and
    a redelivered request that had not finished is generated again from the start.
    """
    from inference import runtime

    received_unix = time.time()
    if received_unix > deadline_unix:
        return "expired"
    client = redis_client(reply_url)
    attempts_key, done_key, cancel_key = _keys(request_id)
    pipe = client.pipeline(transaction=True)
    pipe.exists(done_key)
    pipe.incr(attempts_key)
    pipe.expire(attempts_key, ttl_s)
    already_done, attempt, _ = pipe.execute()
    if already_done:
        return "duplicate"
    attempt = int(attempt)

    def fail(code: str, message: str) -> str:
        _push(client, reply_key, ttl_s, {"type": "error", "code": code, "message": message})
        return code

    try:
        loaded = runtime.get_model(model_dir)
    except runtime.ModelLoadError:
        logger.error("request %s: model at %s could not be loaded", request_id, model_dir)
        return fail("model_unavailable", "the model could not be loaded on the worker")
    adapter = None
    if adapter_dir:
        from inference import adaptation

        try:
            # Attached to the warm model once, then reused: no reload of the base weights.
            adapter = adaptation.adapter_for_model(loaded.model, model_dir, adapter_dir)
        except (adaptation.AdaptationError, OSError):
            logger.error("request %s: adapter %s could not be loaded", request_id, adapter_label)
            return fail("adapter_unavailable", "the adapter could not be loaded on the worker")
        if adapter.secured and reply_url != settings.SECURED_REDIS_URL:
            # A secured adapter learnt from secured data: never served off the private path.
            return fail("adapter_not_allowed", "a secured adapter is served by secured variants only")
    started = time.perf_counter()
    try:
        prompt_ids, sampling = runtime.prepare_request(
            loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
    except runtime.InvalidRequest as exc:
        # The runtime's messages name sizes and limits, never the prompt's text.
        return fail("invalid_request", str(exc))
    # Text pieces are only decoded when they are streamed back.
    pieces = runtime.TokenStream(loaded, prompt_ids, max_new_tokens, sampling, True, emit_pieces=stream)
    if stream:
        # The gateway holds back the HTTP status of a stream until a worker has taken it; a
        # single reply needs no such signal (one wake-up of the gateway fewer).
        _push(client, reply_key, ttl_s, {"type": "start", "attempt": attempt, "received_unix": received_unix})
    applied = contextlib.nullcontext()
    if adapter is not None:
        from inference.adaptation import adapters_applied

        # A context variable, not a model-wide switch: other threads' requests are unaffected.
        applied = adapters_applied(adapter)
    try:
        with applied:
            for index, piece in enumerate(pieces):
                if stream:
                    _push(client, reply_key, ttl_s, {"type": "piece", "index": index, "text": piece})
                if index % CANCEL_CHECK_EVERY == CANCEL_CHECK_EVERY - 1 and (
                    time.time() > deadline_unix or client.exists(cancel_key)
                ):
                    logger.info("request %s: stopped, nobody waits for it any more", request_id)
                    return "cancelled"
    except Exception as exc:  # noqa: BLE001 - the message could quote the input; report the type only
        logger.error("request %s: generation failed with %s", request_id, type(exc).__name__)
        return fail("generation_failed", f"generation failed on the worker ({type(exc).__name__})")
    result = pieces.result
    assert result is not None
    model_ms = (time.perf_counter() - started) * 1000.0
    done = {
        "type": "done",
        "attempt": attempt,
        "text": None if stream else result.text,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "finish_reason": result.finish_reason,
        "adapter": adapter_label if adapter is not None else None,
        "timings": {
            "model_ms": round(model_ms, 3),
            "prefill_ms": result.timings.prefill_ms,
            "decode_ms_per_token": result.timings.decode_ms_per_token,
            "queue_ms": round(max(received_unix - sent_unix, 0.0) * 1000.0, 3),
        },
    }
    _push(client, reply_key, ttl_s, done, extra=(lambda p: p.set(done_key, b"1", ex=ttl_s),))
    return "done"


# --- running workers ---------------------------------------------------------------------


def worker_argv(
    *,
    queue: str,
    private_path: bool,
    hostname: str | None = None,
    concurrency: int = 1,
    pool: str = "prefork",
    loglevel: str = "INFO",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """Return the command line of a worker serving one environment queue on the right broker."""
    app = "inference.serving:private_app" if private_path else "console"
    return [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "-Q", queue,
        "-n", hostname or f"{queue}@%h",
        "-c", str(concurrency),
        "-P", pool,
        "--loglevel", loglevel,
        *extra,
    ]  # fmt: skip


@contextmanager
def running_worker(
    *,
    queue: str,
    private_path: bool,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path,
    concurrency: int = 1,
    pool: str = "prefork",
    start_timeout_s: float = 90.0,
    hostname: str | None = None,
) -> Iterator[subprocess.Popen]:
    """Run a worker process for the block; wait until it answers a ping on its broker."""

    name = hostname or f"{queue}-{uuid.uuid4().hex[:8]}@localhost"
    argv = worker_argv(
        queue=queue,
        private_path=private_path,
        hostname=name,
        concurrency=concurrency,
        pool=pool,
        extra=("--without-gossip", "--without-mingle"),
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    app = private_app if private_path else public_app
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early: {log_path.read_text()[-2000:]}")
            if app.control.ping(destination=[name], timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not answer within {start_timeout_s:g} s")
        process.worker_name = name  # type: ignore[attr-defined]
        process.log_path = log_path  # type: ignore[attr-defined]
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
