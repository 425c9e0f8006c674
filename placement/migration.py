"""Migration of a workload to another environment (FIG. 2.1 step 210 and its siblings).

A migration is a small state machine, every transition recorded in ``MigrationEvent``::

    pending -> loading_target -> switching -> draining -> completed
                     |               |            (drain problems are noted, not fatal)
                     v               v
                   failed        rolled_back

* **Inferencing**: the target environment's worker loads the model (``loading_target``); the
  routing switches (``Workload.environment`` is what the gateway routes by) and the target is
  asked once more to confirm it serves (``switching``); the source worker then drains its
  queue and unloads the model (``draining``): an unload task queued behind the requests that
  were routed there before the switch runs only after they have been served.
* **Training and model adaptation**: the job is paused at the source and writes a checkpoint
  (``loading_target``), the routing switches and the job resumes from the checkpoint on the
  target (``switching``). Jobs plug in through ``register_checkpoint_handler``; a kind
  without a handler moves without a checkpoint and restarts on the target (recorded).

Runners claim a migration with a conditional UPDATE and hold a lease; every transition is
also a conditional UPDATE on (state, runner), so a duplicate or late runner changes nothing.
A runner that dies leaves the lease to expire; ``migrations_recover`` (beat) then resumes the
migration from its recorded state, or rolls it back after too many attempts. Routing is one
column changed in one transaction, so the workload is always wholly at the source or wholly
at the target. Any failure before completion restores the routing to the source.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from placement.conf import setting
from placement.dispatch import send_to_environment
from placement.models import (
    ApprovalDecision,
    Migration,
    MigrationEvent,
    PlacementRecord,
    ProductionEnvironment,
    Recommendation,
    Workload,
)
from placement.signals import workload_moved

logger = logging.getLogger(__name__)

ACTIVE_STATES = [
    Migration.State.PENDING,
    Migration.State.LOADING_TARGET,
    Migration.State.SWITCHING,
    Migration.State.DRAINING,
]
_PROGRESS = {
    Migration.State.PENDING: 0.0,
    Migration.State.LOADING_TARGET: 0.2,
    Migration.State.SWITCHING: 0.55,
    Migration.State.DRAINING: 0.8,
    Migration.State.COMPLETED: 1.0,
    Migration.State.ROLLED_BACK: 1.0,
    Migration.State.FAILED: 1.0,
}


# -- checkpoint handlers (training and adaptation jobs plug in here) -----------------------

PauseFn = Callable[[int, int], dict | None]
ResumeFn = Callable[[int, int, dict | None], None]


@dataclass(frozen=True)
class CheckpointHandler:
    """How to pause a job with a checkpoint and resume it from one.

    ``pause(workload_id, environment_id)`` stops the job running in that environment and
    returns a JSON-able checkpoint reference (a path under ARTIFACT_DIR, a step number);
    ``resume(workload_id, environment_id, checkpoint)`` starts it there from the checkpoint
    (from scratch when the checkpoint is None). Both raise to signal failure.
    """

    pause: PauseFn
    resume: ResumeFn


_handlers: dict[str, CheckpointHandler] = {}


def register_checkpoint_handler(kind: str, pause_fn: PauseFn, resume_fn: ResumeFn) -> None:
    """Register how jobs of a kind (``training``, ``adaptation``, or a name a workload's
    ``config["checkpoint_handler"]`` gives) pause and resume. A later registration replaces
    an earlier one. Call it from an AppConfig.ready() so worker processes have it too."""
    if kind in _handlers:
        logger.info("checkpoint handler for %r replaced", kind)
    _handlers[kind] = CheckpointHandler(pause_fn, resume_fn)


def checkpoint_handler_for(workload: Workload) -> tuple[str, CheckpointHandler | None]:
    """Return the handler key for a workload and the registered handler, if any."""
    key = (workload.config or {}).get("checkpoint_handler") or workload.kind
    return key, _handlers.get(key)


# -- work on an environment's worker --------------------------------------------------------


class MigrationStepError(Exception):
    """A step could not be completed; the migration fails or rolls back."""


class MigrationLost(Exception):
    """Another runner holds the migration now; this one stops without touching it."""


def _call_on_environment(environment: ProductionEnvironment, task, args: list, timeout_s: float) -> dict:
    """Run a task on an environment's queue and wait for its answer (the worker is elsewhere)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    result = send_to_environment(environment, task, args, expires=timeout_s)
    try:
        # The migration runner is on the control queue and the task on the environment's:
        # different workers, so waiting here cannot deadlock.
        return result.get(timeout=timeout_s, disable_sync_subtasks=False, propagate=True)
    except CeleryTimeout as exc:
        result.revoke()
        raise MigrationStepError(
            f"no worker of {environment.queue_name} answered within {timeout_s:.0f} s"
        ) from exc
    except Exception as exc:
        raise MigrationStepError(f"{environment.queue_name}: {exc.__class__.__name__}: {exc}") from exc


