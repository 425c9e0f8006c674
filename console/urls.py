from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from console import views
from telemetry import views as telemetry_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus scrapes the conventional path; the console keeps its own link too.
    path("metrics", telemetry_views.metrics, name="metrics"),
    path("console/", include("console.console_urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The prompt gateway: /api/v1/prompts, /api/v1/policy/eligibility, /v1/chat/completions.
    path("", include(("variants.urls", "variants"))),
    # Model adaptation and training workloads, adapters and promotions: /api/v1/adaptations, ...
    path("", include(("inference.urls", "inference"))),
    # Split inference: /api/v1/split/generate.
    path("", include(("inference.split.urls", "split"))),
]
# The admin's and console's static files while DEBUG is on (what runserver used to serve);
# empty with DEBUG=0, where a proxy serves STATIC_ROOT after collectstatic.
urlpatterns += staticfiles_urlpatterns()
