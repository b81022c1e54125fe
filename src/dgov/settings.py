"""Django settings for dgov, read from environment variables (12-factor).

The defaults describe the embedded mode: SQLite (WAL) under ``var/``, a development secret
key and keys generated on first use. ``DGOV_ENV=production`` turns the defaults into refusals:
the process will not start with the development secret key, DEBUG on, or no master key.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent  # src/dgov
PROJECT_DIR = BASE_DIR.parent.parent  # repository root when run from a checkout


def env(name: str, default: str | None = None) -> str | None:
    """Return the environment variable ``name`` or ``default``."""
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    """Return a boolean environment variable (1/true/yes/on are true)."""
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Return a comma-separated environment variable as a list."""
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DGOV_ENV = env("DGOV_ENV", "development")
PRODUCTION = DGOV_ENV == "production"
TESTING = env_bool("DGOV_TESTING", False)

DATA_DIR = Path(env("DGOV_DATA_DIR", str(PROJECT_DIR / "var"))).resolve()

DEV_SECRET_KEY = "dgov-development-secret-key-not-for-production"  # noqa: S105
SECRET_KEY = env("DGOV_SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DGOV_DEBUG", not PRODUCTION and not TESTING)

if PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "DGOV_ENV=production requires DGOV_SECRET_KEY: at least 32 random characters, not the default."
        )
    if DEBUG:
        raise ImproperlyConfigured("DGOV_ENV=production refuses to start with DGOV_DEBUG on.")
    if not env("DGOV_MASTER_KEY"):
        raise ImproperlyConfigured(
            "DGOV_ENV=production requires DGOV_MASTER_KEY (32 hex characters, the SM4 key-encryption key)."
        )

ALLOWED_HOSTS = env_list("DGOV_ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DGOV_CSRF_TRUSTED_ORIGINS", "")
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For gives the audit log's client IP.
TRUSTED_PROXIES = env_list("DGOV_TRUSTED_PROXIES", "")
SITE_URL = env("DGOV_SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "dgov.kernel",
    "dgov.identity",
    "dgov.registry",
    "dgov.catalog",
    "dgov.exchange",
    "dgov.quality",
    "dgov.linkage",
    "dgov.licenses",
    "dgov.services",
    "dgov.oidc",
    "dgov.web",
]

MIDDLEWARE = [
    "dgov.kernel.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dgov.kernel.audit_context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "dgov.identity.middleware.SessionActivityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dgov.kernel.observability.MetricsMiddleware",
]

ROOT_URLCONF = "dgov.urls"
WSGI_APPLICATION = "dgov.wsgi.application"
ASGI_APPLICATION = "dgov.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dgov.web.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATA_DIR.mkdir(parents=True, exist_ok=True)
_default_db = f"sqlite:///{DATA_DIR / 'dgov.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL", _default_db), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock at BEGIN,
        # so a transaction never fails half-way when it upgrades from read to write.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=20000; PRAGMA cache_size=-65536;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "identity.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Test users are created by the hundred; argon2's deliberate cost is not what the tests measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# OWASP ASVS 4.0 L2 (ADR 0012): 12+ characters, passphrases up to 256, common and predictable
# passwords refused, no composition rules. Applied when a password is set, not at login.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "dgov.identity.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 256}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "dgov.identity.passwords.PredictablePasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"

# --- Authentication: lockout, second factors, sessions (dgov.identity; ADR 0012) ------------------
# No forced password rotation unless a deployment profile asks for it (0 = off).
PASSWORD_MAX_AGE_DAYS = int(env("DGOV_PASSWORD_MAX_AGE_DAYS", "0") or 0)
# Account kinds that must pass a second factor (staff and superusers always must).
MFA_REQUIRED_KINDS = env_list("DGOV_MFA_REQUIRED_KINDS", "official,admin")
LOGIN_ACCOUNT_MAX_FAILURES = int(env("DGOV_LOGIN_ACCOUNT_MAX_FAILURES", "5") or 5)
LOGIN_ACCOUNT_LOCK_SECONDS = int(env("DGOV_LOGIN_ACCOUNT_LOCK_SECONDS", "60") or 60)
LOGIN_IP_MAX_FAILURES = int(env("DGOV_LOGIN_IP_MAX_FAILURES", "50") or 50)
LOGIN_IP_LOCK_SECONDS = int(env("DGOV_LOGIN_IP_LOCK_SECONDS", "300") or 300)
LOGIN_LOCK_MAX_SECONDS = int(env("DGOV_LOGIN_LOCK_MAX_SECONDS", "3600") or 3600)
REAUTH_SECONDS = int(env("DGOV_REAUTH_SECONDS", "300") or 300)
TOTP_ISSUER = env("DGOV_TOTP_ISSUER", "dgov")
# Longest authorization of an enterprise agent (经办人), in days (dgov.identity.agents).
AGENT_MAX_DAYS = int(env("DGOV_AGENT_MAX_DAYS", "365") or 365)

