"""Fixtures for the placement-loop tests: a tiny real model, trained placement models, the
Example 1 topology with per-session queue names, and real worker processes.

Built artifacts are kept under ``var/test-cache/`` keyed on a hash of the code that makes
them, so a second run skips the builds.
"""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from console.testing import cached_build, source_hash

# Queues are env.<slug>: a per-session suffix keeps another session's workers (a developer's
# `make run`, a parallel test run on the same Redis) from taking this session's tasks.
SESSION_SUFFIX = uuid.uuid4().hex[:6]

TINY_MODEL_BUILD = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 4,
    "num_layers": 2,
    "vocab_size": 768,
    "corpus_max_chars": 200_000,
    "max_position_embeddings": 256,
    "warmup_steps": 5,
    "eval_batches": 1,
    "num_threads": 1,
}
TINY_MODEL_STEPS = 8
# Rows of the profiling run the test models are trained on (the product default is larger).
TEST_PROFILING_ROWS = 5000


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Return a tiny real Llama model built by the project's builder."""
    from inference import modelbuild

    key = source_hash(
        [Path(modelbuild.__file__)], repr(sorted(TINY_MODEL_BUILD.items())) + str(TINY_MODEL_STEPS)
    )

    def build(out: Path) -> None:
        modelbuild.build_default_model(out / "model", max_steps=TINY_MODEL_STEPS, seed=0, **TINY_MODEL_BUILD)

    return cached_build("placement-model", key, build, make_dir=True) / "model"


@pytest.fixture(scope="session")
def placement_artifacts() -> dict[str, Path]:
    """Return placement model artifacts (both objectives) trained on the profiling run."""
    import placement.features
    import placement.model
    import placement.simulator
    from placement.features import DEFAULT_FEATURE_KEYS, feature_matrix
    from placement.model import fit, target_scale
    from placement.simulator import profiling_samples

    sources = [Path(m.__file__) for m in (placement.features, placement.model, placement.simulator)]
    key = source_hash(sources, str(TEST_PROFILING_ROWS))

    def build(out: Path) -> None:
        keys = list(DEFAULT_FEATURE_KEYS)
        for objective, seed in (("latency", 31), ("completion_time", 32)):
            pairs, targets = profiling_samples(seed, objective=objective, rows=TEST_PROFILING_ROWS)
            model, _ = fit(
                feature_matrix(pairs, keys),
                targets,
                objective=objective,
                feature_keys=keys,
                scale=target_scale([w for w, _ in pairs], objective),
                seed=seed,
            )
            model.save(out / f"{objective}.joblib")

    directory = cached_build("placement-models", key, build, make_dir=True)
    return {objective: directory / f"{objective}.joblib" for objective in ("latency", "completion_time")}


@pytest.fixture
def placement_models(db, placement_artifacts):
    """Register the trained artifacts as ready model versions (v1 of each objective)."""
    from placement.features import DEFAULT_FEATURE_KEYS
    from placement.models import PlacementModelVersion

    versions = {}
    for objective, path in placement_artifacts.items():
        target = Path(settings.ARTIFACT_DIR) / "placement" / f"test-{SESSION_SUFFIX}-{objective}.joblib"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(path, target)
        versions[objective] = PlacementModelVersion.objects.create(
            objective=objective,
            version=1,
            state=PlacementModelVersion.State.READY,
            progress=1.0,
            artifact_path=str(target.relative_to(settings.ARTIFACT_DIR)),
            feature_keys=list(DEFAULT_FEATURE_KEYS),
            unit="ms" if objective == "latency" else "s",
            held_out_mae=1.0,
            held_out_r2=0.9,
        )
    return versions


