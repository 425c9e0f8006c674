"""Invalidate the gateway's per-process caches (``variants.selectors``) when their rows change.

Every save or delete of a row the gateway's reads depend on, in the admin or anywhere else
that goes through the ORM's model methods, increments the shared routing version once the
transaction commits; each web process drops what it kept on its next request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authtoken.models import Token

from placement.models import AIModel, ProductionEnvironment, Workload
from variants import selectors
from variants.models import EligibilityPolicy, SensitivityModel, Variant

# What active_policy, active_classifier, model_resolve, variants_available, bypass_environment,
# token_user and inferencing_workload_id read.
WATCHED = (
    EligibilityPolicy,
    SensitivityModel,
    Variant,
    AIModel,
    ProductionEnvironment,
    Workload,
    Token,
    Group,
)


def _changed(**_) -> None:
    selectors.routing_changed()


def _user_changed(update_fields=None, **_) -> None:
    # A login only moves last_login; nothing the gateway keeps depends on it.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    selectors.routing_changed()


def connect() -> None:
    """Connect the handlers (called once from the app's ready())."""
    for model in WATCHED:
        post_save.connect(_changed, sender=model, dispatch_uid=f"routing-save-{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"routing-delete-{model._meta.label}")
    user_model = get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="routing-save-user")
    post_delete.connect(_changed, sender=user_model, dispatch_uid="routing-delete-user")
    for through in (EligibilityPolicy.eligible_groups.through, EligibilityPolicy.bypass_groups.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"routing-m2m-{through._meta.label}")
