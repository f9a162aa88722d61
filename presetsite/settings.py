"""Settings for presetsite.

Every deployment knob is an environment variable (see the README's configuration table).
The defaults give the embedded configuration: SQLite, django-q2's ORM broker, no Redis.
"""

from pathlib import Path

import dj_database_url

from presetsite import data_dir
from presetsite.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Where the app keeps its own state: database, catalogue copy and backup, secret key. Importing
# the settings creates nothing; presetsite.data_dir does, when the app starts or first needs it.
DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / "data").resolve()

# ComfyUI's models folder: presets' file paths are relative to it.
MODEL_BASE_PATH = Path(env_str("MODEL_BASE_PATH") or DATA_DIR / "models").resolve()

SECRET_KEY = env_str("SECRET_KEY") or data_dir.secret_key(DATA_DIR / "secret_key")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "downloads",  # before django_q: its `qcluster` command replaces django-q2's
    "django_q",
    "presets",
    "templates_scan",
    "realtime",
    "disk",
    "accounts",
    "presetsite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "presetsite.middleware.ContentSecurityPolicyMiddleware",
    "presetsite.middleware.ApiErrorsAsJsonMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.TokenAuthenticationMiddleware",
    "presetsite.middleware.DatabaseBusyMiddleware",
    "presetsite.middleware.ModelPathsBrokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "presetsite.urls"

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

WSGI_APPLICATION = "presetsite.wsgi.application"
ASGI_APPLICATION = "presetsite.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server write concurrently: wait for locks instead of failing.
    # A lock held longer than this (seconds) answers web requests with 503 and makes the
    # worker skip a progress write or put its job back in the queue (see downloads/worker.py).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, as production does: an in-memory database locks tables between threads
    # instead of waiting for them, unlike the real thing.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# --- Security ----------------------------------------------------------------------------
# Under /api/, a failed CSRF check answers JSON (see accounts.auth), elsewhere Django's page.
CSRF_FAILURE_VIEW = "accounts.auth.csrf_failure"
# Behind TLS, SECURE_COOKIES=1 keeps the session and CSRF cookies off plain http.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
# Password guessing (accounts.login): past this many failed logins for one account, or from
# one client address, within LOGIN_LOCKOUT_MINUTES of the first, logins are refused until then.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
LOGIN_LOCKOUT_MINUTES = env_float("LOGIN_LOCKOUT_MINUTES", 15)
# Scripts, styles, images, fonts and connections (the API, the WebSocket) from this site only;
# no plugins, no framing, forms post here only. Alpine.js evaluates its x-* attributes with
# new Function, so scripts need 'unsafe-eval' (its CSP build would need every expression moved
# into JavaScript); inline styles are allowed for Alpine's :style bindings and the admin's
# style attributes, while inline scripts are not. CONTENT_SECURITY_POLICY="" sends none.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
)

# --- Catalogue -------------------------------------------------------------------------
# The catalogue shipped with the app, loaded on first start.
PRESETS_DEFAULT_FILE = BASE_DIR / "config" / "presets.yaml"
# The copy of the last good catalogue, and its backup, written by every refresh.
PRESETS_FILE = DATA_DIR / "presets.yaml"
PRESETS_REFRESH_URL = env_str(
    "PRESETS_REFRESH_URL",
    "https://raw.githubusercontent.com/ZeroClue/ComfyUI-Docker/main/config/presets.yaml",
)
PRESETS_REFRESH_TIMEOUT = env_float("PRESETS_REFRESH_TIMEOUT", 30)
PRESETS_MAX_BYTES = env_int("PRESETS_MAX_BYTES", 5 * 1024 * 1024)

# --- Workflow templates ------------------------------------------------------------------
# Folders of ComfyUI workflow JSON files to scan (separated by ":" or ","), and an optional
# extra_model_paths.yaml saying where else this server keeps models, as ComfyUI reads it.
COMFYUI_TEMPLATE_DIRS = [
    Path(d).resolve()
    for d in env_str("COMFYUI_TEMPLATE_DIRS", str(DATA_DIR / "workflows")).replace(",", ":").split(":")
    if d.strip()
]
COMFYUI_EXTRA_MODEL_PATHS = env_str("COMFYUI_EXTRA_MODEL_PATHS") or None
# `start` rescans the template folders (only changed files are parsed) this often (s).
TEMPLATE_RESCAN_INTERVAL = env_float("TEMPLATE_RESCAN_INTERVAL", 10)
# An uploaded or pasted workflow larger than this is refused.
WORKFLOW_MAX_BYTES = env_int("WORKFLOW_MAX_BYTES", 16 * 1024 * 1024)