@pytest.fixture
def topology(db, tiny_model_dir):
    """Load the demo topology (Example 1), with session-unique slugs and the tiny model."""
    from types import SimpleNamespace

    from placement.demo import load_demo
    from placement.models import AIModel, FrontEndDevice, ProductionEnvironment

    load_demo()
    environments = {}
    for environment in ProductionEnvironment.objects.all():
        base = environment.slug
        environment.slug = f"{base}-{SESSION_SUFFIX}"
        environment.save(update_fields=["slug"])
        environments[base] = environment
    AIModel.objects.filter(slug="default").update(
        directory=str(tiny_model_dir), parameter_count=2_000_000_000
    )
    cache.clear()
    return SimpleNamespace(
        environments=environments,
        devices={d.slug: d for d in FrontEndDevice.objects.all()},
        model=AIModel.objects.get(slug="default"),
    )


@contextmanager
def environment_worker(environment, *, concurrency: int = 1) -> Iterator:
    """Run a real worker for one environment's queue, on the broker that reaches it."""
    from console.testing import subprocess_env
    from inference.serving import running_worker, uses_private_path

    with running_worker(
        queue=environment.queue_name,
        private_path=uses_private_path(environment),
        env=subprocess_env(SWITCHYARD_TORCH_THREADS="1"),
        log_path=Path(settings.VAR_DIR) / "log" / f"test-{environment.slug}-{uuid.uuid4().hex[:6]}.log",
        cwd=Path(settings.BASE_DIR),
        concurrency=concurrency,
    ) as process:
        yield process


@contextmanager
def control_worker(**extra_env: str) -> Iterator:
    """Run a real worker for this session's control queue (extra_env: settings such as timeouts)."""
    from console.testing import celery_worker

    with celery_worker([control_queue()], SWITCHYARD_TORCH_THREADS="1", **extra_env) as process:
        yield process


def control_queue() -> str:
    """Return this session's control queue (control tasks are routed there in the tests)."""
    return f"control-{SESSION_SUFFIX}"


@pytest.fixture
def session_control_queue():
    """Route this test's control tasks (migrations, training) to the session's own queue."""
    from console.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = control_queue()
    yield control_queue()
    app.conf.task_default_queue = previous


@contextmanager
def workers(
    *environments, control: bool = False, start_timeout_s: float = 120.0, **extra_env: str
) -> Iterator[dict]:
    """Run real workers for environments (and this session's control queue), started in parallel.

    Yields {environment slug or "control": process}. Each environment's worker listens on the
    broker that reaches it (private-path environments on the private one).
    """
    import subprocess
    import time

    from console.celery import app as public_app
    from console.testing import subprocess_env
    from inference.serving import private_app, uses_private_path, worker_argv

    specs = [(e.slug, e.queue_name, uses_private_path(e)) for e in environments]
    if control:
        specs.append(("control", control_queue(), False))
    env = subprocess_env(SWITCHYARD_TORCH_THREADS="1", **extra_env)
    processes: dict[str, subprocess.Popen] = {}
    names: dict[str, tuple[str, bool]] = {}
    try:
        for key, queue, private in specs:
            name = f"{queue}-{uuid.uuid4().hex[:6]}@localhost"
            log_path = Path(settings.VAR_DIR) / "log" / f"test-{name.split('@')[0]}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            argv = worker_argv(
                queue=queue,
                private_path=private,
                hostname=name,
                extra=("--without-gossip", "--without-mingle"),
            )
            with open(log_path, "wb") as log:
                processes[key] = subprocess.Popen(
                    argv,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes[key].log_path = log_path  # type: ignore[attr-defined]
            processes[key].worker_name = name  # type: ignore[attr-defined]
            names[key] = (name, private)
        deadline = time.monotonic() + start_timeout_s
        waiting = dict(names)
        while waiting:
            for key, (name, private) in list(waiting.items()):
                if processes[key].poll() is not None:
                    raise RuntimeError(f"worker {name} exited: {processes[key].log_path.read_text()[-2000:]}")
                app = private_app if private else public_app
                if app.control.ping(destination=[name], timeout=0.5):
                    del waiting[key]
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"workers did not answer within {start_timeout_s:g} s: {sorted(waiting)}")
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def kill_worker(process) -> None:
    """Kill a worker process group at once (SIGKILL: no warm shutdown, as in a crash)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_for(condition, *, timeout_s: float = 120.0, interval_s: float = 0.2, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; fail the test after the timeout."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
