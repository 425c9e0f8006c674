"""Fixtures for the prompt gateway tests: a tiny real model, a trained sensitivity classifier,
the demo topology wired to both, API users with tokens, and real workers.

The model and the classifier are built once and kept under ``var/test-cache/`` keyed on a
hash of the code and options that make them, so a second run skips the build.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from console.testing import cached_build, source_hash

# The demo environments get a per-session suffix so their queues (env.secured-xxxx) cannot
# be consumed by another test session's workers on the same Redis.
SESSION_SUFFIX = uuid.uuid4().hex[:6]
SECURED_SLUG = f"secured-{SESSION_SUFFIX}"
PUBLIC_SLUG = f"public-{SESSION_SUFFIX}"

MODEL_BUILD = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 4,
    "num_layers": 2,
    "vocab_size": 768,
    "corpus_max_chars": 200_000,
    "max_position_embeddings": 256,
    "warmup_steps": 5,
    "eval_batches": 1,
}
MODEL_STEPS = 10
CLASSIFIER_EXAMPLES = 3000


@pytest.fixture(scope="session")
def gateway_model_dir() -> Path:
    """Return a tiny real Llama model built by the project's builder."""
    from inference import modelbuild

    key = source_hash([Path(modelbuild.__file__)], repr(sorted(MODEL_BUILD.items())) + str(MODEL_STEPS))

    def build(out: Path) -> None:
        modelbuild.build_default_model(out, max_steps=MODEL_STEPS, seed=0, **MODEL_BUILD)

    return cached_build("gateway-model", key, build)


@pytest.fixture(scope="session")
def sensitivity_artifact() -> Path:
    """Return a trained sensitivity classifier artifact directory."""
    from variants import sensitivity

    package = Path(sensitivity.__file__).parent
    key = source_hash(list(package.glob("*.py")), str(CLASSIFIER_EXAMPLES))

    def build(out: Path) -> None:
        sensitivity.train_classifier(out, seed=0, n_examples=CLASSIFIER_EXAMPLES)

    return cached_build("sensitivity", key, build)


@pytest.fixture(autouse=True)
def _routing_rows_read_fresh(settings):
    """The tests change policies and variants between requests: read them every time."""
    settings.PROMPT_ROUTING_CACHE_S = 0


@pytest.fixture
def gateway(demo, gateway_model_dir, sensitivity_artifact):
    """Return the demo topology with the tiny model, an active classifier and fresh caches."""
    from placement.models import AIModel, ProductionEnvironment
    from variants import selectors
    from variants.models import EligibilityPolicy, SensitivityModel, Variant

    ProductionEnvironment.objects.filter(slug="secured").update(slug=SECURED_SLUG)
    ProductionEnvironment.objects.filter(slug="public").update(slug=PUBLIC_SLUG)
    AIModel.objects.filter(slug="default").update(directory=str(gateway_model_dir))
    SensitivityModel.objects.create(version=1, path=str(sensitivity_artifact), active=True)
    selectors.forget_cached()
    yield SimpleNamespace(
        model=AIModel.objects.get(slug="default"),
        secured=ProductionEnvironment.objects.get(slug=SECURED_SLUG),
        public=ProductionEnvironment.objects.get(slug=PUBLIC_SLUG),
        secured_variant=Variant.objects.get(kind="secured"),
        public_variant=Variant.objects.get(kind="public"),
        policy=EligibilityPolicy.objects.get(active=True),
    )
    _purge_queues()


def _purge_queues() -> None:
    """Drop messages nobody consumed (the timeout tests leave one) from both brokers."""
    import redis

    for url in (settings.REDIS_URL, settings.SECURED_REDIS_URL):
        client = redis.Redis.from_url(url)
        for slug in (SECURED_SLUG, PUBLIC_SLUG):
            keys = list(client.scan_iter(match=f"env.{slug}*"))
            if keys:
                client.delete(*keys)


def _forget_throttles(user_id: int) -> None:
    # Users are numbered from 1 again in every test database; counts from an earlier run
    # on the same Redis must not throttle this one.
    import time

    from inference.serving import redis_client
    from variants.throttles import WINDOW_S, _request_key, _token_key

    window = int(time.time() // WINDOW_S)
    redis_client(settings.REDIS_URL).delete(
        *[key(user_id, w) for key in (_request_key, _token_key) for w in (window - 1, window, window + 1)]
    )


@pytest.fixture
def make_api_user(django_user_model):
    """Return a factory of (user, token key) pairs."""
    from rest_framework.authtoken.models import Token

    def make(username: str = "alice"):
        user = django_user_model.objects.create_user(username, password="a-long-password-42")
        _forget_throttles(user.pk)
        return user, Token.objects.create(user=user).key

    return make


@pytest.fixture
def api(client, make_api_user):
    """Return a Django test client authenticated with an API token (``api.user`` is the user)."""
    user, key = make_api_user()
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    client.user = user
    client.token = key
    return client
