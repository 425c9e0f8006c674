"""Routes of the prompt gateway (included at the site root by console.urls)."""

from django.urls import path

from variants import apis

urlpatterns = [
    path("api/v1/prompts", apis.PromptCreateApi.as_view(), name="prompts"),
    path("api/v1/prompts/<uuid:request_id>", apis.PromptDetailApi.as_view(), name="prompt-detail"),
    path("api/v1/policy/eligibility", apis.EligibilityPolicyApi.as_view(), name="policy-eligibility"),
    # The OpenAI path layout, so clients configured with base_url=".../v1" work unchanged.
    path("v1/chat/completions", apis.ChatCompletionsApi.as_view(), name="chat-completions"),
]
