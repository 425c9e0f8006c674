"""A reference training job that really runs, reports progress, checkpoints and resumes.

It fits a linear model by mini-batch gradient descent (numpy) on an environment's worker,
one step at a time, and reports its progress to the monitoring agent (FIG. 2.2 step 224).
Asked to pause, it writes a checkpoint (weights and step) under ARTIFACT_DIR and stops;
resumed on another environment's worker, it carries on from that step. It is what the demo
and the tests migrate until the model adaptation jobs register their own handlers; a
workload selects it with ``config={"checkpoint_handler": "reference-training"}``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache

from placement.migration import register_checkpoint_handler

HANDLER_KEY = "reference-training"
# How often the job looks at its pause/stop flags, and reports progress.
CHECK_EVERY_STEPS = 10
REPORT_EVERY_S = 0.5
# A periodic checkpoint bounds the work lost if the worker dies without being asked to pause.
CHECKPOINT_EVERY_S = 5.0
# The "running" marker outlives a report interval a few times over.
RUNNING_TTL_S = 10
FEATURES = 256


def _key(workload_id: int, name: str) -> str:
    return f"reference-job:{workload_id}:{name}"


def checkpoint_directory(workload_id: int) -> Path:
    """Return where the workload's checkpoints are written (a directory every host sees)."""
    return Path(settings.ARTIFACT_DIR) / "checkpoints" / f"workload-{workload_id}"


def _save(workload_id: int, step: int, weights: np.ndarray) -> dict:
    directory = checkpoint_directory(workload_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step-{step:08d}.npz"
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, weights=weights, step=step)
    temporary.replace(path)
    return {"path": str(path.relative_to(settings.ARTIFACT_DIR)), "step": step}


def _load(checkpoint: dict | None) -> tuple[int, np.ndarray | None]:
    if not checkpoint or not checkpoint.get("path"):
        return 0, None
    with np.load(Path(settings.ARTIFACT_DIR) / checkpoint["path"]) as data:
        return int(data["step"]), data["weights"].copy()


def latest_checkpoint(workload_id: int) -> dict | None:
    """Return the newest checkpoint on disk, if any."""
    files = sorted(checkpoint_directory(workload_id).glob("step-*.npz"))
    files = [f for f in files if ".tmp" not in f.name]
    if not files:
        return None
    step = int(files[-1].stem.split("-")[1])
    return {"path": str(files[-1].relative_to(settings.ARTIFACT_DIR)), "step": step}


def run_job(*, workload_id: int, environment_id: int, checkpoint: dict | None) -> dict:
    """Run the job here until it finishes, is paused (checkpoint) or stopped."""
    from placement.models import Workload
    from telemetry.services import progress_record

    workload = Workload.objects.get(pk=workload_id)
    config = workload.config or {}
    steps_total = int(config.get("steps_total", 2000))
    batch = max(int(workload.batch_size), 1) * 32
    step, weights = _load(checkpoint)
    rng = np.random.default_rng(workload_id)
    truth = rng.normal(size=FEATURES)
    if weights is None:
        weights = np.zeros(FEATURES)
    cache.set(_key(workload_id, "running"), environment_id, RUNNING_TTL_S)
    started_step, window_started = step, time.perf_counter()
    last_report = last_checkpoint = time.perf_counter()
    while step < steps_total:
        if step % CHECK_EVERY_STEPS == 0:
            if cache.get(_key(workload_id, "pause")):
                saved = _save(workload_id, step, weights)
                cache.delete(_key(workload_id, "running"))
                cache.set(_key(workload_id, "paused"), saved, 3600)
                return {"paused": True, **saved}
            if cache.get(_key(workload_id, "stop")):
                cache.delete(_key(workload_id, "running"))
                return {"stopped": True, "step": step}
        # One step of gradient descent on a fresh batch: real arithmetic, not a sleep.
        inputs = rng.normal(size=(batch, FEATURES))
        targets = inputs @ truth + rng.normal(scale=0.1, size=batch)
        gradient = inputs.T @ (inputs @ weights - targets) / batch
        weights -= 0.01 * gradient
        step += 1
        now = time.perf_counter()
        if now - last_report >= REPORT_EVERY_S or step == steps_total:
            seconds_per_step = (now - window_started) / max(step - started_step, 1)
            progress_record(
                workload_id=workload_id,
                fraction_done=step / steps_total,
                seconds_per_step=seconds_per_step,
                steps_done=step,
                steps_total=steps_total,
                environment_id=environment_id,
            )
            cache.set(_key(workload_id, "running"), environment_id, RUNNING_TTL_S)
            started_step, window_started, last_report = step, now, now
        if now - last_checkpoint >= CHECKPOINT_EVERY_S:
            _save(workload_id, step, weights)
            last_checkpoint = now
    saved = _save(workload_id, step, weights)
    cache.delete(_key(workload_id, "running"))
    Workload.objects.filter(pk=workload_id, environment_id=environment_id).update(
        state=Workload.State.COMPLETED
    )
    return {"completed": True, **saved}


def pause(workload_id: int, environment_id: int) -> dict | None:
    """Ask the running job to checkpoint and stop; return its checkpoint reference."""
    from placement.conf import setting

    cache.delete(_key(workload_id, "paused"))
    if cache.get(_key(workload_id, "running")) is None:
        # Not running (finished, or its worker died): the newest checkpoint on disk is the state.
        return latest_checkpoint(workload_id) or {"path": None, "step": 0}
    cache.set(_key(workload_id, "pause"), 1, 3600)
    deadline = time.monotonic() + float(setting("PLACEMENT_CHECKPOINT_TIMEOUT_S"))
    while time.monotonic() < deadline:
        saved = cache.get(_key(workload_id, "paused"))
        if saved:
            return saved
        time.sleep(0.1)
    cache.delete(_key(workload_id, "pause"))
    raise TimeoutError("the job did not write its checkpoint in time")


def resume(workload_id: int, environment_id: int, checkpoint: dict | None) -> None:
    """Start the job on an environment's worker from a checkpoint (from scratch when None).

    Returns once the job reports running there; raises TimeoutError if no worker of that
    environment starts it in time (the message expires, so it cannot start later either).
    """
    from placement.conf import setting
    from placement.dispatch import send_to_environment
    from placement.models import ProductionEnvironment
    from placement.tasks import reference_training_run

    cache.delete_many([_key(workload_id, "pause"), _key(workload_id, "paused"), _key(workload_id, "stop")])
    environment = ProductionEnvironment.objects.get(pk=environment_id)
    cache.delete(_key(workload_id, "running"))
    timeout_s = float(setting("PLACEMENT_CHECKPOINT_TIMEOUT_S"))
    send_to_environment(
        environment, reference_training_run, [workload_id, environment_id, checkpoint], expires=timeout_s
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cache.get(_key(workload_id, "running")) == environment_id:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no worker of {environment.queue_name} started the job within {timeout_s:.0f} s")


def stop(workload_id: int) -> None:
    """Ask the job to stop at its next check (no checkpoint)."""
    cache.set(_key(workload_id, "stop"), 1, 3600)


def is_running(workload_id: int) -> int | None:
    """Return the environment id the job reports running in, or None."""
    return cache.get(_key(workload_id, "running"))


register_checkpoint_handler(HANDLER_KEY, pause, resume)
