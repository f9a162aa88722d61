"""Reading the environment, the one way the settings and the `start` command do it.

An empty variable counts as unset. A value that does not parse stops the app with an error
naming the variable, instead of a bare ValueError or a silent default.
"""

import os

from django.core.exceptions import ImproperlyConfigured

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_str(name, default=""):
    """The raw value; here an empty value is kept (CONTENT_SECURITY_POLICY="" means none)."""
    return os.environ.get(name, default)


def _parsed(name, default, parse, expected):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not {expected}") from None


def _bool(value):
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ValueError(value)


def env_bool(name, default=False):
    return _parsed(name, default, _bool, f"a yes/no value ({', '.join(TRUE)} or {', '.join(FALSE)})")


def env_int(name, default, minimum=None):
    """A whole number; one below `minimum` stops the app like one that does not parse."""

    def parse(value):
        number = int(value)
        if minimum is not None and number < minimum:
            raise ValueError(value)
        return number

    return _parsed(name, default, parse, "a whole number" + (f" of at least {minimum}" if minimum is not None else ""))


def env_float(name, default):
    return _parsed(name, default, float, "a number")


def env_list(name, default=""):
    """Comma-separated items, blanks dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
