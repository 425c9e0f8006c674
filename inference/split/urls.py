"""Route of the split-inference API (included at the site root by console.urls)."""

from django.urls import path

from inference.split import apis

urlpatterns = [
    path("api/v1/split/generate", apis.SplitGenerateApi.as_view(), name="generate"),
]