def workload_start_on(*, workload_id: int, environment_id: int) -> None:
    """Start a newly placed workload in its environment (FIG. 2.1 step 202's deployment).

    Inferencing: ask the environment's worker to load the model (fire and forget; the first
    request would load it anyway). Jobs: resume from no checkpoint through their handler.
    """
    from placement.tasks import workload_load

    workload = Workload.objects.get(pk=workload_id)
    environment = ProductionEnvironment.objects.get(pk=environment_id)
    if workload.kind == Workload.Kind.INFERENCING:
        send_to_environment(environment, workload_load, [workload_id], expires=600)
        return
    key, handler = checkpoint_handler_for(workload)
    if handler is None:
        logger.info("no checkpoint handler %r: workload %s is placed but not started", key, workload)
        return
    handler.resume(workload_id, environment_id, None)


# Which workloads this worker process has loaded (for the drain step's unload decision).
_loaded_here: set[int] = set()


def workload_load_here(*, workload_id: int) -> dict:
    """Load a workload's model in this worker process (runs on the target environment's queue)."""
    from inference.runtime import get_model

    workload = Workload.objects.select_related("ai_model").get(pk=workload_id)
    started = time.perf_counter()
    loaded = get_model(workload.ai_model.path)
    _loaded_here.add(workload_id)
    return {
        "loaded": True,
        "workload": workload.name,
        "model_dir": str(loaded.model_dir),
        "load_ms": round((time.perf_counter() - started) * 1000.0, 1),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def workload_unload_here(*, workload_id: int, environment_id: int) -> dict:
    """Unload a workload's model from this worker unless another workload here still needs it.

    Runs on the source environment's queue after the routing switched, so it executes only
    once the requests queued before the switch have been served: that is the drain.
    """
    from inference import runtime

    workload = Workload.objects.select_related("ai_model").get(pk=workload_id)
    _loaded_here.discard(workload_id)
    still_needed = (
        Workload.objects.filter(
            environment_id=environment_id, ai_model__directory=workload.ai_model.directory
        )
        .exclude(pk=workload_id)
        .exists()
    )
    if still_needed:
        return {"unloaded": False, "reason": "another workload in this environment uses the same model"}
    forget_one = getattr(runtime, "forget_model", None)
    if forget_one is not None:
        forget_one(workload.ai_model.path)
    elif not Workload.objects.filter(environment_id=environment_id).exclude(pk=workload_id).exists():
        # The runtime can only drop every cached model; do so when nothing else runs here.
        runtime.forget_models()
    else:
        return {"unloaded": False, "reason": "other workloads share this worker's model cache"}
    return {"unloaded": True, "worker": f"{socket.gethostname()}:{os.getpid()}"}


# -- the state machine ----------------------------------------------------------------------


def _lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=float(setting("PLACEMENT_MIGRATION_LEASE_S")))


def migration_claim(*, migration_id: int, runner: str) -> bool:
    """Take the migration for this runner if nobody holds a live lease on it (conditional UPDATE)."""
    now = timezone.now()
    changed = (
        Migration.objects.filter(pk=migration_id, state__in=ACTIVE_STATES)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(claimed_by=runner))
        .update(claimed_by=runner, lease_expires_at=_lease_until(), attempts=F("attempts") + 1)
    )
    return changed == 1


def _note(migration: Migration, detail: str, runner: str) -> None:
    MigrationEvent.objects.create(
        migration=migration,
        from_state=migration.state,
        to_state=migration.state,
        detail=detail,
        runner=runner,
    )
    Migration.objects.filter(pk=migration.pk).update(detail=detail[:300])


def _transition(migration: Migration, to_state: str, runner: str, detail: str, **fields) -> Migration:
    """Move to the next state if this runner still holds the migration; record the event."""
    with transaction.atomic():
        values = {
            "state": to_state,
            "progress": _PROGRESS[to_state],
            "detail": detail[:300],
            "lease_expires_at": _lease_until(),
            **fields,
        }
        changed = Migration.objects.filter(pk=migration.pk, state=migration.state, claimed_by=runner).update(
            **values
        )
        if changed != 1:
            raise MigrationLost(f"migration {migration.pk} is no longer held by {runner}")
        MigrationEvent.objects.create(
            migration=migration, from_state=migration.state, to_state=to_state, detail=detail, runner=runner
        )
    migration.refresh_from_db()
    return migration


