"""Distributed split inference: node processes, the Redis data plane, the coordinator.

``dataplane`` (keys and message framing), ``node`` (the node process loop) and
``coordinator`` (drives one generation across nodes) need only Redis and torch; the
Django side (``services``, ``orchestrator``, ``tasks``, ``admin``) stores plans and
decisions and calls them.
"""