# --- Realtime ----------------------------------------------------------------------------
# With REDIS_URL, events travel through channels-redis and django-q2 uses Redis as its broker;
# without it, through an outbox table that each web process polls (see realtime/transports.py).
REDIS_URL = env_str("REDIS_URL")
EVENTS_VIA_CHANNEL_LAYER = bool(REDIS_URL)
EVENT_POLL_INTERVAL = env_float("EVENT_POLL_INTERVAL", 0.025)


# channels-redis waits for messages with a blocking pop of 5 s (BZPOPMIN), and redis-py 8 gives
# every read a 5 s socket timeout by default: the client gave up just as Redis answered, and
# each idle receive raised TimeoutError. Reads get longer than the pop; connecting stays quick.
def redis_channel_layer(url):
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": url, "socket_timeout": 15, "socket_connect_timeout": 5}]},
    }


if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Logging ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
}

# --- Downloads -------------------------------------------------------------------------
DOWNLOAD_MAX_ATTEMPTS = env_int("DOWNLOAD_MAX_ATTEMPTS", 3)
DOWNLOAD_BACKOFF_INITIAL = env_float("DOWNLOAD_BACKOFF_INITIAL", 5)
DOWNLOAD_BACKOFF_MAX = env_float("DOWNLOAD_BACKOFF_MAX", 60)
DOWNLOAD_CONNECT_TIMEOUT = env_float("DOWNLOAD_CONNECT_TIMEOUT", 10)
DOWNLOAD_READ_TIMEOUT = env_float("DOWNLOAD_READ_TIMEOUT", 60)
# Free space to leave on the model disk after a download, in bytes.
DOWNLOAD_DISK_RESERVE = env_int("DOWNLOAD_DISK_RESERVE", 1024**3)
# The most connections one file comes over (byte ranges in parallel); 1 turns that off.
DOWNLOAD_CONNECTIONS = env_int("DOWNLOAD_CONNECTIONS", 8, minimum=1)
# Hosts whose resolve answers declare a file's exact size and sha256 (X-Linked-Size, X-Linked-Etag).
HUGGINGFACE_HOSTS = env_list("HUGGINGFACE_HOSTS", "huggingface.co,hf.co")
# Bearer tokens for gated models, by variable; downloads.sources sends each only to its own
# hosts (and their subdomains) and names the variable when a host refuses a download.
DOWNLOAD_TOKENS = {name: env_str(name, "") for name in ("HF_TOKEN", "CIVITAI_TOKEN")}
# Optional allow-list of download hosts (a host also allows its subdomains); empty: any host.
DOWNLOAD_ALLOWED_HOSTS = env_list("DOWNLOAD_ALLOWED_HOSTS")
# On a private network, queue actions (install, pause, ...) may be opened to anonymous users.
ALLOW_ANONYMOUS_QUEUE_ACTIONS = env_bool("ALLOW_ANONYMOUS_QUEUE_ACTIONS")
# How often the worker writes progress to the database (and so to the browsers), in seconds.
DOWNLOAD_PROGRESS_INTERVAL = env_float("DOWNLOAD_PROGRESS_INTERVAL", 0.25)

# `install_preset --wait` says no worker is running after a queued job waited this long (s).
INSTALL_WAIT_WARNING_AFTER = env_float("INSTALL_WAIT_WARNING_AFTER", 10)

# --- Download worker (django-q2, one worker: downloads run one at a time, FIFO) -----------
# A task past `timeout` is killed, and one not acknowledged within `retry` is handed out again.
# A single task downloads a whole preset, which can take hours on a slow link: the timeout is
# a week by default and retry is longer still, so no download is killed or started twice.
DOWNLOAD_TASK_TIMEOUT = env_int("DOWNLOAD_TASK_TIMEOUT", 7 * 24 * 3600)
Q_CLUSTER = {
    "name": "presetsite",
    "workers": 1,
    "orm": "default",
    "timeout": DOWNLOAD_TASK_TIMEOUT,
    "retry": DOWNLOAD_TASK_TIMEOUT + 3600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
}
if REDIS_URL:
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = REDIS_URL