def _switch_routing(migration: Migration, runner: str) -> Migration:
    """Point the workload at the target, in one transaction with its record and the event."""
    with transaction.atomic():
        if not Migration.objects.filter(
            pk=migration.pk, claimed_by=runner, state=Migration.State.SWITCHING
        ).exists():
            raise MigrationLost(f"migration {migration.pk} is no longer held by {runner}")
        workload = Workload.objects.select_for_update().get(pk=migration.workload_id)
        target = ProductionEnvironment.objects.get(pk=migration.to_environment_id)
        if workload.handles_secured_data and not target.is_trusted:
            raise MigrationStepError("the target is not trusted and the workload handles secured data")
        if workload.environment_id == migration.from_environment_id:
            workload.environment_id = migration.to_environment_id
            workload.save(update_fields=["environment", "updated_at"])
            workload_moved.send(
                sender=Workload,
                workload=workload,
                from_environment_id=migration.from_environment_id,
                to_environment_id=migration.to_environment_id,
            )
            approval = ApprovalDecision.objects.get(pk=migration.approval_id)
            PlacementRecord.objects.create(
                workload=workload,
                from_environment_id=migration.from_environment_id,
                to_environment_id=migration.to_environment_id,
                decided_by=approval.decided_by_name,
                reason=f"migration {migration.pk}: approved recommendation {migration.recommendation_id}",
                evidence=approval.evidence,
            )
        elif workload.environment_id != migration.to_environment_id:
            raise MigrationStepError("the workload is neither at the source nor at the target")
        Migration.objects.filter(pk=migration.pk).update(
            routing_switched=True, lease_expires_at=_lease_until()
        )
        MigrationEvent.objects.create(
            migration=migration,
            from_state=migration.state,
            to_state=migration.state,
            detail=f"routing switched: new requests go to {target.queue_name}",
            runner=runner,
        )
    migration.refresh_from_db()
    return migration


def _load_target(migration: Migration, runner: str) -> Migration:
    from placement.tasks import workload_load

    workload = migration.workload
    target = migration.to_environment
    if workload.kind == Workload.Kind.INFERENCING:
        answer = _call_on_environment(
            target, workload_load, [workload.pk], float(setting("PLACEMENT_LOAD_TIMEOUT_S"))
        )
        detail = (
            f"model loaded on {target.queue_name} by {answer.get('worker')} in {answer.get('load_ms')} ms"
        )
        return _transition(migration, Migration.State.SWITCHING, runner, detail)
    key, handler = checkpoint_handler_for(workload)
    if migration.checkpoint is not None:
        detail = "checkpoint already taken by an earlier attempt; reusing it"
        return _transition(migration, Migration.State.SWITCHING, runner, detail)
    if handler is None:
        detail = (
            f"no checkpoint handler registered for {key!r}: moving without a checkpoint, "
            "the job restarts on the target"
        )
        return _transition(migration, Migration.State.SWITCHING, runner, detail, checkpoint={"none": True})
    try:
        checkpoint = handler.pause(workload.pk, migration.from_environment_id) or {}
    except Exception as exc:
        raise MigrationStepError(f"pausing the job at the source failed: {exc}") from exc
    detail = f"job paused at the source with checkpoint {checkpoint}"
    return _transition(migration, Migration.State.SWITCHING, runner, detail, checkpoint=checkpoint)


def _start_on_target(migration: Migration, runner: str) -> Migration:
    from placement.tasks import workload_load

    workload = migration.workload
    target = migration.to_environment
    if workload.kind == Workload.Kind.INFERENCING:
        # The target confirms it serves under the new routing; if not, the routing goes back.
        answer = _call_on_environment(
            target, workload_load, [workload.pk], float(setting("PLACEMENT_LOAD_TIMEOUT_S"))
        )
        detail = f"{target.queue_name} serves the workload ({answer.get('worker')})"
    else:
        _, handler = checkpoint_handler_for(workload)
        checkpoint = None if (migration.checkpoint or {}).get("none") else migration.checkpoint
        if handler is not None:
            try:
                handler.resume(workload.pk, target.pk, checkpoint)
            except Exception as exc:
                raise MigrationStepError(f"resuming the job on the target failed: {exc}") from exc
        detail = f"job resumed on {target.queue_name} from {checkpoint or 'the start'}"
    return _transition(migration, Migration.State.DRAINING, runner, detail)


