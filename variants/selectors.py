"""Reads for the prompt gateway: the active policy, the active classifier, variants, models,
API tokens and the workload a served request is reported against.

Each web process keeps what it read. An administrator's change invalidates it at once: saving
or deleting any row these reads depend on increments a version counter in Redis
(``variants.signals``), and a request that sees a new version drops everything this process
kept. The counter is read once per gateway request (:func:`request_scope`), or once per call
outside one. Changes that bypass model signals (``QuerySet.update`` by the placement loop,
raw SQL) apply within PROMPT_ROUTING_CACHE_S seconds (2 by default; 0 reads the database
every time). When Redis cannot be read nothing is reused. The loaded classifier is kept
until another version becomes active.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from placement.models import AIModel, ProductionEnvironment, Workload
from variants.eligibility import EligibilityRules
from variants.models import EligibilityPolicy, SensitivityModel, Variant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicySnapshot:
    """The active eligibility policy as plain values (built-in defaults when there is none)."""

    rules: EligibilityRules
    policy_id: int | None
    default_model_id: int | None
    bypass_environment_id: int | None


DEFAULT_POLICY = PolicySnapshot(EligibilityRules(), None, None, None)

VERSION_KEY = "sy:routing:version"

_memo_lock = threading.Lock()
_memo: dict[tuple, tuple[float, Any]] = {}
_memo_version: list[int] = [-1]
_scope = threading.local()


def _read_version() -> int | None:
    """Return the shared routing version, or None when Redis cannot be read (nothing is reused)."""
    from inference.serving import redis_client

    try:
        return int(redis_client(settings.REDIS_URL).get(VERSION_KEY) or 0)
    except Exception:  # noqa: BLE001 - without the counter a stale row cannot be ruled out
        logger.warning("routing cache version unreadable; reading the database", exc_info=True)
        return None


def _current_version() -> int | None:
    held = getattr(_scope, "version", _UNSET)
    return _read_version() if held is _UNSET else held


_UNSET = object()


@contextmanager
def request_scope() -> Iterator[None]:
    """Read the routing version once for everything a request looks up in this block."""
    outer = getattr(_scope, "version", _UNSET)
    _scope.version = _read_version() if settings.PROMPT_ROUTING_CACHE_S > 0 else None
    try:
        yield
    finally:
        _scope.version = outer


def routing_changed() -> None:
    """Tell every process that routing rows changed (after the current transaction commits)."""
    from django.db import transaction

    transaction.on_commit(_bump_version)


def _bump_version() -> None:
    from inference.serving import redis_client

    with _memo_lock:
        _memo.clear()  # this process at once, even when Redis is unreachable
    try:
        redis_client(settings.REDIS_URL).incr(VERSION_KEY)
    except Exception:  # noqa: BLE001 - other processes catch up after PROMPT_ROUTING_CACHE_S
        logger.warning("routing cache version not incremented", exc_info=True)


def _remembered(key: tuple, load: Callable[[], Any]) -> Any:
    """Return ``load()``, reusing a value read under the current version within the TTL."""
    ttl_s = settings.PROMPT_ROUTING_CACHE_S
    if ttl_s <= 0:
        return load()
    version = _current_version()
    if version is None:
        return load()
    now = time.monotonic()
    with _memo_lock:
        if version > _memo_version[0]:
            _memo.clear()
            _memo_version[0] = version
        hit = _memo.get(key) if version == _memo_version[0] else None
    if hit is not None and now - hit[0] < ttl_s:
        return hit[1]
    value = load()  # an exception is not remembered: the next request tries again
    with _memo_lock:
        # Read before loading: a change committed meanwhile has a newer version, so a row
        # stored here under the older one is dropped by the next request that sees it.
        if version == _memo_version[0]:
            _memo[key] = (now, value)
    return value


_policy_lock = threading.Lock()
_policy_cache: dict[tuple[int, int], PolicySnapshot] = {}


def active_policy() -> PolicySnapshot:
    """Return the active policy; raise PolicyError when its stored rules are malformed."""
    return _remembered(("policy",), _load_active_policy)


def _load_active_policy() -> PolicySnapshot:
    head = EligibilityPolicy.objects.filter(active=True).values_list("id", "version").first()
    if head is None:
        return DEFAULT_POLICY
    with _policy_lock:
        cached = _policy_cache.get(head)
    if cached is not None:
        return cached
    policy = EligibilityPolicy.objects.get(pk=head[0])
    snapshot = PolicySnapshot(
        rules=policy.rules(),
        policy_id=policy.pk,
        default_model_id=policy.default_model_id,
        bypass_environment_id=policy.bypass_environment_id,
    )
    with _policy_lock:
        _policy_cache.clear()
        _policy_cache[head] = snapshot
    return snapshot


class ClassifierUnavailable(RuntimeError):
    """No trained sensitivity model is active, or its artifact cannot be loaded."""


_classifier_lock = threading.Lock()
_classifier_cache: dict[tuple[int, str], object] = {}


def active_classifier() -> tuple[int, object]:
    """Return the active sensitivity model's version and its loaded classifier."""
    row = _remembered(
        ("classifier",), lambda: SensitivityModel.objects.filter(active=True).only("version", "path").first()
    )
    if row is None:
        raise ClassifierUnavailable(
            "no active sensitivity model: run `manage.py train_sensitivity_classifier`"
        )
    key = (row.version, str(row.directory))
    with _classifier_lock:
        classifier = _classifier_cache.get(key)
        if classifier is None:
            from variants.sensitivity import load_classifier

            try:
                classifier = load_classifier(row.directory)
            except Exception as exc:
                raise ClassifierUnavailable(
                    f"sensitivity model v{row.version} cannot be loaded ({type(exc).__name__})"
                ) from exc
            _classifier_cache.clear()
            _classifier_cache[key] = classifier
    return row.version, classifier


