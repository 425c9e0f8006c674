"""Helpers for tests that run real worker processes against the test database and Redis.

Not a test module itself, so every app's tests can import it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection


def database_url_for_subprocess() -> str:
    """Return a DATABASE_URL that points a child process at the database this test uses."""
    current = connection.settings_dict
    if current["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{current['NAME']}"
    user = current.get("USER") or ""
    password = f":{current['PASSWORD']}" if current.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = current.get("HOST") or "localhost"
    port = f":{current['PORT']}" if current.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{current['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Return the environment for a child Switchyard process bound to the test's DB and Redis."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_subprocess()
    env["VAR_DIR"] = str(settings.VAR_DIR)
    env["SWITCHYARD_TESTING"] = "1"
    env["MODEL_DIR"] = str(settings.MODEL_DIR)
    env["ARTIFACT_DIR"] = str(settings.ARTIFACT_DIR)
    if not settings.EMBEDDED_REDIS:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


@contextmanager
def celery_worker(
    queues: list[str], *, concurrency: int = 1, pool: str = "prefork", **extra_env: str
) -> Iterator[subprocess.Popen]:
    """Run a real Celery worker process on ``queues`` for the duration of the block."""
    from console.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log_path = Path(settings.VAR_DIR) / "log" / f"{name.split('@')[0]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-Q",
                ",".join(queues),
                "-n",
                name,
                "-c",
                str(concurrency),
                "-P",
                pool,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],  # fmt: skip
            cwd=settings.BASE_DIR,
            env=subprocess_env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early: {log_path.read_text()[-2000:]}")
            if app.control.ping(destination=[name], timeout=0.5):
                break
        else:
            raise RuntimeError(f"worker did not answer within 60 s: {log_path.read_text()[-2000:]}")
        process.worker_name = name  # type: ignore[attr-defined]
        process.log_path = log_path  # type: ignore[attr-defined]
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def source_hash(paths: list[Path], extra: str) -> str:
    """Return a short digest of source files plus a settings string (a build cache key)."""
    import hashlib

    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_build(name: str, key: str, build, *, make_dir: bool = False) -> Path:
    """Return ``VAR_DIR/test-cache/<name>-<key>``, running ``build(directory)`` once to make it.

    Test models and classifiers take seconds to build; the key changes with their sources,
    so a stale build is never reused. Builds go to a staging directory renamed into place,
    so concurrent sessions never see half a build.
    """
    import shutil

    root = Path(settings.VAR_DIR) / "test-cache"
    final = root / f"{name}-{key}"
    if final.is_dir():
        return final
    staging = root / f".{name}-{uuid.uuid4().hex[:8]}"
    (staging if make_dir else staging.parent).mkdir(parents=True, exist_ok=True)
    build(staging)
    try:
        staging.rename(final)
    except OSError:  # another session finished the same build first
        shutil.rmtree(staging, ignore_errors=True)
    return final