def _drain_source(migration: Migration, runner: str) -> Migration:
    from placement.tasks import workload_unload

    workload = migration.workload
    source = migration.from_environment
    if workload.kind == Workload.Kind.INFERENCING:
        try:
            answer = _call_on_environment(
                source,
                workload_unload,
                [workload.pk, source.pk],
                float(setting("PLACEMENT_DRAIN_TIMEOUT_S")),
            )
            detail = f"source drained; model {'unloaded' if answer.get('unloaded') else 'kept'}"
            if answer.get("reason"):
                detail += f" ({answer['reason']})"
        except MigrationStepError as exc:
            # The workload already serves from the target: a silent source is noted, not undone.
            detail = f"source did not confirm the drain ({exc}); its worker unloads when it returns"
    else:
        detail = "the job stopped at the source when it was paused; nothing to drain"
    return _complete(migration, runner, detail)


def _complete(migration: Migration, runner: str, detail: str) -> Migration:
    with transaction.atomic():
        migration = _transition(
            migration,
            Migration.State.COMPLETED,
            runner,
            detail,
            finished_at=timezone.now(),
            claimed_by="",
            lease_expires_at=None,
        )
        Workload.objects.filter(pk=migration.workload_id).update(
            state=migration.workload_state_before or Workload.State.RUNNING,
            monitoring_started_at=timezone.now(),
            last_evaluated_at=None,
        )
        Recommendation.objects.filter(pk=migration.recommendation_id).update(
            state=Recommendation.State.EXECUTED
        )
        # Evidence gathered before the move says nothing about the new placement.
        Recommendation.objects.filter(
            workload_id=migration.workload_id, state=Recommendation.State.PENDING
        ).update(state=Recommendation.State.SUPERSEDED, decided_at=timezone.now())
    return migration


def migration_abort(*, migration_id: int, runner: str, error: str) -> Migration:
    """Put the routing back at the source and end the migration as rolled back or failed."""
    with transaction.atomic():
        migration = Migration.objects.select_for_update().get(pk=migration_id)
        if migration.is_finished:
            return migration
        held_by_other = migration.claimed_by and migration.claimed_by != runner
        if held_by_other and migration.lease_expires_at and migration.lease_expires_at > timezone.now():
            # Another runner took over (this one's lease had expired): it decides, not us.
            return migration
        workload = Workload.objects.select_for_update().get(pk=migration.workload_id)
        switched = migration.routing_switched or workload.environment_id == migration.to_environment_id
        if workload.environment_id == migration.to_environment_id:
            workload.environment_id = migration.from_environment_id
            workload.save(update_fields=["environment", "updated_at"])
            workload_moved.send(
                sender=Workload,
                workload=workload,
                from_environment_id=migration.to_environment_id,
                to_environment_id=migration.from_environment_id,
            )
            PlacementRecord.objects.create(
                workload=workload,
                from_environment_id=migration.to_environment_id,
                to_environment_id=migration.from_environment_id,
                decided_by=f"migration {migration.pk} rollback",
                reason=f"migration failed: {error}"[:1000],
                evidence={"migration": migration.pk},
            )
        final = Migration.State.ROLLED_BACK if switched else Migration.State.FAILED
        where = "restored to" if switched else "left at"
        Workload.objects.filter(pk=workload.pk).update(
            state=migration.workload_state_before or Workload.State.PLACED,
            monitoring_started_at=timezone.now(),
            last_evaluated_at=None,
        )
        Migration.objects.filter(pk=migration.pk).update(
            state=final,
            progress=1.0,
            error=error,
            detail=("routing restored to the source" if switched else "stopped before the routing changed"),
            routing_switched=False,
            finished_at=timezone.now(),
            claimed_by="",
            lease_expires_at=None,
        )
        MigrationEvent.objects.create(
            migration=migration,
            from_state=migration.state,
            to_state=final,
            detail=f"{error}; routing {where} {migration.from_environment.slug}",
            runner=runner,
        )
        Recommendation.objects.filter(pk=migration.recommendation_id).update(
            state=Recommendation.State.FAILED
        )
    migration.refresh_from_db()
    transaction.on_commit(lambda: _cleanup_after_abort(migration))
    return migration


