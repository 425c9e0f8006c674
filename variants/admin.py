from django.contrib import admin, messages

from variants.models import (
    EligibilityPolicy,
    FeedbackExample,
    PromptRequest,
    SensitivityModel,
    Variant,
)
from variants.services import eligibility_policy_activate, sensitivity_model_activate


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "environment", "ai_model", "serving", "enabled"]
    list_filter = ["kind", "serving", "enabled", "environment"]
    search_fields = ["name"]


@admin.register(EligibilityPolicy)
class EligibilityPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "active",
        "version",
        "threshold",
        "network_rule",
        "bypass_environment",
        "updated_at",
    ]
    readonly_fields = ["version", "updated_at"]
    filter_horizontal = ["eligible_groups", "bypass_groups"]
    actions = ["make_active"]
    fieldsets = [
        (None, {"fields": ["name", "active", "version", "updated_at"]}),
        ("Payload classification (FIG. 2.3)", {"fields": ["threshold", "default_model"]}),
        (
            "Initial classification (FIG. 6): prompt",
            {"fields": ["max_prompt_chars", "bypass_max_chars", "classify_phrases", "bypass_phrases"]},
        ),
        (
            "Initial classification: network",
            {"fields": ["network_rule", "private_networks", "vpn_header", "vpn_header_value"]},
        ),
        ("Initial classification: user account", {"fields": ["eligible_groups", "bypass_groups"]}),
        ("Requests that skip classification", {"fields": ["bypass_environment"]}),
    ]

    @admin.action(description="Make the selected policy the active one")
    def make_active(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one policy.", messages.ERROR)
            return
        policy = eligibility_policy_activate(policy_id=queryset.get().pk)
        self.message_user(request, f"{policy} is now active.", messages.SUCCESS)


@admin.register(SensitivityModel)
class SensitivityModelAdmin(admin.ModelAdmin):
    list_display = ["version", "active", "created_at", "n_examples", "path"]
    readonly_fields = ["version", "path", "metrics", "seed", "n_examples", "active", "created_at"]
    actions = ["make_active"]

    def has_add_permission(self, request) -> bool:
        # Artifacts come from `manage.py train_sensitivity_classifier`, not from a form.
        return False

    @admin.action(description="Use the selected model for classification")
    def make_active(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model.", messages.ERROR)
            return
        row = sensitivity_model_activate(model_id=queryset.get().pk)
        self.message_user(request, f"{row} is now used.", messages.SUCCESS)


@admin.register(PromptRequest)
class PromptRequestAdmin(admin.ModelAdmin):
    """Metadata only: a request row never holds the prompt's text."""

    list_display = [
        "id", "created_at", "user", "route", "variant", "eligible", "sensitivity",
        "fail_closed", "session_pinned", "status", "error_code",
    ]  # fmt: skip
    list_filter = ["route", "status", "eligible", "fail_closed", "session_pinned", "source"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FeedbackExample)
class FeedbackExampleAdmin(admin.ModelAdmin):
    """Public requests kept for retraining (claim 2)."""

    list_display = ["request", "ai_model", "created_at"]
    list_filter = ["ai_model"]
    search_fields = ["prompt", "payload"]

    def has_add_permission(self, request) -> bool:
        return False
