"""Demo rows for the prompt gateway (patent Example 3): a secured variant on the ``secured``
environment, a public variant on ``public``, and an eligibility policy that sends requests
which skip classification to the public environment (Example 3 sends them to the public
variant, 770). Idempotent; called at the end of ``placement.demo.load_demo``.
"""

from __future__ import annotations

from django.db import transaction

from placement.models import AIModel, ProductionEnvironment
from variants.models import EligibilityPolicy, Variant

DEMO_POLICY_NAME = "Default eligibility policy"


@transaction.atomic
def load_variant_demo(*, model_slug: str = "default") -> dict[str, int]:
    """Create or update the demo variants and policy; return how many of each exist."""
    model = AIModel.objects.get(slug=model_slug)
    secured = ProductionEnvironment.objects.get(slug="secured")
    public = ProductionEnvironment.objects.get(slug="public")
    Variant.objects.update_or_create(
        name="Secured variant",
        defaults={"kind": Variant.Kind.SECURED, "environment": secured, "ai_model": model, "enabled": True},
    )
    Variant.objects.update_or_create(
        name="Public variant",
        defaults={"kind": Variant.Kind.PUBLIC, "environment": public, "ai_model": model, "enabled": True},
    )
    policy = EligibilityPolicy.objects.filter(name=DEMO_POLICY_NAME).first()
    if policy is None:
        # Only the first load sets it up; an administrator's later edits are kept.
        EligibilityPolicy.objects.create(
            name=DEMO_POLICY_NAME,
            active=not EligibilityPolicy.objects.filter(active=True).exists(),
            default_model=model,
            bypass_environment=public,
            private_networks="10.0.0.0/8\n172.16.0.0/12\n192.168.0.0/16",
        )
    return {"variants": Variant.objects.count(), "eligibility_policies": EligibilityPolicy.objects.count()}
