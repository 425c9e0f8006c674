"""Routes of the adaptation, training and adapter APIs (included at the site root by console.urls)."""

from django.urls import path

from inference import apis

urlpatterns = [
    path("api/v1/adaptations", apis.AdaptationListApi.as_view(), name="adaptations"),
    path("api/v1/adaptations/<int:job_id>", apis.AdaptationDetailApi.as_view(), name="adaptation-detail"),
    path(
        "api/v1/adaptations/<int:job_id>/cancel", apis.AdaptationCancelApi.as_view(), name="adaptation-cancel"
    ),
    path("api/v1/trainings", apis.TrainingCreateApi.as_view(), name="trainings"),
    path("api/v1/adapters", apis.AdapterListApi.as_view(), name="adapters"),
    path("api/v1/promotions", apis.PromotionListApi.as_view(), name="promotions"),
    path("api/v1/promotions/rollback", apis.RollbackApi.as_view(), name="promotion-rollback"),
    path("api/v1/adapted-prompts", apis.AdaptedPromptApi.as_view(), name="adapted-prompts"),
]
