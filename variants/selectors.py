"""Reads for the prompt gateway: the active policy, the active classifier, variants, models.

Each web process keeps what it read for PROMPT_ROUTING_CACHE_S seconds (2 by default), so a
request costs no query for routing rows and an administrator's change (a disabled variant,
a new policy or classifier) applies within that time. The loaded classifier is kept until
another version becomes active.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from placement.models import AIModel, ProductionEnvironment, Workload
from variants.eligibility import EligibilityRules
from variants.models import EligibilityPolicy, SensitivityModel, Variant


@dataclass(frozen=True)
class PolicySnapshot:
    """The active eligibility policy as plain values (built-in defaults when there is none)."""

    rules: EligibilityRules
    policy_id: int | None
    default_model_id: int | None
    bypass_environment_id: int | None


DEFAULT_POLICY = PolicySnapshot(EligibilityRules(), None, None, None)

_memo_lock = threading.Lock()
_memo: dict[tuple, tuple[float, Any]] = {}


def _remembered(key: tuple, load: Callable[[], Any]) -> Any:
    """Return ``load()``, reusing a value read less than PROMPT_ROUTING_CACHE_S ago."""
    ttl_s = settings.PROMPT_ROUTING_CACHE_S
    now = time.monotonic()
    if ttl_s > 0:
        with _memo_lock:
            hit = _memo.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
    value = load()  # an exception is not remembered: the next request tries again
    if ttl_s > 0:
        with _memo_lock:
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