def forget_cached() -> None:
    """Drop the cached routing rows and classifier (tests; after replacing an artifact in place)."""
    with _memo_lock:
        _memo.clear()
        _memo_version[0] = -1
    with _policy_lock:
        _policy_cache.clear()
    with _classifier_lock:
        _classifier_cache.clear()


def model_resolve(name: str | None, snapshot: PolicySnapshot) -> AIModel | None:
    """Return the AI model a request names (slug or name), or the default one; None if unknown."""
    return _remembered(("model", name, snapshot.default_model_id), lambda: _load_model(name, snapshot))


def _load_model(name: str | None, snapshot: PolicySnapshot) -> AIModel | None:
    if name:
        return AIModel.objects.filter(slug=name).first() or AIModel.objects.filter(name=name).first()
    if snapshot.default_model_id is not None:
        model = AIModel.objects.filter(pk=snapshot.default_model_id).first()
        if model is not None:
            return model
    return AIModel.objects.filter(slug="default").first()


def variants_available(ai_model: AIModel) -> dict[str, Variant]:
    """Return the first enabled variant of each kind whose environment accepts work."""
    return _remembered(("variants", ai_model.pk), lambda: _load_variants(ai_model))


def _load_variants(ai_model: AIModel) -> dict[str, Variant]:
    chosen: dict[str, Variant] = {}
    candidates = (
        Variant.objects.select_related("environment", "ai_model")
        .filter(ai_model=ai_model, enabled=True, environment__status=ProductionEnvironment.Status.ACTIVE)
        .order_by("kind", "name")
    )
    for variant in candidates:
        chosen.setdefault(variant.kind, variant)
    return chosen


def bypass_environment(snapshot: PolicySnapshot, ai_model: AIModel) -> ProductionEnvironment | None:
    """Return where requests that skip classification are served (FIG. 6 step 606).

    The policy's bypass environment when it names one; otherwise the environment where the
    model's inferencing workload is placed now, so the bypass follows a migration.
    """
    return _remembered(
        ("bypass", snapshot.bypass_environment_id, ai_model.pk), lambda: _load_bypass(snapshot, ai_model)
    )


def _load_bypass(snapshot: PolicySnapshot, ai_model: AIModel) -> ProductionEnvironment | None:
    if snapshot.bypass_environment_id is not None:
        environment = ProductionEnvironment.objects.filter(
            pk=snapshot.bypass_environment_id, status=ProductionEnvironment.Status.ACTIVE
        ).first()
        if environment is not None:
            return environment
    workload = (
        Workload.objects.select_related("environment")
        .filter(
            ai_model=ai_model,
            kind=Workload.Kind.INFERENCING,
            environment__status=ProductionEnvironment.Status.ACTIVE,
            state__in=[Workload.State.PLACED, Workload.State.RUNNING],
        )
        .order_by("name")
        .first()
    )
    return workload.environment if workload else None


def token_user(key: str) -> tuple[Any, Any] | None:
    """Return (user, token) for an API token key, or None when no such token exists.

    The returned objects are fresh instances on every call (requests never share one); the
    values behind them are remembered like the routing rows.
    """
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    values = _remembered(("token", key), lambda: _load_token(key))
    if values is None:
        return None
    token_values, user_values = values
    user_model = get_user_model()
    user = user_model.from_db("default", [f.attname for f in user_model._meta.concrete_fields], user_values)
    token = Token.from_db("default", [f.attname for f in Token._meta.concrete_fields], token_values)
    token.user = user
    return user, token


def _load_token(key: str) -> tuple[tuple, tuple] | None:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None:
        return None
    return (
        tuple(getattr(token, f.attname) for f in Token._meta.concrete_fields),
        tuple(getattr(token.user, f.attname) for f in token.user._meta.concrete_fields),
    )


def inferencing_workload_id(ai_model_id: int, environment_id: int) -> int | None:
    """Return the model's inferencing workload in an environment (None: there is none)."""
    return _remembered(
        ("workload", ai_model_id, environment_id),
        lambda: (
            Workload.objects.filter(
                ai_model_id=ai_model_id, environment_id=environment_id, kind=Workload.Kind.INFERENCING
            )
            .values_list("id", flat=True)
            .first()
        ),
    )
