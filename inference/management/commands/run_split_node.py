"""Run a split-inference node: ``python manage.py run_split_node --node <name>``."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

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
        parser.add_argument(
            "--probe-interval-s",
            type=float,
            default=None,
            help="Measure links to the other live nodes this often (default SPLIT_LINK_PROBE_INTERVAL_S).",
        )
        parser.add_argument(
            "--probe-bytes",
            type=int,
            default=None,
            help="Bandwidth probe payload in bytes (default SPLIT_LINK_PROBE_BYTES).",
        )
        parser.add_argument(
            "--spin-ms",
            type=float,
            default=None,
            help="Poll, not sleep, this long after each message (default SPLIT_NODE_SPIN_MS).",
        )
        parser.add_argument(
            "--profile-model",
            default="default",
            help="Slug of the model whose layers are profiled on start ('' to skip).",
        )

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
        if options["profile_model"]:
            self._profile(name, options["profile_model"], options["device"], options["threads"])
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
        spin_ms = options["spin_ms"]
        try:
            run_node(
                name,
                settings.DATAPLANE_REDIS_URL,
                device=device,
                threads=options["threads"],
                on_idle=on_idle,
                stop=stop,
                probe_interval_s=options["probe_interval_s"] or settings.SPLIT_LINK_PROBE_INTERVAL_S,
                probe_bytes=options["probe_bytes"] or settings.SPLIT_LINK_PROBE_BYTES,
                spin_s=(settings.SPLIT_NODE_SPIN_MS if spin_ms is None else spin_ms) / 1000,
            )
        finally:
            close_old_connections()
            split_node_heartbeat(name=name, utilisation=0.0, online=False)

    def _profile(self, name: str, model_slug: str, device: str | None, threads: int | None) -> None:
        """Measure this node's per-layer costs before serving (the planner reads them)."""
        import torch

        from inference.split.profile import profile_layers
        from inference.split.services import split_node_store_profile
        from placement.models import AIModel

        ai_model = AIModel.objects.filter(slug=model_slug).first()
        if ai_model is None or not (Path(ai_model.path) / "config.json").is_file():
            self.stdout.write(f"not profiling: model {model_slug!r} has no files yet")
            return
        if threads:
            # Profile with the thread count the node will serve with.
            torch.set_num_threads(threads)
        try:
            profile = profile_layers(ai_model.path, device=device)
        except Exception as exc:  # a node without a profile still serves (planner default)
            logging.getLogger(__name__).exception("profiling failed")
            self.stderr.write(f"profiling failed: {exc}")
            return
        split_node_store_profile(name=name, profile=dict(profile, model=model_slug))
        self.stdout.write(
            f"profiled {model_slug}: decode {profile['decode_ms_per_layer']:.3f} ms/layer, "
            f"prefill {profile['prefill_ms_per_layer']:.4f} ms/layer/token"
        )
