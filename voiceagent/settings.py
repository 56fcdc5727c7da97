"""voiceagent settings: one env-driven module.

Every value comes from the environment (or a `.env` file beside `manage.py`), with embedded defaults that let
`make run` work on a machine with nothing but Python: SQLite under `var/`, in-memory channel layer and cache.
Malformed values fail at start with `ImproperlyConfigured` naming the variable.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

# Django classes that are generic only in django-stubs (ModelAdmin, TabularInline, ...) become subscriptable, so the
# console can subclass ModelAdmin[Call]; it adds __class_getitem__ and nothing else.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (true/false/1/0/yes/no), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}: must be between {minimum} and {maximum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0, maximum: float = 1e9) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name}: must be between {minimum} and {maximum}, got {number}")
    return number


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = _raw(name) or default
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(f"{name}: expected a URL with scheme {'/'.join(schemes)}, got a malformed value")
    return value.rstrip("/")


# --- Core -------------------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: required when DEBUG is off (set DEBUG=true for local development)")
    SECRET_KEY = "django-insecure-dev-only-key-do-not-use-in-production"  # noqa: S105 - DEBUG-only default

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not re.match(r"^https?://[^/\s]+$", _origin):
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS: {_origin!r} is not an origin like https://clinic.example")

# The public https URL Twilio and browsers reach us at. Twilio signatures are computed over it, never over whatever
# Host header a proxy forwarded.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https"))

TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE: {TIME_ZONE!r} is not an IANA time zone") from None
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"
# Times Django renders are labelled with their zone, in organizations.clock's format (core/formats/en).
FORMAT_MODULE_PATH = ["core.formats"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "organizations",
    "calls",
    "realtime",
    "fakes",  # the fake OpenAI/Twilio and the commands that drive them (serve, simulate_call); no models or urls
]

MIDDLEWARE = [
    "core.observability.RequestIdMiddleware",
    # `Server: voiceagent` instead of the ASGI server's name.
    "core.middleware.ServerHeaderMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy from SECURE_CSP (off when the dict is empty, e.g. in development).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Cache-Control: no-store on everything but static files (pages and API answers carry patient data).
    "core.middleware.NoStoreMiddleware",
    # Serves the console's and the API docs' assets from this process (no CDN, no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Caller-side CORS (per-clinic origins) and the API body limit answer before sessions/CSRF run.
    "calls.api.middleware.CallerCorsMiddleware",
    "core.middleware.ApiBodyLimitMiddleware",
    # Query and form text a database cannot hold (NUL) is a 400, not a 500 from PostgreSQL.
    "core.middleware.TextInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Absolute console session lifetime (the idle timeout is SESSION_COOKIE_AGE, renewed on every request).
    "organizations.auth.SessionLifetimeMiddleware",
    # Console pages in the clinic's time zone (one zone per page; operators see UTC, and the header says so).
    "organizations.clock.ClinicTimeZoneMiddleware",
    # Who is acting, for the audit rows of this request's reads and changes.
    "calls.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees view exceptions: a lost database connection answers 503 + Retry-After (core/resilience.py).
    "core.resilience.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "voiceagent.urls"
WSGI_APPLICATION = "voiceagent.wsgi.application"
ASGI_APPLICATION = "voiceagent.asgi.application"

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
                "django.template.context_processors.csp",  # {{ csp_nonce }} for the few inline blocks
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
# In development assets come straight from the apps; deployments run `collectstatic` once per release.
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"

# --- Database ---------------------------------------------------------------------------------------------------

_DEFAULT_DB = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_db_url = env_str("DATABASE_URL", _DEFAULT_DB) or _DEFAULT_DB
if urlsplit(_db_url).scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
    raise ImproperlyConfigured("DATABASE_URL: expected sqlite:///path or postgres://user@host:port/name")
try:
    _db = env.db_url_config(_db_url)
except Exception as exc:  # django-environ raises a mix of errors for malformed URLs
    raise ImproperlyConfigured(f"DATABASE_URL: could not parse ({type(exc).__name__})") from None

DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 8, minimum=1, maximum=200)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 5.0, minimum=0.1, maximum=60)

if _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's pool with health checks instead of CONN_MAX_AGE: persistent connections leak under ASGI (one per
    # thread), and a checked pool replaces connections a database restart killed (docs/facts.md#pool).
    _db["CONN_MAX_AGE"] = 0
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,  # waiting longer than this for a connection answers 503, never hangs
    }
    _db["OPTIONS"].setdefault("connect_timeout", 3)
else:
    VAR_DIR.mkdir(exist_ok=True)
    # WAL + a busy timeout let the single-file default serve concurrent ASGI requests without "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;"}
    )
    _db["TEST"] = {"NAME": ":memory:"}

DATABASES = {"default": _db}

# --- Redis: channel layer and cache -----------------------------------------------------------------------------

REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults socket_timeout to 5 s, the same as channels-redis' BZPOPMIN wait, so idle
                # consumers were torn down every ~5 s; 10 s keeps them alive (docs/facts.md#redis-socket-timeout).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "socket_connect_timeout": 2}],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "voiceagent"),
                "capacity": 500,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "voiceagent"),
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "voiceagent"}}

# --- Upstream services ------------------------------------------------------------------------------------------

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", "https://api.openai.com/v1", schemes=("http", "https"))
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60)
# Signs the project's webhooks (`realtime.call.incoming` for phone calls over SIP): the `whsec_…` secret shown when
# the webhook is created in the OpenAI project. Empty: POST /openai/webhook refuses every delivery.
OPENAI_WEBHOOK_SECRET = env_str("OPENAI_WEBHOOK_SECRET")
REALTIME_MODEL = env_str("REALTIME_MODEL", "gpt-realtime-2.1")
# Transcribes the caller's speech inside the Realtime session (what is stored and triaged). Checked at start against
# the models the OpenAI SDK lists (realtime/catalog.py): an unknown or shut-down model refuses to start.
REALTIME_TRANSCRIPTION_MODEL = env_str("REALTIME_TRANSCRIPTION_MODEL", "gpt-realtime-whisper")
# What a call costs (calls/ledger.py): USD per 1M tokens, or per minute of audio for duration-billed transcription.
# From OpenAI's model pages as read on 2026-12-02 (docs/facts.md#prices); REALTIME_PRICES_JSON (a JSON object of
# model -> prices) replaces the entry of each model it names, so a price change needs no release.
REALTIME_PRICE_KEYS = frozenset(
    {
        "text_input",
        "text_cached_input",
        "text_output",
        "audio_input",
        "audio_cached_input",
        "audio_output",
        "per_minute",  # transcription billed by audio duration
        "input",  # transcription billed by tokens
        "output",
    }
)
REALTIME_PRICES: dict[str, dict[str, str]] = {
    "gpt-realtime-2.1": {
        "text_input": "4.00",
        "text_cached_input": "0.40",
        "text_output": "24.00",
        "audio_input": "32.00",
        "audio_cached_input": "0.40",
        "audio_output": "64.00",
    },
    "gpt-realtime-2": {
        "text_input": "4.00",
        "text_cached_input": "0.40",
        "text_output": "24.00",
        "audio_input": "32.00",
        "audio_cached_input": "0.40",
        "audio_output": "64.00",
    },
    "gpt-realtime-2.1-mini": {
        "text_input": "0.60",
        "text_cached_input": "0.06",
        "text_output": "2.40",
        "audio_input": "10.00",
        "audio_cached_input": "0.30",
        "audio_output": "20.00",
    },
    # Deprecated (shuts down 2027-01-20). Text input $0.60 is on OpenAI's page; the rest is assumed equal to
    # gpt-realtime-2.1-mini and is a placeholder to check.
    "gpt-realtime-mini": {
        "text_input": "0.60",
        "text_cached_input": "0.06",
        "text_output": "2.40",
        "audio_input": "10.00",
        "audio_cached_input": "0.30",
        "audio_output": "20.00",
    },
    "gpt-realtime-whisper": {"per_minute": "0.017"},
    "gpt-transcribe": {"per_minute": "0.0045"},
    "gpt-4o-transcribe": {"input": "2.50", "output": "10.00"},
    "gpt-4o-mini-transcribe": {"input": "1.25", "output": "5.00"},
}


def _prices_override(name: str) -> dict[str, dict[str, str]]:
    value = _raw(name)
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a JSON object of model -> prices") from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured(f"{name}: expected a JSON object of model -> prices")
    prices: dict[str, dict[str, str]] = {}
    for model, table in data.items():
        if not isinstance(table, dict) or not table:
            raise ImproperlyConfigured(f"{name}: the prices of {model!r} must be a non-empty JSON object")
        for key, price in table.items():
            if key not in REALTIME_PRICE_KEYS:
                raise ImproperlyConfigured(
                    f"{name}: unknown price {key!r} for {model!r}; use {', '.join(sorted(REALTIME_PRICE_KEYS))}"
                )
            if isinstance(price, bool) or not isinstance(price, int | float | str):
                raise ImproperlyConfigured(f"{name}: the price {key!r} of {model!r} must be a number")
            try:
                number = float(price)
            except ValueError:
                raise ImproperlyConfigured(f"{name}: the price {key!r} of {model!r} must be a number") from None
            if not 0 <= number < 1e6:
                raise ImproperlyConfigured(f"{name}: the price {key!r} of {model!r} must be between 0 and 1e6")
        prices[str(model)] = {key: str(price) for key, price in table.items()}
    return prices


REALTIME_PRICES |= _prices_override("REALTIME_PRICES_JSON")
# Post-call summaries (calls/summaries.py): the Responses API model, how long one request may take (the worker
# retries with back-off, so no SDK retries), and how much transcript is sent (longer ones are cut, with a note).
# gpt-5.4-mini: the SDK's current small model (openai 3.57 `ChatModel`; gpt-5.4-nano is deprecated).
SUMMARY_MODEL = env_str("SUMMARY_MODEL", "gpt-5.4-mini")
SUMMARY_TIMEOUT_SECONDS = env_float("SUMMARY_TIMEOUT_SECONDS", 30.0, minimum=1.0, maximum=300)
SUMMARY_TRANSCRIPT_CHARS = env_int("SUMMARY_TRANSCRIPT_CHARS", 24_000, minimum=1_000, maximum=400_000)
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_API_BASE_URL = env_url("TWILIO_API_BASE_URL", "https://api.twilio.com", schemes=("http", "https"))
if TWILIO_ACCOUNT_SID and not re.match(r"^AC[0-9a-fA-F]{32}$", TWILIO_ACCOUNT_SID):
    raise ImproperlyConfigured("TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits")
# A media socket that has not sent a valid `start` (with its stream token) by then is closed: Twilio sends
# `connected` and `start` at once, so only a stray or hostile socket waits longer.
TWILIO_MEDIA_START_TIMEOUT_SECONDS = env_float("TWILIO_MEDIA_START_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60)
# On-call SMS pages go out from the clinic's first Twilio number, or this one (E.164) for clinics without one.
TWILIO_MESSAGING_FROM = env_str("TWILIO_MESSAGING_FROM")
if TWILIO_MESSAGING_FROM and not re.match(r"^\+[1-9][0-9]{6,14}$", TWILIO_MESSAGING_FROM):
    raise ImproperlyConfigured("TWILIO_MESSAGING_FROM: expected an E.164 number such as +14155550123")
# On-call e-mail pages: Django's mail framework (MAILERS, Django 6.1). The console backend (stdout) by default; SMTP
# when EMAIL_HOST is set.
_EMAIL_HOST = env_str("EMAIL_HOST")
MAILERS = {
    "default": (
        {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _EMAIL_HOST,
                "port": env_int("EMAIL_PORT", 25, minimum=1, maximum=65535),
                "username": env_str("EMAIL_HOST_USER"),
                "password": env_str("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "timeout": env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120),
            },
        }
        if _EMAIL_HOST
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "voiceagent <pages@voiceagent.invalid>")
# Clinic webhooks go only to public https addresses (SSRF guard); true allows http and private/loopback targets,
# for local development and the test suite's receiver only.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)

# --- Fault tolerance (core/resilience.py, core/drain.py, calls/reaper.py, realtime/breaker.py) -----------------

# Every HTTP request starts its answer within this many seconds or gets 503 deadline_exceeded: a frozen database
# must not hang requests (the pool's DB_POOL_TIMEOUT only bounds waiting for a connection). Above the OpenAI
# time-out, so a slow mint still answers with its own 504.
REQUEST_DEADLINE_SECONDS = env_float(
    "REQUEST_DEADLINE_SECONDS", max(5.5, OPENAI_TIMEOUT_SECONDS + 0.5), minimum=1.0, maximum=600
)
# After this many consecutive minting failures OpenAI is not asked for this long (503 upstream_unavailable).
OPENAI_BREAKER_THRESHOLD = env_int("OPENAI_BREAKER_THRESHOLD", 5, minimum=1, maximum=1000)
OPENAI_BREAKER_RESET_SECONDS = env_float("OPENAI_BREAKER_RESET_SECONDS", 30.0, minimum=0.1, maximum=3600)
# Processes bump the calls they hold this often; the reaper ends live calls idle for REAPER_IDLE_SECONDS.
LIVE_CALL_HEARTBEAT_SECONDS = env_float("LIVE_CALL_HEARTBEAT_SECONDS", 30.0, minimum=0.2, maximum=600)
REAPER_IDLE_SECONDS = env_float("REAPER_IDLE_SECONDS", 120.0, minimum=1.0, maximum=86_400)
if REAPER_IDLE_SECONDS < 2 * LIVE_CALL_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("REAPER_IDLE_SECONDS: must be at least twice LIVE_CALL_HEARTBEAT_SECONDS")
# A draining process exits after this long even if calls are still live (longer than the longest call allowed).
DRAIN_TIMEOUT_SECONDS = env_float("DRAIN_TIMEOUT_SECONDS", 3 * 3600.0, minimum=1.0, maximum=86_400)

# --- Auth and API -----------------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Validates nothing: revokes the user's API tokens whenever a password is set, on every path.
    {"NAME": "organizations.auth.PasswordChangeRevokesTokens"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # `Authorization: Token <key>` as DRF's, but tokens expire after API_TOKEN_TTL_HOURS.
        "organizations.auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded in size and nesting: answers 413/400 where DRF's JSONParser would read unbounded or crash.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.LimitedJSONParser"],
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    # OPTIONS describes a body only for views with a serializer_class (the action views have none).
    "DEFAULT_METADATA_CLASS": "core.api.metadata.ApiMetadata",
    # 0: daphne is hit directly unless an operator sets it; otherwise a rotating X-Forwarded-For evades throttles.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0, maximum=10),
}

# Caller-side rate limits (per client IP, per clinic), e.g. "30/min"; counted in the cache (Redis when configured).
CALLER_THROTTLE_RATES = {
    "caller_ip": env_str("THROTTLE_CALLER_IP_RATE", "30/min"),
    "caller_org": env_str("THROTTLE_CALLER_ORG_RATE", "300/min"),
    # New calls per source address and clinic: a share of caller_org, so a small botnet cannot exhaust it (F5).
    "caller_org_ip": env_str("THROTTLE_CALLER_ORG_IP_RATE", "10/min"),
}
for _scope, _rate in CALLER_THROTTLE_RATES.items():
    if not re.match(r"^\s*\d+\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$", _rate):
        raise ImproperlyConfigured(f"THROTTLE_{_scope.upper()}_RATE: expected a rate like 30/min, got {_rate!r}")
# Largest JSON body the API reads; bigger ones answer 413 payload_too_large.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 262_144, minimum=1024, maximum=10_000_000)

SPECTACULAR_SETTINGS = {
    "TITLE": "voiceagent API",
    "DESCRIPTION": "AI voice receptionist for outpatient clinics.",
    "VERSION": "0.1.0",
    # 3.1 (JSON Schema 2020-12): the schema can say that no key holds a NUL (patternProperties; core/api/schema.py).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/schema and /api/docs: public only with PUBLIC_API_DOCS (default: in DEBUG), otherwise console staff only.
    "SERVE_PERMISSIONS": ["core.api.schema.ApiDocsVisible"],
    "SWAGGER_UI_DIST": "SIDECAR",  # assets served by this server: clinics and these machines are offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every path is routed with and without a trailing slash; the schema lists the canonical (slashless) one.
    "PREPROCESSING_HOOKS": ["core.api.schema.drop_trailing_slash_duplicates"],
    # The enum hook is drf-spectacular's default; ours writes the text rule (no NUL) into every input string.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api.schema.document_text_rules"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status`/`channel`; name their enums instead of letting hashes decide.
    "ENUM_NAME_OVERRIDES": {
        "CallChannelEnum": "calls.models.Call.Channel",
        "CallStatusEnum": "calls.models.Call.Status",
        "EscalationStatusEnum": "calls.models.Escalation.Status",
        "EscalationLevelEnum": "organizations.vocabulary.EscalationLevel",
        "EscalationPhraseLevelEnum": "organizations.vocabulary.PHRASE_LEVEL_CHOICES",
        "WebChannelEnum": ["web"],
        "SpeakerEnum": "calls.models.TranscriptSegment.Speaker",
        "ReportedSpeakerEnum": "calls.api.serializers.REPORTED_SPEAKER_CHOICES",
        "LiveCallStatusEnum": ["in_progress"],
    },
}

# --- Logging ----------------------------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL: expected DEBUG/INFO/WARNING/ERROR/CRITICAL, got {LOG_LEVEL!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.observability.ContextFilter"}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s call_id=%(call_id)s %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers (a DEBUG console line, mail to ADMINS) bypass the context filter, which keeps one
        # record on one line and database error text out of the log (core/observability.py): only ours.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Our own request line replaces these; Django's would print full URLs with query strings.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
    },
}

# --- Security ---------------------------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
# A refused CSRF check under /api/ answers in the API's error shape (core/errors.py).
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# A failed CSRF check under /api/ answers in the API's error shape (csrf_failed), elsewhere Django's page.
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
# X-Request-ID from the request is used (and written into audit rows) only when a proxy in front sets it itself;
# otherwise every request gets our own id, so a client cannot choose what the audit trail correlates.
TRUST_REQUEST_ID_HEADER = env_bool("TRUST_REQUEST_ID_HEADER", False)
# The OpenAPI schema and Swagger UI (/api/schema, /api/docs) and the demo call page (/demo/call/): open to anyone
# in development, console staff only in production unless switched on.
PUBLIC_API_DOCS = env_bool("PUBLIC_API_DOCS", DEBUG)
PUBLIC_DEMO_PAGE = env_bool("PUBLIC_DEMO_PAGE", DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1_048_576, minimum=1024, maximum=50_000_000)

# --- Patient-data safeguards: sessions, lockout, tokens, transport ------------------------------------------------
# HIPAA 164.312(a)(2)(iii) automatic logoff and (e) transmission security (docs/facts.md#session-security).

# Console sessions end after this much inactivity (renewed on every request) ...
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 15 * 60, minimum=60, maximum=24 * 3600)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# ... and this long after login however active they were (organizations.auth.SessionLifetimeMiddleware).
SESSION_ABSOLUTE_LIFETIME_SECONDS = env_int(
    "SESSION_ABSOLUTE_LIFETIME_SECONDS", 12 * 3600, minimum=300, maximum=7 * 24 * 3600
)
if SESSION_ABSOLUTE_LIFETIME_SECONDS < SESSION_COOKIE_AGE:
    raise ImproperlyConfigured("SESSION_ABSOLUTE_LIFETIME_SECONDS: must not be shorter than the idle timeout")
# Open board sockets re-check their session, user and memberships this often (and before every push and refresh):
# a logout, deactivation or removal from the clinic closes them within this time.
BOARD_RECHECK_SECONDS = env_float("BOARD_RECHECK_SECONDS", 5.0, minimum=0.1, maximum=60)
# Without Redis (the in-memory channel layer reaches only its own process) open boards poll the notification outbox
# this often, so an escalation raised by another process shows within about this long; 0 turns the poll off.
BOARD_FEED_POLL_SECONDS = env_float("BOARD_FEED_POLL_SECONDS", 0.5, minimum=0, maximum=60)
# API tokens (Authorization: Token <key>) stop working this long after they were issued.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 12, minimum=1, maximum=24 * 30)

# Failed logins: this many for one username (or from one address) within the window lock it out for a while,
# even with the right password (organizations.auth.LockoutModelBackend). An address gets more room than a username:
# a clinic's front desk shares one.
AUTHENTICATION_BACKENDS = ["organizations.auth.LockoutModelBackend"]
LOGIN_LOCKOUT_FAILURES = env_int("LOGIN_LOCKOUT_FAILURES", 5, minimum=1, maximum=100)
LOGIN_LOCKOUT_IP_FAILURES = env_int("LOGIN_LOCKOUT_IP_FAILURES", 20, minimum=1, maximum=10_000)
LOGIN_LOCKOUT_WINDOW_SECONDS = env_int("LOGIN_LOCKOUT_WINDOW_SECONDS", 15 * 60, minimum=10, maximum=24 * 3600)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=10, maximum=24 * 3600)
# Sign-in attempts per address (console form and POST /api/auth/token, right or wrong), e.g. "30/min": each one
# hashes a password, and a front desk shares one address.
THROTTLE_LOGIN_IP_RATE = env_str("THROTTLE_LOGIN_IP_RATE", "30/min")
if not re.match(r"^\s*\d+\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$", THROTTLE_LOGIN_IP_RATE):
    raise ImproperlyConfigured(f"THROTTLE_LOGIN_IP_RATE: expected a rate like 30/min, got {THROTTLE_LOGIN_IP_RATE!r}")

# HTTPS everywhere in production (DEBUG off); each can be overridden, e.g. SECURE_SSL_REDIRECT=false for the test
# suite (the test client speaks http) or behind a proxy that already redirects.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load-balancer probes speak plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):  # only behind a proxy that sets X-Forwarded-Proto itself
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0, maximum=63_072_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy: only this origin's scripts, styles, images and sockets; never framed. The one inline
# script/style block (the API docs' Swagger UI start-up, templates/drf_spectacular/swagger_ui.html) carries the
# per-response nonce. Style attributes are allowed (console tables use a few; they cannot run code or load from
# elsewhere, since img-src/font-src stay 'self').
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "style-src-attr": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
