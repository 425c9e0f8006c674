"""Placement tasks. Each takes ids and plain values and calls one service."""

from __future__ import annotations

from celery import shared_task

from placement.models import ProductionEnvironment
from placement.services import environment_record_heartbeat


@shared_task(soft_time_limit=30, time_limit=40)
def environment_heartbeat(environment_id: int) -> str:
    """Run on an environment's own queue: record that one of its workers answered."""
    environment_record_heartbeat(environment_id=environment_id)
    return ProductionEnvironment.objects.values_list("slug", flat=True).get(pk=environment_id)


@shared_task(soft_time_limit=30, time_limit=40)
def environments_heartbeat() -> int:
    """Fan a heartbeat out to every active environment's queue; a silent one shows as stale."""
    from placement.dispatch import send_to_environment

    environments = ProductionEnvironment.objects.exclude(status=ProductionEnvironment.Status.OFFLINE)
    count = 0
    for environment in environments:
        # Over the broker that reaches the environment (private-path ones listen on the private one).
        send_to_environment(environment, environment_heartbeat, [environment.id], expires=60)
        count += 1
    return count


# -- the placement loop ----------------------------------------------------------------------
# Control tasks run on the "control" queue (the default); workload_load, workload_unload and
# reference_training_run are sent to an environment's own queue "env.<slug>".


@shared_task(soft_time_limit=300, time_limit=330)
def workloads_evaluate() -> dict:
    """Beat: run FIG. 2.1/2.2/4.1/4.2 steps 204-210 for every workload whose window closed."""
    from placement.loop import workloads_evaluate as evaluate_all

    return evaluate_all()


@shared_task(soft_time_limit=120, time_limit=150)
def workload_evaluate(workload_id: int, force: bool = False) -> str:
    """Run steps 204-210 for one workload now (the console's "evaluate now")."""
    from placement.loop import workload_evaluate as evaluate

    return evaluate(workload_id=workload_id, force=force).outcome


@shared_task(bind=True, soft_time_limit=900, time_limit=960)
def migration_run(self, migration_id: int) -> str:
    """Run or resume a migration. Idempotent: a duplicate delivery finds it claimed or finished."""
    from placement.migration import migration_execute

    runner = f"{self.request.hostname or 'local'}:{self.request.id}"
    return migration_execute(migration_id=migration_id, runner=runner)


@shared_task(soft_time_limit=60, time_limit=90)
def migrations_recover() -> dict:
    """Beat: resume migrations whose runner died, or roll them back after too many attempts."""
    from placement.migration import migrations_recover as recover

    return recover()


@shared_task(soft_time_limit=240, time_limit=270)
def workload_load(workload_id: int) -> dict:
    """On an environment's queue: load the workload's model into this worker (warm it)."""
    from placement.migration import workload_load_here

    return workload_load_here(workload_id=workload_id)


@shared_task(soft_time_limit=120, time_limit=150)
def workload_unload(workload_id: int, environment_id: int) -> dict:
    """On an environment's queue, behind the requests routed there before a switch: unload."""
    from placement.migration import workload_unload_here

    return workload_unload_here(workload_id=workload_id, environment_id=environment_id)


# A job may run for hours; it checkpoints every few seconds, so a lost worker loses little.
@shared_task(soft_time_limit=24 * 3600, time_limit=24 * 3600 + 60)
def reference_training_run(workload_id: int, environment_id: int, checkpoint: dict | None = None) -> dict:
    """On an environment's queue: run the reference training job from a checkpoint."""
    from placement.reference_job import run_job

    return run_job(workload_id=workload_id, environment_id=environment_id, checkpoint=checkpoint)


@shared_task(soft_time_limit=1800, time_limit=1860)
def placement_model_train(version_id: int) -> str:
    """Train a queued placement model version (the training agent)."""
    from placement.training import model_version_train

    return model_version_train(version_id=version_id).state


@shared_task(soft_time_limit=60, time_limit=90)
def placement_models_retrain(requested_by: str = "schedule") -> list[int]:
    """Beat or admin: queue a new version of both objectives' models."""
    from placement.training import model_version_request

    return [
        model_version_request(objective=objective, requested_by=requested_by).pk
        for objective in ("latency", "completion_time")
    ]
