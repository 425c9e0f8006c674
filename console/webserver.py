"""The web server command line ``runstack`` and the gateway benchmark start: gunicorn.

Threaded workers (``gthread``), one process per core (at least two, at most four): a
process serves many requests that wait on workers at once, and kept-alive connections are
answered without the ~40 ms delayed-ACK stall Django's runserver shows (it writes headers
and body in separate segments).
"""

from __future__ import annotations

import os
import sys

# Requests wait on a worker's reply with their thread held (up to INFERENCE_TIMEOUT_S), so a
# process needs many threads; 32 per process covers the gateway benchmark's 64 in flight.
THREADS = 32


def web_workers() -> int:
    """Return the number of web server processes for this host."""
    return max(2, min(os.cpu_count() or 2, 4))


def gunicorn_argv(bind: str, *, workers: int | None = None, threads: int = THREADS) -> list[str]:
    """Return the command line that serves ``console.wsgi`` on ``bind`` (host:port)."""
    return [
        sys.executable, "-m", "gunicorn", "console.wsgi:application",
        "--bind", bind,
        "--workers", str(workers or web_workers()),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--keep-alive", "30",
        # Import the application once, before forking: workers share its pages and start at once.
        "--preload",
    ]  # fmt: skip
