"""Project-wide test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def admin_client_logged_in(client, django_user_model):
    """Return a test client logged in as a superuser."""
    user = django_user_model.objects.create_superuser("root-admin", "", "a-long-password-42")
    client.force_login(user)
    return client


@pytest.fixture
def demo(db):
    """Load the demo topology and return its counts."""
    from placement.demo import load_demo

    return load_demo()
