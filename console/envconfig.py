"""Read typed settings from environment variables and fail loudly on bad values.

Pure Python (no Django import) so the settings module and the tests can share it.
Every helper raises ``ImproperSetting`` naming the variable and the value it rejected,
so a typo in a deployment manifest stops the process at start-up instead of later.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


class ImproperSetting(ValueError):
    """A setting read from the environment has a malformed value."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    source = os.environ if env is None else env
    value = source.get(name)
    if value is None:
        file_name = source.get(f"{name}_FILE")
        if file_name:
            try:
                value = Path(file_name).read_text().strip()
            except OSError as exc:
                raise ImproperSetting(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return value


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """Return the variable as a string, or the default when unset."""
    value = _raw(name, env)
    return default if value is None else value


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """Return the variable as a boolean; only 1/0, true/false, yes/no, on/off are accepted."""
    value = _raw(name, env)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperSetting(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(
    name: str,
    default: int,
    env: Mapping[str, str] | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return the variable as an integer within the optional bounds."""
    value = _raw(name, env)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperSetting(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperSetting(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperSetting(f"{name}={number} is above the maximum {maximum}")
    return number


def env_float(
    name: str,
    default: float,
    env: Mapping[str, str] | None = None,
    *,
    minimum: float | None = None,
) -> float:
    """Return the variable as a float, at least ``minimum`` when given."""
    value = _raw(name, env)
    if value is None:
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise ImproperSetting(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperSetting(f"{name}={number} is below the minimum {minimum}")
    return number


def env_list(name: str, default: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty stripped items."""
    value = _raw(name, env)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_database_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Return a Django DATABASES entry for a postgres:// or sqlite:/// URL."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        if not parsed.path or parsed.path == "/":
            raise ImproperSetting(f"{name}={url!r} names no database (postgres://user@host/NAME)")
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        try:
            port = parsed.port
        except ValueError:
            raise ImproperSetting(f"{name}={url!r} has a malformed port") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path[1:]),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Keep connections for a minute: workers issue many small queries.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ImproperSetting(f"{name}={url!r} names no file (sqlite:///path/to/db.sqlite3)")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # Several worker processes share the file: wait for locks instead of failing.
            # WAL lets readers run while a worker writes, and synchronous=NORMAL makes a commit
            # cost microseconds instead of an fsync (safe in WAL mode; a power cut may lose the
            # last commits, never corrupt the file).
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Keep connections too: opening one runs the PRAGMAs, and closing the last one on
            # a WAL file checkpoints it, about 1 ms of a web request's CPU together.
            "CONN_MAX_AGE": 60,
        }
    raise ImproperSetting(
        f"{name}={url!r} has an unsupported scheme {scheme!r} (use postgres:// or sqlite:///)"
    )


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis lives: a TCP URL or a unix socket."""

    url: str
    unix_socket: str | None


def parse_redis_url(url: str, *, name: str = "REDIS_URL") -> RedisTarget:
    """Validate a redis://, rediss:// or unix:// URL."""
    parsed = urlparse(url)
    if parsed.scheme in {"redis", "rediss"}:
        if not parsed.hostname:
            raise ImproperSetting(f"{name}={url!r} names no host (redis://host:6379/0)")
        try:
            _ = parsed.port  # urlparse validates the port lazily
        except ValueError:
            raise ImproperSetting(f"{name}={url!r} has a malformed port") from None
        db = parsed.path.lstrip("/")
        if db and not db.isdigit():
            raise ImproperSetting(f"{name}={url!r}: the database must be a number, not {db!r}")
        return RedisTarget(url=url, unix_socket=None)
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ImproperSetting(f"{name}={url!r} names no socket path")
        return RedisTarget(url=url, unix_socket=parsed.path)
    raise ImproperSetting(
        f"{name}={url!r} has an unsupported scheme {parsed.scheme!r} (use redis://, rediss:// or unix://)"
    )


def redis_url_with_db(url: str, db: int) -> str:
    """Return the same Redis server URL pointed at another logical database."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        query["db"] = str(db)
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"unix://{parsed.path}?{q}"
    base = parsed._replace(path=f"/{db}")
    return base.geturl()


def kombu_redis_url(url: str) -> str:
    """Return the kombu (Celery) spelling of a redis-py URL: unix sockets are redis+socket:// there."""
    if url.startswith("unix://"):
        path, _, query = url[len("unix://") :].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return url


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at ``path``, creating it (mode 0600) on first use."""
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
