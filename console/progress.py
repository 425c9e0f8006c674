"""Progress of long work (model builds, training, migrations), visible from every host.

The worker doing the work publishes a small JSON document to Redis (through Django's cache)
under ``progress:<kind>:<key>``; the terminal prints the same events, and the console reads
them back. A TTL keeps finished or abandoned entries from piling up.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

# Long enough to outlive a slow step; short enough that a dead job's entry disappears.
PROGRESS_TTL_S = 6 * 3600
_INDEX_KEY = "progress:index"


def progress_publish(kind: str, key: str, event: dict[str, Any]) -> None:
    """Store the latest progress event of one piece of long work."""
    document = {"kind": kind, "key": key, "updated_at": time.time(), **event}
    cache.set(f"progress:{kind}:{key}", document, PROGRESS_TTL_S)
    index = cache.get(_INDEX_KEY) or []
    if [kind, key] not in index:
        cache.set(_INDEX_KEY, [*index, [kind, key]][-50:], PROGRESS_TTL_S)


def progress_read(kind: str, key: str) -> dict[str, Any] | None:
    """Return the latest progress event of one piece of long work, if any."""
    return cache.get(f"progress:{kind}:{key}")


def progress_all() -> list[dict[str, Any]]:
    """Return every piece of long work with a live progress entry, newest first."""
    entries = []
    for kind, key in cache.get(_INDEX_KEY) or []:
        document = progress_read(kind, key)
        if document:
            entries.append(document)
    return sorted(entries, key=lambda d: d["updated_at"], reverse=True)
