"""Placement-loop settings with their defaults; settings.py may override any of them."""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS: dict[str, object] = {
    # FIG. 2.1 step 204: how long a workload is monitored after a placement before analysis.
    "PLACEMENT_MONITOR_WINDOW_S": 300,
    # Fewest latency samples (or progress reports) the analysis needs from the window.
    "PLACEMENT_MIN_SAMPLES": 5,
    # FIG. 2.1 step 208: a move is recommended only if predicted this much better (fraction).
    "PLACEMENT_MARGIN": 0.2,
    # Seconds a migration waits for the target worker to load the model (or resume a job).
    "PLACEMENT_LOAD_TIMEOUT_S": 180,
    # After a rejection, the same move is not recommended again for this many seconds.
    "PLACEMENT_REJECTION_QUIET_S": 3600,
    # Seconds a migration waits for the source worker to drain and unload.
    "PLACEMENT_DRAIN_TIMEOUT_S": 120,
    # A migration runner's claim lasts this long past its last step; after that the recovery
    # task resumes the migration elsewhere. Longer than the longest wait above.
    "PLACEMENT_MIGRATION_LEASE_S": 240,
    # Resumes after which a stuck migration is rolled back instead of resumed once more.
    "PLACEMENT_MIGRATION_MAX_ATTEMPTS": 3,
    # Cold start: rows of the simulated profiling run, and its seed (deterministic artifacts).
    "PLACEMENT_PROFILING_ROWS": 20000,
    "PLACEMENT_PROFILING_SEED": 7,
    # How much one row of real telemetry weighs against one simulated profiling row.
    "PLACEMENT_TELEMETRY_ROW_WEIGHT": 20.0,
    # Seconds a training/adaptation job has to write its checkpoint when asked to pause, or to
    # report running after it was started on an environment.
    "PLACEMENT_CHECKPOINT_TIMEOUT_S": 60,
}


def setting(name: str):
    """Return a placement setting: from settings.py, else the environment variable, else the default."""
    if hasattr(settings, name):
        return getattr(settings, name)
    default = DEFAULTS[name]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc
