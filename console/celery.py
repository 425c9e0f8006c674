"""The Celery application: one queue per production environment (``env.<slug>``) plus ``control``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("switchyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def environment_queue(slug: str) -> str:
    """Return the queue name a production environment's workers consume."""
    return f"env.{slug}"
