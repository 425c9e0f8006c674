"""Search every place a prompt could have been left behind: database tables, Redis, logs."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re

import redis
from django.db import connection

_BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]{16,}$")


def _strings_in(value) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, str):
        return [value.encode("utf-8", "surrogatepass")]
    if isinstance(value, dict):
        return [s for item in value.items() for part in item for s in _strings_in(part)]
    if isinstance(value, list | tuple | set):
        return [s for item in value for s in _strings_in(item)]
    return [str(value).encode()]


def _expanded(raw: bytes, depth: int = 0) -> list[bytes]:
    """Return the raw bytes plus what they decode to (JSON strings, base64 message bodies)."""
    found = [raw]
    if depth > 3:
        return found
    try:
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if decoded is not None and not isinstance(decoded, int | float | bool):
        for text in _strings_in(decoded):
            if text != raw:
                found.extend(_expanded(text, depth + 1))
    if _BASE64.match(raw.strip()):
        with contextlib.suppress(binascii.Error, ValueError):
            found.extend(_expanded(base64.b64decode(raw.strip(), validate=False), depth + 1))
    return found


def contains(raw: bytes, marker: str) -> bool:
    """Return True when the marker appears in the bytes or anything they encode."""
    needle = marker.encode()
    return any(needle in part for part in _expanded(raw))


def tables_containing(marker: str) -> list[str]:
    """Return the database tables with a row holding the marker in any column."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                if any(contains(raw, marker) for value in row for raw in _strings_in(value)):
                    hits.append(table)
                    break
    return hits


def redis_keys_containing(url: str, marker: str) -> list[str]:
    """Return the keys of a Redis database whose name or value holds the marker."""
    client = redis.Redis.from_url(url)
    hits = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [part for _, fields in client.xrange(key) for pair in fields.items() for part in pair]
        else:
            values = []
        if contains(key, marker) or any(contains(value, marker) for value in values):
            hits.append(key.decode(errors="replace"))
    return hits
