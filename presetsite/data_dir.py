"""DATA_DIR, the app's own state: made by the entry points (manage.py, the WSGI and ASGI
applications, the test session), not by importing the settings, which have no side effects."""

import os
import secrets
from functools import cache
from pathlib import Path

from django.conf import settings
from django.utils.functional import lazy


def create():
    """Make DATA_DIR (where the SQLite database goes) and the static files' folder."""
    for folder in (settings.DATA_DIR, settings.STATIC_ROOT):
        Path(folder).mkdir(parents=True, exist_ok=True)


@cache
def _read_or_create_key(path):
    """The key in `path`, generated there first if missing. The web server and the worker may
    both come to it first: the key is linked into place whole, and the later one reads it."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def secret_key(path):
    """SECRET_KEY when the environment gives none: kept in `path` (never a fixed default), read
    or generated when Django first uses it rather than when the settings are imported."""
    return lazy(_read_or_create_key, str)(path)
