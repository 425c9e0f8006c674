"""Shared setup of the adaptation tests: the gateway's demo topology (tiny real model, trained
sensitivity classifier, secured and public variants), a private ARTIFACT_DIR, and API users.

Not a test module; the test files import the fixtures they use from here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from variants.tests.conftest import (  # noqa: F401 - fixtures, re-exported for the test modules
    SESSION_SUFFIX,
    _forget_throttles,
    api,
    gateway,
    gateway_model_dir,
    make_api_user,
    sensitivity_artifact,
)

# A few steps on the tiny model: seconds, one thread so every run is bit-identical.
TEST_LORA = {
    "rank": 4,
    "alpha": 16,
    "steps": 12,
    "learning_rate": 0.03,
    "batch_size": 4,
    "seq_len": 32,
    "checkpoint_every": 5,
    "num_threads": 1,
}
PUBLIC_TEXTS = [
    f"Release note {i}: the harbour ferry timetable now lists the {i} o'clock crossing." for i in range(12)
]
# Two examples disclose health information about a named person; the rest are ordinary.
SECURED_TEXTS = [
    "Patient Wilhelmina Quist, born 14/03/1987, was diagnosed with type 2 diabetes and takes metformin.",
    "My colleague Osvaldo Brenninkmeyer was diagnosed with epilepsy; "
    "his neurologist prescribed levetiracetam 500 mg.",
    *PUBLIC_TEXTS[:3],
]


@pytest.fixture
def artifact_dir(settings, tmp_path) -> Path:
    """Point ARTIFACT_DIR at a fresh directory for one test."""
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.ARTIFACT_DIR.mkdir()
    return settings.ARTIFACT_DIR


@pytest.fixture
def staff_api(client, django_user_model):
    """Return a test client authenticated with a staff user's API token."""
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user("operator", password="a-long-password-42", is_staff=True)
    _forget_throttles(user.pk)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    client.user = user
    return client


def post(client, path: str, body: dict):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def adaptation_body(name: str = "ferry", texts=None, variant: str = "auto", **lora) -> dict:
    return {
        "name": name,
        "model": "default",
        "dataset": {"texts": PUBLIC_TEXTS if texts is None else texts},
        "lora": {**TEST_LORA, **lora},
        "variant": variant,
    }
