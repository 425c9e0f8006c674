"""Variants follow their model's inferencing workload when a migration moves it."""

from __future__ import annotations

import pytest
from django.db import transaction

from placement.models import AIModel, ProductionEnvironment, Workload
from placement.signals import workload_moved
from variants import selectors
from variants.follow import SecuredVariantCannotMove
from variants.models import Variant

pytestmark = pytest.mark.django_db(transaction=True)


def _inferencing(ai_model, environment, name: str = "serve") -> Workload:
    return Workload.objects.create(
        name=f"{name} {environment.slug}", kind="inferencing", ai_model=ai_model, environment=environment
    )


def _move(workload: Workload, to: ProductionEnvironment) -> None:
    """Do what a migration's routing switch does, in one transaction."""
    with transaction.atomic():
        source = workload.environment_id
        workload.environment = to
        workload.save(update_fields=["environment", "updated_at"])
        workload_moved.send(
            sender=Workload, workload=workload, from_environment_id=source, to_environment_id=to.pk
        )


def test_the_public_variant_moves_with_its_workload_and_the_gateway_routes_there(demo):
    model = AIModel.objects.get(slug="default")
    public, cloud = (ProductionEnvironment.objects.get(slug=s) for s in ("public", "cloud"))
    workload = _inferencing(model, public)
    assert selectors.variants_available(model)["public"].environment == public

    _move(workload, cloud)

    assert Variant.objects.get(name="Public variant").environment == cloud
    assert selectors.variants_available(model)["public"].environment == cloud
    # The secured variant was elsewhere and stays where it was.
    assert Variant.objects.get(name="Secured variant").environment.slug == "secured"


def test_a_rollback_moves_the_variant_back(demo):
    model = AIModel.objects.get(slug="default")
    public, cloud = (ProductionEnvironment.objects.get(slug=s) for s in ("public", "cloud"))
    workload = _inferencing(model, public)
    _move(workload, cloud)

    _move(workload, public)

    assert Variant.objects.get(name="Public variant").environment == public


def test_a_secured_variant_never_follows_onto_a_public_environment_and_nothing_moves(demo):
    model = AIModel.objects.get(slug="default")
    secured, cloud = (ProductionEnvironment.objects.get(slug=s) for s in ("secured", "cloud"))
    workload = _inferencing(model, secured)

    with pytest.raises(SecuredVariantCannotMove, match="private path"):
        _move(workload, cloud)

    workload.refresh_from_db()
    assert workload.environment == secured  # the switch's transaction rolled back as a whole
    assert Variant.objects.get(name="Secured variant").environment == secured


def test_a_secured_variant_follows_to_another_private_trusted_environment(demo):
    model = AIModel.objects.get(slug="default")
    secured, onprem = (ProductionEnvironment.objects.get(slug=s) for s in ("secured", "onprem-b"))
    workload = _inferencing(model, secured)

    _move(workload, onprem)

    assert Variant.objects.get(name="Secured variant").environment == onprem
    assert selectors.variants_available(model)["secured"].environment == onprem


def test_variants_stay_while_another_workload_of_the_model_still_serves_the_source(demo):
    model = AIModel.objects.get(slug="default")
    public, cloud = (ProductionEnvironment.objects.get(slug=s) for s in ("public", "cloud"))
    moving = _inferencing(model, public)
    _inferencing(model, public, name="also serve")

    _move(moving, cloud)

    assert Variant.objects.get(name="Public variant").environment == public
