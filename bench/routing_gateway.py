"""Prompt gateway overhead at a sustained request rate, on loopback.

What runs (all real, as subprocesses of this benchmark, against the configured Redis):

* a scratch database (SQLite in a temporary directory, migrated here) with the demo topology,
  a tiny model built by ``inference.modelbuild``, a sensitivity classifier trained on the
  spot and one API user;
* the web server (gunicorn as ``runstack`` starts it, ``console.webserver``, DEBUG off);
* one worker per variant environment: the public one (2 pool processes) on the public
  broker, the secured one (1 pool process) on the private broker;
* an open-loop load generator (threads over kept-alive ``http.client`` connections) that
  starts requests on a fixed schedule of ``RATE_RPS`` per second, whatever the answers do,
  with at most ``MAX_IN_FLIGHT`` open.

Every request is ``POST /api/v1/prompts`` with ``max_new_tokens=1``; 80 % are ordinary
prompts (public variant, a FeedbackExample written) and 20 % sensitive ones (secured
variant, private broker). **Overhead** = client-measured latency minus the model time the
worker reports (tokenising plus the forward pass): HTTP, authentication, throttles,
eligibility, classification, routing, the Celery hop there, the Redis reply hop back and
the database writes.

Figures: ``gateway.overhead_p50_ms``/``_p99_ms`` under the load, ``gateway.achieved_rps``
(completed requests per second over the run, reported as measured), the unloaded overhead
(one request at a time) for comparison, and per-route medians. When the stack cannot keep
up with ``RATE_RPS``, a second run offers ``SUSTAINED_SHARE`` of the rate it achieved (and
again, up to ``SUSTAINED_TRIES`` runs, while the machine's other load keeps it from keeping
up): ``gateway.sustained_rps`` and the overhead at that rate (``gateway.sustained_overhead_*``).
``gateway.cpu_ms_per_request.*`` is the CPU time each process used per completed request
under the load (psutil, children included), a steadier figure than latency on a shared
machine. Everything shares this machine's cores: the load generator, the web server, the
workers and Redis.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE_RPS = 200
MAX_IN_FLIGHT = 64
SENSITIVE_SHARE = 0.2
# The sustained run offers this share of the achieved rate (below it, queues stay short).
SUSTAINED_SHARE = 0.85
SUSTAINED_TRIES = 3

ORDINARY = [
    "How do I reverse a list in Python without modifying the original?",
    "What is the difference between a process and a thread?",
    "Suggest a name for a bakery that sells sourdough.",
    "Explain what a hash map is in two sentences.",
    "What is the capital of Australia?",
]
SENSITIVE = [
    "My SSN is 536-22-8146, please fill in the tax form for me.",
    "My card number is 4539 1488 0343 6467, exp 04/27, book the flight.",
    "Email me at dana.whitfield@gmail.com, my password is Tr0ub4dor&3.",
]

MODEL_BUILD = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 4,
    "num_layers": 2,
    "vocab_size": 768,
    "corpus_max_chars": 200_000,
    "max_position_embeddings": 256,
    "warmup_steps": 5,
    "eval_batches": 1,
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _scratch_database(scratch: Path):
    """Yield a DATABASE_URL for a throw-away database on the server the settings name.

    PostgreSQL when DATABASE_URL points at one (a database created and dropped here), else
    a SQLite file in the scratch directory. The configured database itself is never used.
    """
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{scratch / 'gateway.sqlite3'}"
        return
    from urllib.parse import urlparse

    import psycopg

    parsed = urlparse(configured)
    name = f"sy_bench_gateway_{secrets.token_hex(4)}"
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bench_env(scratch: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        MODEL_DIR=str(scratch / "models"),
        ARTIFACT_DIR=str(scratch / "artifacts"),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        LOG_LEVEL="WARNING",
        # The load comes from one user: lift the per-user limits out of the way.
        PROMPT_RATE_PER_MINUTE="100000000",
        PROMPT_TOKENS_PER_MINUTE="100000000",
        INFERENCE_TIMEOUT_S="30",
        SWITCHYARD_TORCH_THREADS="1",
        DJANGO_SETTINGS_MODULE="console.settings",
    )
    env.pop("SWITCHYARD_TESTING", None)
    return env


def _prepare(env: dict[str, str]) -> dict:
    """Migrate the scratch database and create the rows; return the token, slugs and model path."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.routing_gateway", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"gateway bench setup failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _setup_rows() -> dict:
    """Run inside the setup subprocess (Django configured for the scratch database)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from inference.modelbuild import build_default_model
    from placement.demo import load_demo
    from placement.models import AIModel, ProductionEnvironment
    from variants.services import sensitivity_model_train

    call_command("migrate", verbosity=0, interactive=False)
    from django.db import connection

    if connection.vendor == "sqlite":
        # Write-ahead logging (it persists in the file): readers no longer wait on a
        # committing writer, and a commit costs one sync instead of several.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    model_dir = Path(settings.MODEL_DIR) / "bench-tiny"
    build_default_model(model_dir, max_steps=10, seed=0, **MODEL_BUILD)
    sensitivity_model_train(seed=0, n_examples=3000)
    load_demo()
    suffix = secrets.token_hex(3)
    slugs = {"secured": f"secured-bench-{suffix}", "public": f"public-bench-{suffix}"}
    for old, new in slugs.items():
        ProductionEnvironment.objects.filter(slug=old).update(slug=new)
    AIModel.objects.filter(slug="default").update(directory=str(model_dir))
    user = get_user_model().objects.create_user(f"bench-{suffix}", password=secrets.token_urlsafe(16))
    token = Token.objects.create(user=user).key
    return {"token": token, "slugs": slugs, "model_dir": str(model_dir)}


def _wait_http(url: str, timeout_s: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"web server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"web server did not answer within {timeout_s:g} s")


PROCESSES: dict[str, int] = {}
WEB: dict[str, object] = {}


def _cpu_seconds() -> dict[str, float]:
    """Return CPU seconds used so far by each stack process and its children."""
    import psutil

    used = {}
    for name, pid in PROCESSES.items():
        try:
            process = psutil.Process(pid)
            total = sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(True)])
        except psutil.Error:
            continue
        used[name] = total
    used["loadgen"] = sum(os.times()[:2])
    return used


def _web_command(port: int) -> tuple[list[str], bool]:
    """Return the web server's command line (the one ``runstack`` uses) and that it keeps alive."""
    from console.webserver import gunicorn_argv

    return gunicorn_argv(f"127.0.0.1:{port}"), True


