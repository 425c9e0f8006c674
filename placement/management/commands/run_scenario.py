"""Replay a patent example on the demo topology with real workers, printing each step.

    python manage.py run_scenario example1                 # starts its own workers
    python manage.py run_scenario example1 --use-running-workers   # uses `make run`'s

Example 1 (FIG. 3): an image-generation workload starts on component A, the monitoring agent
shows the transfer to the front-end devices limiting its latency, the placement model
recommends component B, the administrator approves, the migration runs and the observed
latency improves.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

SCENARIOS = ("example1",)
WORKER_START_TIMEOUT_S = 180.0


class Command(BaseCommand):
    help = "Replay a patent example (example1: FIG. 3) on the demo topology with real workers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("scenario", choices=SCENARIOS)
        parser.add_argument(
            "--use-running-workers",
            action="store_true",
            help="Do not start workers: use those of `make run` (control, env.onprem-a, env.onprem-b).",
        )
        parser.add_argument(
            "--requests", type=int, default=3, help="Requests per front-end device per round."
        )
        parser.add_argument(
            "--approver",
            default=os.environ.get("SWITCHYARD_ADMIN_USER", "admin"),
            help="The administrator who approves (needs the approve_recommendation permission).",
        )

    def handle(
        self, *args, scenario: str, use_running_workers: bool, requests: int, approver: str, **options
    ):
        from placement.demo import load_demo
        from placement.models import ProductionEnvironment
        from placement.scenarios import example1_run

        if requests < 1:
            raise CommandError("--requests must be at least 1")
        load_demo()
        self.stdout.write("Demo topology loaded (placement.demo).")
        ai_model = self._model()
        user = self._approver(approver)
        environments = {
            e.slug: e for e in ProductionEnvironment.objects.filter(slug__in=["onprem-a", "onprem-b"])
        }
        processes: list[subprocess.Popen] = []
        try:
            if not use_running_workers:
                processes = self._start_workers([environments["onprem-a"], environments["onprem-b"]])
            result = example1_run(
                approver=user, say=self.stdout.write, ai_model=ai_model, requests_per_device=requests
            )
        finally:
            self._stop_workers(processes)
        if result.migration is None or result.migration.state != "completed" or not result.after:
            raise CommandError(
                "the scenario did not complete; see the steps above (and var/log/scenario-*.log)"
            )
        before, after = result.median_total_ms(result.before), result.median_total_ms(result.after)
        if after >= before:
            raise CommandError(f"observed median latency did not improve ({before:.1f} ms -> {after:.1f} ms)")
        self.stdout.write(
            self.style.SUCCESS(f"Example 1 replayed: median latency {before:.1f} ms -> {after:.1f} ms.")
        )

    def _model(self):
        from placement.models import AIModel

        model = AIModel.objects.get(slug="default")
        if (model.path / "config.json").is_file():
            return model
        # No default model yet (`make setup` builds it): build a small one for the scenario.
        from inference.management.commands.build_default_model import register_model
        from inference.modelbuild import build_default_model

        directory = Path(settings.MODEL_DIR) / "example1-small"
        if not (directory / "config.json").is_file():
            self.stdout.write(f"No default model at {model.path}; building a small one into {directory} ...")
            build_default_model(
                directory, max_steps=40, seed=0, hidden_size=64, intermediate_size=128, num_heads=4,
                num_layers=2, vocab_size=768, corpus_max_chars=200_000, max_position_embeddings=256,
            )  # fmt: skip
        return register_model("example1-small", "Example 1 small model", directory)

    def _approver(self, username: str):
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.filter(username="example1-admin").first()
        if user is None:
            user = users.objects.create_superuser("example1-admin", "", None)
            self.stdout.write(
                "Created the superuser example1-admin (no password) to approve the recommendation."
            )
        if not user.has_perm("placement.approve_recommendation"):
            raise CommandError(f"{user.get_username()} lacks the placement.approve_recommendation permission")
        return user

    def _start_workers(self, environments) -> list[subprocess.Popen]:
        from console.celery import app as public_app
        from inference.serving import private_app, uses_private_path, worker_argv

        specs = [("control", False)] + [(e.queue_name, uses_private_path(e)) for e in environments]
        log_dir = Path(settings.VAR_DIR) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        processes, waiting = [], {}
        self.stdout.write("Starting workers: " + ", ".join(queue for queue, _ in specs) + " ...")
        for queue, private in specs:
            name = f"scenario-{queue}-{uuid.uuid4().hex[:6]}@localhost"
            argv = worker_argv(queue=queue, private_path=private, hostname=name, extra=("--without-gossip",))
            with open(log_dir / f"scenario-{queue}.log", "ab") as log:
                process = subprocess.Popen(
                    argv,
                    cwd=settings.BASE_DIR,
                    # One torch thread per worker: three workers share this host's cores.
                    env={**os.environ, "SWITCHYARD_TORCH_THREADS": "1"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes.append(process)
            waiting[name] = (process, private_app if private else public_app)
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while waiting:
            for name, (process, app) in list(waiting.items()):
                if process.poll() is not None:
                    self._stop_workers(processes)
                    raise CommandError(f"worker {name} exited; see var/log/scenario-*.log")
                if app.control.ping(destination=[name], timeout=0.5):
                    del waiting[name]
            if waiting and time.monotonic() > deadline:
                self._stop_workers(processes)
                raise CommandError(f"workers did not start within {WORKER_START_TIMEOUT_S:.0f} s")
        self.stdout.write("Workers are up.")
        return processes

    def _stop_workers(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