# --- Internationalization ---------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files: our own and those installed from npm -----------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
NODE_MODULES = Path(env("DGOV_NODE_MODULES", str(PROJECT_DIR / "node_modules")))
STATICFILES_DIRS = [
    (f"vendor/{name}", NODE_MODULES / package / sub)
    for name, package, sub in [("htmx", "htmx.org", "dist"), ("swagger-ui", "swagger-ui-dist", "")]
    if (NODE_MODULES / package / sub).is_dir()
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("DGOV_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DGOV_SECURE_COOKIES", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Background work --------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks.backends.immediate.ImmediateBackend"
            if env_bool("DGOV_TASKS_IMMEDIATE", False)
            else "django_tasks_db.DatabaseBackend"
        ),
    }
}
# The worker writes a heartbeat; /readyz reports it missing after this many seconds.
# /metrics: with a token, scrapers send "Authorization: Bearer <token>"; without one, production
# answers loopback clients only.
METRICS_TOKEN = env("DGOV_METRICS_TOKEN", "")
WORKER_HEARTBEAT_MAX_AGE = int(env("DGOV_WORKER_HEARTBEAT_MAX_AGE", "30") or 30)
# Outbox delivery: failed events retry after BASE·2^(n-1) seconds (capped), then turn "dead".
OUTBOX_MAX_ATTEMPTS = int(env("DGOV_OUTBOX_MAX_ATTEMPTS", "8") or 8)
OUTBOX_BACKOFF_BASE = float(env("DGOV_OUTBOX_BACKOFF_BASE", "2") or 2)
OUTBOX_BACKOFF_MAX = float(env("DGOV_OUTBOX_BACKOFF_MAX", "3600") or 3600)

# --- Keys and cryptography --------------------------------------------------------------------
# The SM4 key-encryption key (KEK) that wraps every data key. Embedded mode generates one under
# DATA_DIR on first use; production must supply it (from an HSM/KMS export or a secret store).
MASTER_KEY_HEX = env("DGOV_MASTER_KEY")
MASTER_KEY_FILE = DATA_DIR / "keys" / "master.key"
# Signed audit checkpoints are also appended here, outside the database, so that truncating the
# audit table together with its checkpoint table is still detected.
AUDIT_CHECKPOINT_FILE = Path(env("DGOV_AUDIT_CHECKPOINT_FILE", str(DATA_DIR / "audit-checkpoints.jsonl")))
# How long a process trusts its cached keys and calendar before re-reading the database, so that
# a rotation or a calendar override made by another process is picked up.
KEY_CACHE_SECONDS = int(env("DGOV_KEY_CACHE_SECONDS", "60") or 60)
CALENDAR_CACHE_SECONDS = int(env("DGOV_CALENDAR_CACHE_SECONDS", "300") or 300)
AUDIT_CHECKPOINT_EVERY = int(env("DGOV_AUDIT_CHECKPOINT_EVERY", "1000") or 1000)

# --- OpenID Connect provider (dgov.oidc; see docs/oidc.md) ---------------------------------------
# The issuer is fixed by configuration, never taken from the Host header: it is in every token.
OIDC_ISSUER = (env("DGOV_OIDC_ISSUER", SITE_URL) or "").rstrip("/")
OIDC_ACCESS_TOKEN_SECONDS = int(env("DGOV_OIDC_ACCESS_TOKEN_SECONDS", "600") or 600)
OIDC_ID_TOKEN_SECONDS = int(env("DGOV_OIDC_ID_TOKEN_SECONDS", "600") or 600)
OIDC_REFRESH_TOKEN_SECONDS = int(env("DGOV_OIDC_REFRESH_TOKEN_SECONDS", str(30 * 86400)) or 30 * 86400)
OIDC_CODE_SECONDS = min(60, int(env("DGOV_OIDC_CODE_SECONDS", "60") or 60))  # never more than 60 s
OIDC_ACCESS_TOKEN_ALG = env("DGOV_OIDC_ACCESS_TOKEN_ALG", "RS256")
# Identity brokering: seconds each back-channel call to an upstream provider may take (docs/oidc.md).
OIDC_UPSTREAM_TIMEOUT = float(env("DGOV_OIDC_UPSTREAM_TIMEOUT", "10") or 10)