@contextmanager
def _web_server(env: dict[str, str], scratch: Path):
    port = _free_port()
    log = scratch / "web.log"
    argv, keep_alive = _web_command(port)
    WEB["keep_alive"] = keep_alive
    WEB["server"] = "gunicorn" if keep_alive else "runserver"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PROCESSES["web"] = process.pid
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 60, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def _stack(env: dict[str, str], scratch: Path, info: dict):
    from inference.serving import running_worker

    worker_env = dict(env, SWITCHYARD_PRELOAD_MODELS=info["model_dir"])
    with ExitStack() as stack:
        PROCESSES["worker-public"] = stack.enter_context(
            running_worker(
                queue=f"env.{info['slugs']['public']}",
                private_path=False,
                env=worker_env,
                log_path=scratch / "worker-public.log",
                cwd=ROOT,
                concurrency=2,
            )
        ).pid
        PROCESSES["worker-secured"] = stack.enter_context(
            running_worker(
                queue=f"env.{info['slugs']['secured']}",
                private_path=True,
                env=worker_env,
                log_path=scratch / "worker-secured.log",
                cwd=ROOT,
                concurrency=1,
            )
        ).pid
        yield stack.enter_context(_web_server(env, scratch))


def _load(base_url: str, token: str, *, count: int, rate_rps: float | None) -> dict:
    """Send ``count`` requests, on a fixed schedule when ``rate_rps`` is set, else one at a time.

    Open loop: a scheduler releases request i at ``start + i / rate_rps`` into a queue that
    ``MAX_IN_FLIGHT`` sender threads drain, each over its own kept-alive connection
    (``http.client`` sends headers and body in one write). A request that waits for a free
    sender is late; the latency counts from the moment it is sent.
    """
    host, port = base_url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if not WEB.get("keep_alive"):
        headers["Connection"] = "close"
    samples: list[dict] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    pending: queue.Queue[int | None] = queue.Queue()

    def note_error(kind: str) -> None:
        with lock:
            errors[kind] = errors.get(kind, 0) + 1

    def sender() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        while (index := pending.get()) is not None:
            pool = SENSITIVE if index % round(1 / SENSITIVE_SHARE) == 0 else ORDINARY
            body = json.dumps({"prompt": pool[index % len(pool)], "max_new_tokens": 1}).encode()
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/prompts", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                note_error(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            finished = time.perf_counter()
            if response.status != 200:
                note_error(str(response.status))
                continue
            data = json.loads(payload)
            latency_ms = (finished - started) * 1000.0
            model_ms = float(data["timings"].get("model_ms", 0.0))
            sample = {
                "route": data["route"],
                "fail_reason": data.get("fail_reason") or "",
                "latency_ms": latency_ms,
                "model_ms": model_ms,
                "overhead_ms": latency_ms - model_ms,
                "service_ms": float(data["timings"].get("total_ms", 0.0)),
                "queue_ms": float(data["timings"].get("queue_ms", 0.0)),
                "route_ms": float(data["timings"].get("route_ms", 0.0)),
                "finished": finished,
            }
            with lock:
                samples.append(sample)
        connection.close()

    senders = [
        threading.Thread(target=sender, daemon=True) for _ in range(1 if rate_rps is None else MAX_IN_FLIGHT)
    ]
    for thread in senders:
        thread.start()
    started = time.perf_counter()
    for index in range(count):
        if rate_rps is not None:
            delay = started + index / rate_rps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        pending.put(index)
    for _ in senders:
        pending.put(None)
    for thread in senders:
        thread.join()
    elapsed = max((max((s["finished"] for s in samples), default=started) - started), 1e-9)
    return {"samples": samples, "errors": errors, "elapsed_s": elapsed}


