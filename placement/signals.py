"""Signals other apps listen to when placement changes where a workload runs."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that points a workload at another environment (a migration's
# routing switch, or its rollback), with ``workload``, ``from_environment_id`` and
# ``to_environment_id``. A receiver that raises aborts the switch: nothing moves.
workload_moved = Signal()
