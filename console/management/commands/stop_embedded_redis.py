"""Stop the embedded Redis daemon: ``python manage.py stop_embedded_redis``."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from console.embedded_redis import server_answers, stop_embedded_redis


class Command(BaseCommand):
    help = (
        "Shut down the embedded Redis server under VAR_DIR/redis (it outlives `make run` so queued "
        "tasks survive a restart; its append-only file stays)."
    )

    def handle(self, *args, **options) -> None:
        if not getattr(settings, "EMBEDDED_REDIS", False):
            raise CommandError("REDIS_URL is set: this installation does not use the embedded Redis.")
        directory = settings.EMBEDDED_REDIS_DIR
        socket_path = directory / "redis.sock"
        if not server_answers(socket_path):
            self.stdout.write(f"The embedded Redis on {socket_path} is not running.")
            return
        stop_embedded_redis(directory)
        deadline = time.monotonic() + 10
        while server_answers(socket_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        if server_answers(socket_path):
            raise CommandError(f"The embedded Redis on {socket_path} did not stop within 10 s.")
        self.stdout.write(f"Stopped the embedded Redis on {socket_path}.")
