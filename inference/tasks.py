"""Inference tasks, run by each production environment's workers (queue ``env.<slug>``)."""

from __future__ import annotations

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_init, worker_process_init
from django.conf import settings

from inference.serving import PRIVATE_APP_NAME, generation_serve, reply_redis_url

logger = logging.getLogger(__name__)

# A generation nobody waits for any more is pointless: bound it a little past the gateway's wait.
_SOFT_LIMIT_S = int(settings.INFERENCE_TIMEOUT_S) + 30


@shared_task(
    name="inference.tasks.generate_text",
    bind=True,
    ignore_result=True,
    acks_late=True,
    soft_time_limit=_SOFT_LIMIT_S,
    time_limit=_SOFT_LIMIT_S + 15,
)
def generate_text(self, **request) -> str:
    """Generate a reply and push it to the request's private reply list; return the outcome word.

    The reply goes to the Redis behind the broker that delivered this task, so a request
    that came over the private path is answered over the private path. The return value
    is logged by Celery, so it is a single word and never any text.
    """
    private_path = self.app.main == PRIVATE_APP_NAME
    return generation_serve(reply_url=reply_redis_url(private_path), **request)


@worker_init.connect
def _import_model_stack(**_) -> None:
    """Import torch and transformers once in the worker's main process, before it forks.

    Pool processes inherit the imported modules and report ready at once; importing in
    each of them takes seconds, longer than Celery waits for a new pool process under
    load, and a replacement for a crashed one would then be killed in a loop.
    """
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401


@worker_process_init.connect
def _warm_up(**_) -> None:
    """Set torch's thread count and load SWITCHYARD_PRELOAD_MODELS in the background.

    The load runs on a thread so the pool process is ready immediately; a request for the
    same model meanwhile waits on the runtime's cache lock instead of loading it twice.
    """
    threads = int(os.environ.get("SWITCHYARD_TORCH_THREADS", "0") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    directories = [d.strip() for d in os.environ.get("SWITCHYARD_PRELOAD_MODELS", "").split(",") if d.strip()]
    if directories:
        threading.Thread(target=_preload, args=(directories,), name="preload-models", daemon=True).start()


def _preload(directories: list[str]) -> None:
    from inference import runtime

    for directory in directories:
        try:
            runtime.get_model(directory)
        except runtime.ModelLoadError:
            logger.warning("could not preload the model at %s", directory)


# --- model adaptation and training workloads (inference.adaptation_services) ---------------


# A run may last hours; it checkpoints every few steps and renews a lease, so a lost worker
# costs at most the steps since its last checkpoint. acks_late + the claim in the service
# make a redelivered message harmless.
@shared_task(
    name="inference.tasks.adaptation_run",
    bind=True,
    acks_late=True,
    soft_time_limit=24 * 3600,
    time_limit=24 * 3600 + 60,
)
def adaptation_run(self, job_id: int, environment_id: int) -> str:
    """On an environment's queue: run or resume an adaptation or training job; return the outcome."""
    from inference.adaptation_services import adaptation_job_run

    runner = f"{self.request.hostname or 'local'}:{os.getpid()}:{self.request.id}"
    return adaptation_job_run(job_id=job_id, environment_id=environment_id, runner=runner)


@shared_task(name="inference.tasks.adaptation_jobs_recover", soft_time_limit=60, time_limit=90)
def adaptation_jobs_recover() -> list[int]:
    """Beat: re-queue jobs whose worker died; they resume from their newest checkpoint."""
    from inference.adaptation_services import adaptation_jobs_recover as recover

    return recover()


@shared_task(name="inference.tasks.feedback_training_schedule", soft_time_limit=120, time_limit=150)
def feedback_training_schedule() -> list[int]:
    """Beat: start a training workload per model with enough new public feedback (claim 2)."""
    from inference.adaptation_services import feedback_training_schedule as schedule

    return schedule()


# Split inference's control-plane tasks, registered through this module's autodiscovery.
from inference.split.tasks import *  # noqa: F401,F403,E402
