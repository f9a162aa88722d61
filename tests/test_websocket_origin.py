"""The live socket opens only from this site's own pages (scheme, host and port), and cookies can
be kept to https: run against a real daphne with a real WebSocket client."""

import asyncio
import json

import pytest
import requests
import websockets

from tests.liveapp import App

TRUSTED = "https://models.example.org"


@pytest.fixture
def app(tmp_path):
    app = App(tmp_path, CSRF_TRUSTED_ORIGINS=TRUSTED)
    app.create_user("alice", "a-long-password")
    app.start_web()
    yield app
    app.stop()


def open_socket(app, origin, cookie):
    """The first message of a socket opened with this Origin, or the handshake's refusal status."""

    async def attempt():
        url = app.base.replace("http://", "ws://") + "/ws/dashboard"
        try:
            async with websockets.connect(url, additional_headers={"Origin": origin, "Cookie": cookie}) as socket:
                return json.loads(await asyncio.wait_for(socket.recv(), 10))["type"]
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


def test_only_the_sites_own_origin_or_a_trusted_one_may_open_the_socket(app):
    session = app.login("alice", "a-long-password")
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    port = app.base.rsplit(":", 1)[1]
    origins = {
        app.base: "queue_updated",
        TRUSTED: "queue_updated",  # a TLS proxy in front, as listed in CSRF_TRUSTED_ORIGINS
        "http://127.0.0.1:8188": 403,  # another app on this machine: same host, other port
        "http://127.0.0.1": 403,
        f"https://127.0.0.1:{port}": 403,
        f"http://localhost:{port}": 403,  # an allowed host, but not the one this socket was opened to
        "https://models.example.org:8443": 403,
        "null": 403,
    }
    assert {origin: open_socket(app, origin, cookie) for origin in origins} == origins


def test_secure_cookies_setting_keeps_session_and_csrf_cookies_to_https(tmp_path):
    app = App(tmp_path, SECURE_COOKIES="1")
    try:
        app.start_web()
        assert "; Secure" in requests.get(f"{app.base}/login/", timeout=10).headers["Set-Cookie"]
    finally:
        app.stop()