# --- Notifications (simulated gateways record what a real provider would send) ------------------
NOTIFY_SMS_BACKEND = env("DGOV_SMS_BACKEND", "dgov.kernel.notify.SimulatedSmsGateway")
NOTIFY_EMAIL_BACKEND = env("DGOV_EMAIL_BACKEND", "dgov.kernel.notify.SimulatedEmailGateway")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend" if TESTING else (
    "django.core.mail.backends.console.EmailBackend"
)

# --- Demo province ----------------------------------------------------------------------------
DEMO_PROVINCE_CODE = env("DGOV_DEMO_PROVINCE", "370000")  # a real GB/T 2260 province code

# --- Logging: JSON lines with the request id ----------------------------------------------------
LOG_LEVEL = env("DGOV_LOG_LEVEL", "INFO")
# Registry API reads of one record by uid for API clients skip the Django request stack (ADR 0013).
REGISTRY_FAST_READ = env_bool("DGOV_REGISTRY_FAST_READ", True)
# Fast-path reads are journalled locally before the answer leaves, the journal synced to disk this
# often and moved into AccessLog by `dgov worker` (ADR 0013).
ACCESS_JOURNAL_SYNC_SECONDS = float(env("DGOV_ACCESS_JOURNAL_SYNC_SECONDS", "0.2") or 0.2)
# Jobs `dgov worker` runs on every pass (at most once a second), as dotted paths.
WORKER_PERIODIC_JOBS = [
    "dgov.registry.accesslog.ingest_journals",
    "dgov.exchange.subscriptions.send_due",
    "dgov.exchange.federation_exchange.sync_due",
    "dgov.quality.rectification.recheck_due",
    "dgov.quality.rectification.escalation_job",
    "dgov.licenses.credentials.publish_due",  # status lists re-signed in batches (docs/licences.md)
    "dgov.licenses.trust.sync_due",  # peers' e-licence trust lists (互认, docs/licences.md)
    "dgov.services.applications.sla_job",  # 办件 SLA warnings / escalation (docs/services.md)
    "dgov.services.ratings.rectification_overdue_job",  # 差评整改 overdue marks (docs/services.md)
    "dgov.services.offers.expiry_job",  # 主动服务 offers past their last day (docs/services.md)
]
# 办件 SLA clock (docs/services.md): warn this many working days before the promised due date.
SERVICES_SLA_WARNING_DAYS = int(env("DGOV_SERVICES_SLA_WARNING_DAYS", "2") or 2)
# 主动服务 (docs/services.md): the 一件事 bundle a new population.event record offers by its kind, and what
# the offer pre-fills: combined-form field → "<event|person|holder|other>.<registry field>"; open this many days.
SERVICES_OFFER_RULES = {
    "birth": {
        "bundle": "newborn",
        "prefill": {
            "child_name": "person.name",
            "child_sex": "person.sex",
            "born_on": "event.date",
            "certificate_no": "event.document_no",
            "guardian_id_number": "holder.id_number",
        },
    },
    "marriage": {
        "bundle": "marriage",
        "prefill": {"spouse_name": "other.name", "spouse_id_number": "other.id_number", "married_on": "event.date"},
    },
}
SERVICES_OFFER_DAYS = int(env("DGOV_SERVICES_OFFER_DAYS", "90") or 90)
# 好差评 (docs/services.md): a bad rating is verified and rectified within this many working days.
SERVICES_RATING_RECTIFY_DAYS = int(env("DGOV_SERVICES_RATING_RECTIFY_DAYS", "15") or 15)
# The 办结 notice (with the result link) goes through these channels; SMS when the account has a mobile number.
SERVICES_RESULT_NOTIFY_CHANNELS = ("in_app", "sms")
# 数据授权预填 (docs/services.md): a pre-fill consent is usable this many hours; a licence used in place of a
# paper material is consented to the competent department until the legal due date plus this many days.
SERVICES_PREFILL_CONSENT_HOURS = int(env("DGOV_SERVICES_PREFILL_CONSENT_HOURS", "24") or 24)
SERVICES_PREFILL_LICENCE_EXTRA_DAYS = int(env("DGOV_SERVICES_PREFILL_LICENCE_EXTRA_DAYS", "30") or 30)
# `dgov demo`: how many historical applications (办件历史) the demo generates for the metrics dashboard.
SERVICES_DEMO_HISTORY_COUNT = int(env("DGOV_SERVICES_DEMO_HISTORY_COUNT", "600") or 600)
# Rectification work orders (整改工单, docs/quality.md): re-check a registry this many seconds after its
# last change (at the latest this many after the first); level-2 escalation after further working days.
QUALITY_RECHECK_DEBOUNCE_SECONDS = int(env("DGOV_QUALITY_RECHECK_DEBOUNCE_SECONDS", "300") or 300)
QUALITY_RECHECK_MAX_WAIT_SECONDS = int(env("DGOV_QUALITY_RECHECK_MAX_WAIT_SECONDS", "3600") or 3600)
QUALITY_ORDER_DEADLINE_DAYS = {"high": 5, "medium": 10, "low": 20}
QUALITY_ORDER_ESCALATION_DAYS = int(env("DGOV_QUALITY_ORDER_ESCALATION_DAYS", "5") or 5)
# Exchange webhooks (docs/exchange.md): waits after each failed attempt (then dead), the HTTP timeout,
# and how many failed attempts in a row pause a subscription.
EXCHANGE_WEBHOOK_BACKOFF = [30, 120, 600, 3600, 21600]
EXCHANGE_WEBHOOK_TIMEOUT = float(env("DGOV_EXCHANGE_WEBHOOK_TIMEOUT", "10") or 10)
EXCHANGE_WEBHOOK_PAUSE_AFTER = int(env("DGOV_EXCHANGE_WEBHOOK_PAUSE_AFTER", "10") or 10)
# Federation (级联, docs/exchange.md): this instance's code among peers (default: the province code),
# the clock window of signed requests (seconds), the timeout of calls to peers and the sync period.
FEDERATION_INSTANCE = env("DGOV_FEDERATION_INSTANCE", DEMO_PROVINCE_CODE)
FEDERATION_CLOCK_SKEW = int(env("DGOV_FEDERATION_CLOCK_SKEW", "300") or 300)
FEDERATION_TIMEOUT = float(env("DGOV_FEDERATION_TIMEOUT", "10") or 10)
FEDERATION_SYNC_SECONDS = int(env("DGOV_FEDERATION_SYNC_SECONDS", "300") or 300)
# E-licence verification (证照核验, docs/licences.md): public verifications per client address and minute
# (0 = no limit), and the age (seconds) past which an offline verifier no longer trusts a published status list.
LICENCE_VERIFY_RATE_PER_MINUTE = int(env("DGOV_LICENCE_VERIFY_RATE_PER_MINUTE", "120") or 120)
LICENCE_OFFLINE_MAX_STATUS_AGE = int(env("DGOV_LICENCE_OFFLINE_MAX_STATUS_AGE", "86400") or 86400)
# Mutual recognition (互认, docs/licences.md): resolvers asked after this platform's own issuers; how often
# peers' trust lists are fetched, how long this instance's list may be relied on, the fetch timeout, how long
# at most a peer issuer's status list is used before it is fetched again, and how long a failed fetch waits.
LICENCE_TRUST_RESOLVERS = ["dgov.licenses.trust.PeerIssuers"]
LICENCE_TRUST_SYNC_SECONDS = int(env("DGOV_LICENCE_TRUST_SYNC_SECONDS", "300") or 300)
LICENCE_TRUST_LIST_VALIDITY_SECONDS = int(env("DGOV_LICENCE_TRUST_LIST_VALIDITY_SECONDS", "86400") or 86400)
LICENCE_TRUST_FETCH_TIMEOUT = float(env("DGOV_LICENCE_TRUST_FETCH_TIMEOUT", "5") or 5)
LICENCE_REMOTE_STATUS_MAX_AGE = int(env("DGOV_LICENCE_REMOTE_STATUS_MAX_AGE", "3600") or 3600)
LICENCE_REMOTE_STATUS_RETRY_SECONDS = int(env("DGOV_LICENCE_REMOTE_STATUS_RETRY_SECONDS", "30") or 30)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "dgov.kernel.observability.RequestIdFilter"}},
    "formatters": {"json": {"()": "dgov.kernel.observability.JsonFormatter"}},
    "handlers": {
        # Informational lines (the access log above all) are written in batches every 0.1 s
        # (DGOV_LOG_FLUSH_SECONDS, 0 = at once); warnings and errors at once.
        "console": {
            "class": "dgov.kernel.observability.BufferedStreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        # One line per request (dgov.kernel.observability.AccessLogApp), whatever DGOV_LOG_LEVEL says.
        "dgov.access": {"level": "INFO" if env_bool("DGOV_ACCESS_LOG", True) else "CRITICAL"},
    },
}
