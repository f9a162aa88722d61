"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne)."""

import os
from urllib.parse import urlsplit

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "presetsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs the app registry loaded above
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http.request import is_same_domain, split_domain_port, validate_host  # noqa: E402

from presetsite import data_dir  # noqa: E402
from presetsite.routing import websocket_urlpatterns  # noqa: E402

data_dir.create()

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url):
    """(scheme, host, port) of an origin, the port made explicit; None when it is not one."""
    try:
        parsed = urlsplit(url.strip().lower())
        port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    except ValueError:
        return None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.hostname:
        return None
    return parsed.scheme, parsed.hostname, port


def _trusted(origin, pattern):
    """CSRF_TRUSTED_ORIGINS' rule: the same scheme and port, and host (`*.` for subdomains)."""
    scheme, host, port = pattern
    return origin[0] == scheme and origin[2] == port and is_same_domain(origin[1], host.replace("*.", ".", 1))


def same_origin(scope):
    """Whether a WebSocket comes from a page of this site: its Origin's scheme, host and port are
    those the connection was made to (its Host, which must be in ALLOWED_HOSTS), or match
    CSRF_TRUSTED_ORIGINS (a TLS proxy in front). Browsers send cookies to every port of a host,
    so a check of the host name alone would let another app on this machine open the socket as
    the logged-in user."""
    headers = dict(scope["headers"])
    host = headers.get(b"host", b"").decode("latin1")
    origin = _origin(headers.get(b"origin", b"").decode("latin1"))
    domain, _ = split_domain_port(host)
    if origin is None or not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    own = _origin(("https://" if scope.get("scheme") == "wss" else "http://") + host)
    trusted = (_origin(url) for url in settings.CSRF_TRUSTED_ORIGINS)
    return origin == own or any(_trusted(origin, pattern) for pattern in trusted if pattern)


class SameOriginValidator:
    """Refuses (403) a WebSocket handshake that does not come from this site's own pages."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if same_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
