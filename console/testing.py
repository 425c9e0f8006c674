"""Helpers for tests that run real worker processes against the test database and Redis.

Not a test module itself, so every app's tests can import it.
"""

from __future__ import annotations

import os
import subprocess
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
    """Run a real Celery worker process on ``queues`` (public broker) for the duration of the block."""
    from inference.serving import running_worker

    name = f"test-{uuid.uuid4().hex[:8]}"
    with running_worker(
        queue=",".join(queues),
        private_path=False,
        env=subprocess_env(**extra_env),
        log_path=Path(settings.VAR_DIR) / "log" / f"{name}.log",
        cwd=settings.BASE_DIR,
        concurrency=concurrency,
        pool=pool,
        start_timeout_s=60,
        hostname=f"{name}@localhost",
    ) as process:
        yield process


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