def _cleanup_after_abort(migration: Migration) -> None:
    """Best effort after a rollback: unload the target, and restart a paused job at the source."""
    from placement.tasks import workload_unload

    workload = migration.workload
    try:
        if workload.kind == Workload.Kind.INFERENCING:
            send_to_environment(
                migration.to_environment,
                workload_unload,
                [workload.pk, migration.to_environment_id],
                expires=600,
            )
            return
        _, handler = checkpoint_handler_for(workload)
        checkpoint = migration.checkpoint
        if handler is not None and checkpoint is not None and not checkpoint.get("none"):
            # The job was paused for the move; it carries on where it was.
            handler.resume(workload.pk, migration.from_environment_id, checkpoint)
            MigrationEvent.objects.create(
                migration=migration,
                from_state=migration.state,
                to_state=migration.state,
                detail=f"job resumed at the source from {checkpoint}",
            )
    except Exception as exc:  # noqa: BLE001 - the rollback itself already happened
        logger.exception("cleanup after migration %s failed", migration.pk)
        MigrationEvent.objects.create(
            migration=migration,
            from_state=migration.state,
            to_state=migration.state,
            detail=f"cleanup failed: {exc}",
        )


def migration_execute(*, migration_id: int, runner: str) -> str:
    """Run (or resume) a migration from its recorded state; return the state it ended in.

    Returns ``not-claimed`` when another runner holds a live lease, ``lost`` when another
    runner took over midway. Safe to call twice: finished migrations are left alone.
    """
    if not migration_claim(migration_id=migration_id, runner=runner):
        return "not-claimed"
    migration = Migration.objects.select_related(
        "workload", "from_environment", "to_environment", "approval"
    ).get(pk=migration_id)
    try:
        if migration.approval.decision != ApprovalDecision.Decision.APPROVE:
            raise MigrationStepError("the approval record does not approve this migration")
        if migration.attempts > 1:
            _note(
                migration,
                f"resumed by {runner} (attempt {migration.attempts}) in state {migration.state}",
                runner,
            )
        if migration.state == Migration.State.PENDING:
            migration = _transition(migration, Migration.State.LOADING_TARGET, runner, "preparing the target")
        if migration.state == Migration.State.LOADING_TARGET:
            migration = _load_target(migration, runner)
        if migration.state == Migration.State.SWITCHING:
            migration = _switch_routing(migration, runner)
            migration = _start_on_target(migration, runner)
        if migration.state == Migration.State.DRAINING:
            migration = _drain_source(migration, runner)
        return migration.state
    except MigrationLost:
        return "lost"
    except Exception as exc:  # noqa: BLE001 - every failure ends in a rollback, never half-moved
        logger.warning("migration %s failed: %s", migration_id, exc)
        return migration_abort(migration_id=migration_id, runner=runner, error=str(exc)[:2000]).state
    finally:
        Migration.objects.filter(pk=migration_id, claimed_by=runner).exclude(state__in=ACTIVE_STATES).update(
            lease_expires_at=None
        )


def migrations_recover(*, now: datetime | None = None, dispatch: bool = True) -> dict[str, list[int]]:
    """Find migrations whose runner's lease expired: resume them, or roll them back after too
    many attempts. Returns the ids resumed and rolled back."""
    from placement.tasks import migration_run

    now = now or timezone.now()
    lease = timedelta(seconds=float(setting("PLACEMENT_MIGRATION_LEASE_S")))
    stuck = Migration.objects.filter(state__in=ACTIVE_STATES).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, updated_at__lt=now - lease)
    )
    resumed: list[int] = []
    rolled_back: list[int] = []
    for migration in stuck:
        if migration.attempts >= int(setting("PLACEMENT_MIGRATION_MAX_ATTEMPTS")):
            runner = f"recovery:{socket.gethostname()}:{os.getpid()}"
            if migration_claim(migration_id=migration.pk, runner=runner):
                migration_abort(
                    migration_id=migration.pk,
                    runner=runner,
                    error=f"runner lost {migration.attempts} times (last state {migration.state})",
                )
                rolled_back.append(migration.pk)
            continue
        MigrationEvent.objects.create(
            migration=migration,
            from_state=migration.state,
            to_state=migration.state,
            detail=f"runner {migration.claimed_by or '(none)'} lost its lease; resuming",
        )
        if dispatch:
            migration_run.delay(migration.pk)
        resumed.append(migration.pk)
    return {"resumed": resumed, "rolled_back": rolled_back}


def migration_progress(migration: Migration) -> dict:
    """Return the migration's state and events as plain JSON (the console polls it)."""
    return {
        "id": migration.pk,
        "workload": migration.workload.name,
        "from": migration.from_environment.slug,
        "to": migration.to_environment.slug,
        "state": migration.state,
        "state_display": migration.get_state_display(),
        "progress": migration.progress,
        "detail": migration.detail,
        "finished": migration.is_finished,
        "routing": migration.workload.environment.slug if migration.workload.environment_id else None,
        "error": migration.error,
        "events": [
            {"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "detail": e.detail}
            for e in migration.events.all()
        ],
    }