def _summary(prefix: str, result: dict) -> dict[str, float | int]:
    samples = result["samples"]
    overhead = [s["overhead_ms"] for s in samples]
    figures: dict[str, float | int] = {
        f"{prefix}overhead_p50_ms": round(_percentile(overhead, 50), 3),
        f"{prefix}overhead_p99_ms": round(_percentile(overhead, 99), 3),
    }
    return figures


def run(quick: bool = False) -> dict[str, float | int | bool | str]:
    duration_s = float(os.environ.get("GATEWAY_BENCH_SECONDS", 5 if quick else 20))
    count = int(RATE_RPS * duration_s)
    scratch = Path(tempfile.mkdtemp(prefix="sy-bench-gateway-"))
    try:
        with _scratch_database(scratch) as database_url:
            return _measure(scratch, database_url, quick=quick, count=count, duration_s=duration_s)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(
    scratch: Path, database_url: str, *, quick: bool, count: int, duration_s: float
) -> dict[str, float | int | bool | str]:
    env = _bench_env(scratch, database_url)
    print("[gateway] preparing the scratch database, model and classifier ...", flush=True)
    info = _prepare(env)
    with _stack(env, scratch, info) as base_url:
        print(f"[gateway] stack up at {base_url}; warming up ...", flush=True)
        _load(base_url, info["token"], count=40, rate_rps=None)
        unloaded = _load(base_url, info["token"], count=100 if quick else 300, rate_rps=None)
        parts = {
            name: round(_percentile([sample[name] for sample in unloaded["samples"]], 50), 2)
            for name in ("latency_ms", "service_ms", "route_ms", "queue_ms", "model_ms")
        }
        print(f"[gateway] unloaded medians: {parts}", flush=True)
        print(f"[gateway] {count} requests at {RATE_RPS} req/s ...", flush=True)
        cpu_before = _cpu_seconds()
        loaded = _load(base_url, info["token"], count=count, rate_rps=RATE_RPS)
        cpu_after = _cpu_seconds()
        per_request = {
            name: round(
                (cpu_after[name] - cpu_before.get(name, 0.0)) / max(len(loaded["samples"]), 1) * 1000, 2
            )
            for name in cpu_after
        }
        print(f"[gateway] CPU ms per request by process: {per_request}", flush=True)
        sustained = None
        achieved = len(loaded["samples"]) / loaded["elapsed_s"]
        # A shared machine's capacity drifts: step down until the offered rate is kept up with.
        for _ in range(SUSTAINED_TRIES if achieved < 0.95 * RATE_RPS else 0):
            rate = max(1.0, round(SUSTAINED_SHARE * achieved, 1))
            sustained_count = int(rate * duration_s)
            print(f"[gateway] sustained run: {sustained_count} requests at {rate} req/s ...", flush=True)
            sustained = _load(base_url, info["token"], count=sustained_count, rate_rps=rate)
            sustained["offered_rps"] = rate
            achieved = len(sustained["samples"]) / sustained["elapsed_s"]
            if achieved >= 0.95 * rate:
                break
    _purge_queues(info["slugs"].values())

    samples = loaded["samples"]
    by_route = {
        route: [s["overhead_ms"] for s in samples if s["route"] == route] for route in ("public", "secured")
    }
    reasons: dict[str, int] = {}
    for sample in samples:
        if sample["fail_reason"]:
            reasons[sample["fail_reason"]] = reasons.get(sample["fail_reason"], 0) + 1
    if reasons:
        print(f"[gateway] fail-closed or fallback routes: {reasons}", flush=True)
    figures: dict[str, float | int | bool | str] = {
        **_summary("gateway.", loaded),
        "gateway.fail_closed": sum(reasons.values()),
        "gateway.target_rps": RATE_RPS,
        "gateway.achieved_rps": round(len(samples) / loaded["elapsed_s"], 1),
        "gateway.requests": count,
        "gateway.errors": sum(loaded["errors"].values()),
        "gateway.latency_p50_ms": round(_percentile([s["latency_ms"] for s in samples], 50), 3),
        "gateway.latency_p99_ms": round(_percentile([s["latency_ms"] for s in samples], 99), 3),
        "gateway.model_p50_ms": round(_percentile([s["model_ms"] for s in samples], 50), 3),
        "gateway.public_overhead_p50_ms": round(_percentile(by_route["public"], 50), 3),
        "gateway.secured_overhead_p50_ms": round(_percentile(by_route["secured"], 50), 3),
        **_summary("gateway.unloaded_", unloaded),
        "gateway.duration_s": duration_s,
        "gateway.web_server": str(WEB.get("server", "")),
        "gateway.database": database_url.split(":", 1)[0],
    }
    for name, value in per_request.items():
        figures[f"gateway.cpu_ms_per_request.{name.replace('-', '_')}"] = value
    if sustained is None:
        figures.update(
            {
                "gateway.sustained_rps": figures["gateway.achieved_rps"],
                "gateway.sustained_overhead_p50_ms": figures["gateway.overhead_p50_ms"],
                "gateway.sustained_overhead_p99_ms": figures["gateway.overhead_p99_ms"],
            }
        )
    else:
        figures.update(
            {
                "gateway.sustained_offered_rps": sustained["offered_rps"],
                "gateway.sustained_rps": round(len(sustained["samples"]) / sustained["elapsed_s"], 1),
                **_summary("gateway.sustained_", sustained),
            }
        )
    if loaded["errors"]:
        figures["gateway.error_kinds"] = json.dumps(loaded["errors"], sort_keys=True)
    figures["gateway.mean_overhead_ms"] = round(statistics.fmean(s["overhead_ms"] for s in samples), 3)
    return figures


def _purge_queues(slugs) -> None:
    import redis
    from django.conf import settings

    for url in (settings.REDIS_URL, settings.SECURED_REDIS_URL):
        client = redis.Redis.from_url(url)
        for slug in slugs:
            keys = list(client.scan_iter(match=f"env.{slug}*"))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        print(json.dumps(_setup_rows()))
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
        import django

        django.setup()
        for key, value in sorted(run(quick="--quick" in sys.argv).items()):
            print(f"{key:<40} {value}")
