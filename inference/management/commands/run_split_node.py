"""Run a split-inference node: ``python manage.py run_split_node --node <name>``."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

# How often the node's row in the database is refreshed; liveness itself is the Redis
# heartbeat key, this is for the console and the planner's utilisation.
DB_HEARTBEAT_S = 5.0


class Command(BaseCommand):
    help = "Serve split-inference partitions for the node NAME from the data-plane Redis."

    def add_arguments(self, parser):
        parser.add_argument("--node", required=True, help="Node name (its inbox is split:inbox:<name>).")
        parser.add_argument("--environment", default=None, help="Slug of its production environment.")
        parser.add_argument("--trust", choices=["environment", "trusted", "untrusted"], default=None)
        parser.add_argument("--memory-bytes", type=int, default=None)
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("SWITCHYARD_TORCH_THREADS", "0") or 0) or None,
            help="torch threads (default SWITCHYARD_TORCH_THREADS, else torch's own).",
        )
        parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present).")

    def handle(self, *args, **options):
        from inference.split.node import run_node
        from inference.split.services import split_node_heartbeat, split_node_register

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        name = options["node"]
        node = split_node_register(
            name=name,
            environment_slug=options["environment"],
            trust=options["trust"],
            memory_bytes=options["memory_bytes"],
        )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        last = [time.monotonic()]

        def on_idle() -> None:
            if time.monotonic() - last[0] >= DB_HEARTBEAT_S:
                last[0] = time.monotonic()
                close_old_connections()
                split_node_heartbeat(name=name, utilisation=0.0)

        self.stdout.write(f"split node {name} (trusted={node.is_trusted}) on {settings.DATAPLANE_REDIS_URL}")
        device = options["device"]
        try:
            run_node(
                name,
                settings.DATAPLANE_REDIS_URL,
                device=device,
                threads=options["threads"],
                on_idle=on_idle,
                stop=stop,
            )
        finally:
            close_old_connections()
            split_node_heartbeat(name=name, utilisation=0.0, online=False)
