"""Lantern settings: one file, read from the environment.

Every default gives the embedded single-machine setup (SQLite, Qdrant local mode, a Celery
worker inside the portal process, the packaged models). DATABASE_URL, REDIS_URL, QDRANT_URL and
LLM_BASE_URL switch to the production services. Each variable is listed in README's table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else default


DATA_DIR = Path(env_str("LANTERN_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """An explicit SECRET_KEY wins; otherwise one is generated once and kept in the data dir."""
    explicit = env_str("SECRET_KEY")
    if explicit:
        return explicit
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
# Production mode: HTTPS-only cookies and HSTS. Off by default so the embedded portal works on http://localhost.
PRODUCTION = env_bool("LANTERN_PRODUCTION", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "kb",
    "ingestion",
    "chat",
    "accounts",
    "audit",
    "health",
    "ninja",  # the JSON API; as an installed app its docs page uses the packaged Swagger UI, not a CDN
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "accounts.oidc.sso_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'lantern.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the portal read while a worker (or `manage.py ingest` in another process) writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so worker processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "files")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it even before collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # the embedded portal serves static files without running collectstatic

# --- Upload limits ----------------------------------------------------------------------------
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 100)
ZIP_MAX_FILES = env_int("ZIP_MAX_FILES", 5000)
ZIP_MAX_TOTAL_MB = env_int("ZIP_MAX_TOTAL_MB", 2000)
# A member that inflates more than this many times its compressed size is treated as a zip bomb.
ZIP_MAX_RATIO = env_int("ZIP_MAX_RATIO", 200)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES", 1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Vector store -----------------------------------------------------------------------------
QDRANT_URL = env_str("QDRANT_URL")  # empty: embedded local mode on QDRANT_PATH
QDRANT_API_KEY = env_str("QDRANT_API_KEY") or None
QDRANT_PATH = Path(env_str("QDRANT_PATH", str(DATA_DIR / "qdrant")))
QDRANT_COLLECTION = env_str("QDRANT_COLLECTION", "lantern_chunks")

# --- Embedding --------------------------------------------------------------------------------
EMBEDDING_MODEL_PATH = env_str("EMBEDDING_MODEL_PATH")  # empty: the packaged all-MiniLM-L6-v2
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32)
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu")
CHUNK_OVERLAP_TOKENS = env_int("CHUNK_OVERLAP_TOKENS", 32)

# --- Retrieval --------------------------------------------------------------------------------
SEARCH_TOP_K = env_int("SEARCH_TOP_K", 5)  # passages handed to the model
# Candidates each side (dense, lexical) contributes before fusion.
SEARCH_PREFETCH = env_int("SEARCH_PREFETCH", 50)
# Below this cosine similarity to the question a passage does not count as found.
SEARCH_SCORE_FLOOR = env_float("SEARCH_SCORE_FLOOR", 0.2)
SEARCH_MAX_PER_DOCUMENT = env_int("SEARCH_MAX_PER_DOCUMENT", 2)  # adjacent chunks merge and count once

# --- Language model ---------------------------------------------------------------------------
LLM_BASE_URL = env_str("LLM_BASE_URL")  # empty: the packaged Qwen2.5 GGUF through xllamacpp, started on demand
LLM_MODEL = env_str("LLM_MODEL", "qwen2.5-coder-1.5b-instruct")
LLM_API_KEY = env_str("LLM_API_KEY", "not-needed")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 120.0)
# Longest answer prompt (estimated tokens, ~300 of them fixed instructions the server caches); passages are cut to
# fit. 900 holds three typical chunks and leaves the packaged model ~480 tokens to read per question, under 10 s at
# the ~50 tokens/s of 2 idle CPU cores (benchmarks/answer.py); a GPU server can take several thousand.
PROMPT_TOKEN_BUDGET = env_int("PROMPT_TOKEN_BUDGET", 900)
# The best passage reaches the model as at most this many tokens around its sentences that match the question;
# the others as two thirds of it (0: whole passages).
PROMPT_PASSAGE_TOKENS = env_int("PROMPT_PASSAGE_TOKENS", 0)
LOCAL_LLM_THREADS = env_int("LOCAL_LLM_THREADS", 0)  # 0: all cores
LOCAL_LLM_CONTEXT = env_int("LOCAL_LLM_CONTEXT", 4096)
LOCAL_LLM_PORT = env_int("LOCAL_LLM_PORT", 0)  # 0: a free port
# Retries after a connection error or 5xx, with openai's short backoff; more only hides an outage from the user.
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1)
# A GGUF file to serve locally instead of the packaged Qwen2.5 (which is assembled into DATA_DIR/models).
LOCAL_LLM_MODEL_PATH = env_str("LOCAL_LLM_MODEL_PATH")
# Longest answer the model may write, in tokens (about 14 tokens/s on 2 CPU cores with the packaged model).
ANSWER_MAX_TOKENS = env_int("ANSWER_MAX_TOKENS", 400)
# `manage.py serve` starts the local model in the background at start-up instead of on the first question.
LLM_WARM_START = env_bool("LLM_WARM_START", True)

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Embedded: kombu's filesystem transport (with atomic writes, portal/broker.py) in the data dir carries tasks
# between local processes.
CELERY_BROKER_URL = REDIS_URL or "lantern-filesystem://"
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600)}
    if REDIS_URL
    else {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # otherwise kombu writes it into the working directory
        "store_processed": False,
        "polling_interval": 0.25,
    }
)
if not REDIS_URL:
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "lantern")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "recover-stalled-documents": {"task": "ingestion.recover_stalled", "schedule": 300.0},
    "audit-retention": {"task": "audit.purge", "schedule": 24 * 3600.0},
    # Content health: each owner's list of documents overdue for review, emailed when email is configured.
    "review-reminders": {"task": "health.review_reminders", "schedule": env_float("REVIEW_REMINDER_HOURS", 168.0) * 3600},
}
# Run ingestion worker threads inside the portal process (`manage.py serve`). Default: on in embedded mode.
EMBEDDED_WORKER = env_bool("LANTERN_EMBEDDED_WORKER", not REDIS_URL)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 1)
# Documents per ingestion task: embedding is batched across the documents of one task, and more texts to sort by
# length means less padding (benchmarks/ingest.py: 16 -> 64 is 15% less model work on short abstracts, 7% on the handbook).
INGEST_BATCH_DOCUMENTS = env_int("INGEST_BATCH_DOCUMENTS", 64)
# A document whose worker has not reported for this long is considered abandoned and redone.
INGEST_STALL_SECONDS = env_int("INGEST_STALL_SECONDS", 600)

# --- Email (review reminders) ------------------------------------------------------------------
# No EMAIL_HOST: nothing is sent (owners still see their list on the portal).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.dummy.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "lantern@localhost")
# The portal's address as people reach it, for links in emails (e.g. https://lantern.example.com).
PORTAL_URL = env_str("PORTAL_URL")

# --- Auth, security -----------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
# "None" (with LANTERN_PRODUCTION, i.e. HTTPS) lets the session reach the chat widget's iframe on an intranet page of
# another site; the default Lax already works when the intranet and the portal share a site (a.corp.com, b.corp.com).
SESSION_COOKIE_SAMESITE = env_str("SESSION_COOKIE_SAMESITE", "Lax")
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
# Longest lifetime (exp - iat) of a widget sign-in token minted by an intranet backend.
WIDGET_TOKEN_MAX_SECONDS = env_int("WIDGET_TOKEN_MAX_SECONDS", 3600)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# The header the TLS proxy sets to "https" (it must overwrite the client's own); empty: no proxy is trusted.
_PROXY_SSL_HEADER = env_str("PROXY_SSL_HEADER", "X-Forwarded-Proto" if PRODUCTION else "")
SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https") if _PROXY_SSL_HEADER else None
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)  # behind the TLS proxy, which sets X-Forwarded-Proto
# HSTS preload commits a whole domain for good; not ours to decide for a company's internal portal.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Single sign-on (OpenID Connect, accounts/oidc.py) ------------------------------------------
# Off unless OIDC_RP_CLIENT_ID is set; username and password sign-in always stays.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
# The provider's issuer URL: its endpoints are read from <issuer>/.well-known/openid-configuration on first use.
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER")
# Or each endpoint by hand (these win over discovery).
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")  # the button says "Sign in with <this>"
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# JSON: claim value -> Django group name(s), e.g. {"hr-staff": "HR", "eng": ["Engineering", "Staff"]}.
OIDC_GROUP_MAP = env_str("OIDC_GROUP_MAP")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
OIDC_LEEWAY_SECONDS = env_int("OIDC_LEEWAY_SECONDS", 60)  # clock difference tolerated on exp / iat
OIDC_USE_PKCE = True
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
LOGIN_REDIRECT_URL_FAILURE = "login"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"] + (
    ["accounts.oidc.OIDCBackend"] if OIDC_ENABLED else []
)

# --- Audit log ----------------------------------------------------------------------------------
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 90)
# Question text is blanked after this many days (the event stays until AUDIT_RETENTION_DAYS).
AUDIT_QUESTION_TEXT_DAYS = env_int("AUDIT_QUESTION_TEXT_DAYS", AUDIT_RETENTION_DAYS)

# --- JSON API (portal/api.py) --------------------------------------------------------------------
# Rate limits, "N/period" (second, minute, hour, day) or "off": per user (their session and tokens together), per
# token, and for questions (each runs the model) per user on top of the first two.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "120/minute")
API_TOKEN_RATE_LIMIT = env_str("API_TOKEN_RATE_LIMIT", "60/minute")
API_ASK_RATE_LIMIT = env_str("API_ASK_RATE_LIMIT", "10/minute")

# --- Cache (rate limit counters) ------------------------------------------------------------------
# Embedded: this process's memory. With REDIS_URL every web process shares the counters in Redis.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "lantern"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "lantern"}
    )
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpx2": {"level": "WARNING"}, "sentence_transformers": {"level": "WARNING"}},
}
