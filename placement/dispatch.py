"""Sending control tasks to an environment's own workers, over the broker that reaches them.

An environment reached over the private network path has its workers on the private broker
(``SECURED_REDIS_URL``); the others on the ordinary one. ``inference.serving.celery_app_for``
knows which; every placement and telemetry task bound for ``env.<slug>`` goes through here.
"""

from __future__ import annotations

from celery.result import AsyncResult


def send_to_environment(environment, task, args: list, *, expires: float | None = None) -> AsyncResult:
    """Queue ``task(*args)`` on the environment's queue; return its result handle."""
    from inference.serving import celery_app_for

    app = celery_app_for(environment)
    return app.send_task(task.name, args=args, queue=environment.queue_name, expires=expires)
