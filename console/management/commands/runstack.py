"""Start the whole product on this host: web server (gunicorn, see ``console.webserver``), one
Celery worker per environment queue, the control-plane worker, beat and the demo split-inference
nodes. Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand

from console.webserver import gunicorn_argv
from inference.serving import uses_private_path, worker_argv
from placement.models import ProductionEnvironment


class Command(BaseCommand):
    help = "Run the web server, a worker per production environment queue, the control worker and beat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bind", default=os.environ.get("SWITCHYARD_BIND", "127.0.0.1:8000"))
        parser.add_argument("--no-beat", action="store_true")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log_dir = settings.VAR_DIR / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.BASE_DIR,
            env=env,
        )
        self.children.append((name, process))
        self.stdout.write(f"  started {name:<22} pid {process.pid:<7} log {log_dir / name}.log")

    def handle(self, *args, bind: str, no_beat: bool, **options) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "console"]
        environments = ProductionEnvironment.objects.exclude(status=ProductionEnvironment.Status.OFFLINE)
        self.stdout.write("Starting Switchyard:")
        self._spawn("web", gunicorn_argv(bind))
        self._spawn(
            "worker-control",
            [*celery, "worker", "-Q", "control", "-n", "control@%h", "-c", "2", "--loglevel", "INFO"],
        )
        # Several model-holding processes share this host's cores: one torch thread each, or
        # their threads wait on each other and every token gets several times slower.
        one_thread = dict(
            os.environ, SWITCHYARD_TORCH_THREADS=os.environ.get("SWITCHYARD_TORCH_THREADS", "1")
        )
        for environment in environments:
            # One process per environment: it keeps its model warm and stands for that environment.
            # Private-path environments consume from the private broker (SECURED_REDIS_URL).
            self._spawn(
                f"worker-{environment.queue_name}",
                worker_argv(queue=environment.queue_name, private_path=uses_private_path(environment)),
                env=one_thread,
            )
        if not no_beat:
            self._spawn("beat", [*celery, "beat", "--loglevel", "INFO"])
        self._start_split_nodes(python)
        url = f"http://{bind}/"
        self._wait_for_web(url)
        self.stdout.write(self.style.SUCCESS(f"\nSwitchyard is up: {url}console/  (admin: {url}admin/)"))
        self.stdout.write("Press Ctrl-C to stop every process.")
        # Ctrl-C (also when started from a script, where SIGINT may arrive ignored) and SIGTERM
        # both stop every child.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            while True:
                for name, process in self.children:
                    if process.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with {process.returncode}; see its log in {settings.VAR_DIR}/log/"
                        )
                        raise KeyboardInterrupt
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            self._stop_all()

    def _start_split_nodes(self, python: str) -> None:
        """Start the demo split-inference nodes and activate their first plan in the background.

        One torch thread each: three nodes share this host's cores with the workers.
        """
        from inference.split.demo import DEMO_NODES, bootstrap_initial_plan

        env = dict(os.environ, SWITCHYARD_TORCH_THREADS="1")
        for name, environment_slug, trust in DEMO_NODES:
            argv = [python, "manage.py", "run_split_node", "--node", name, "--threads", "1"]
            argv += ["--environment", environment_slug, "--trust", str(trust)]
            self._spawn(name, argv, env=env)

        def bootstrap() -> None:
            from django.db import close_old_connections

            try:
                plan = bootstrap_initial_plan(model_slug="default")
                if plan is not None:
                    self.stdout.write(f"  split plan v{plan.version} active: {plan.route}")
            except Exception as exc:  # noqa: BLE001 - the rest of the product runs without it
                self.stderr.write(f"initial split plan failed: {exc}")
            finally:
                close_old_connections()

        # The web server must not wait for model loading: the plan follows when nodes are up.
        threading.Thread(target=bootstrap, daemon=True, name="split-bootstrap").start()

    def _wait_for_web(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "healthz", timeout=2)  # noqa: S310 - loopback only
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)

    def _stop_all(self) -> None:
        for _, process in self.children:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, process in self.children:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                self.stderr.write(f"{name} killed after 20 s")
        self.stdout.write("All processes stopped.")
