"""Live queue events from a real worker process to a real WebSocket client, through daphne.

Run in both configurations: the embedded default (outbox table polled by the web process) and
scale-out (channels-redis, and Redis as django-q2's broker).
"""

import asyncio
import json
import time

import pytest
import redis
import websockets

from tests.faultserver import Fault
from tests.liveapp import App

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture(params=["embedded", "redis"])
def app(request, tmp_path):
    env = {}
    if request.param == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    app = App(tmp_path, **env)
    yield app
    app.stop()


def ws_url(app):
    return app.base.replace("http://", "ws://") + "/ws/dashboard"


async def receive_until(socket, predicate, timeout=30):
    """Messages received until one matches (that one included), each stamped with `_at`."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), deadline - time.monotonic()))
        message["_at"] = time.monotonic()
        received.append(message)
        if predicate(message):
            return received


def connect(app, session, base=None):
    base = base or app.base
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    url = base.replace("http://", "ws://") + "/ws/dashboard"
    return websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": base})


def test_progress_events_reach_the_browser_from_the_worker_process(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"LIVE": 3_000_000})
    server.always("/LIVE.safetensors", Fault(trickle=(100_000, 0.05)))
    app.create_user("alice", "a-long-password")
    app.start_web()
    app.start_cluster()
    session = app.login("alice", "a-long-password")

    async def scenario():
        async with connect(app, session) as socket:
            snapshot = json.loads(await socket.recv())
            assert snapshot == {"type": "queue_updated", "current": None, "queue": [], "active_downloads": 0}
            answer = session.post(
                f"{app.base}/api/presets/LIVE/install",
                headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": app.base},
            )
            assert answer.status_code == 202
            events = await receive_until(socket, lambda m: m["type"] == "download_complete")
        return events

    events = asyncio.run(scenario())
    types = [e["type"] for e in events]
    assert types[0] == "queue_updated" and events[0]["queue"][0]["preset_id"] == "LIVE"
    progress = [e for e in events if e["type"] == "download_progress"]
    assert len(progress) >= 3, types
    assert all(a["file_downloaded"] <= b["file_downloaded"] for a, b in zip(progress, progress[1:]))
    last = progress[-1]
    assert last["file_progress"] == 100 and last["progress"] == 100
    assert last["file"] == "checkpoints/live.safetensors" and last["total"] == 3_000_000
    assert any(e["type"] == "queue_updated" and e["current"] and e["current"]["preset_id"] == "LIVE" for e in events)
    # throttled to about 4 progress events a second
    rate = (len(progress) - 1) / (progress[-1]["_at"] - progress[0]["_at"])
    assert rate <= 5, rate


def test_retrying_and_failure_events_and_a_reconnect_gets_the_final_state(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"FLAKY": 100_000})
    server.always("/FLAKY.safetensors", Fault(status=503))
    app.create_user("alice", "a-long-password")
    app.start_web()
    app.start_cluster()
    session = app.login("alice", "a-long-password")
    token = app.token("alice")

    async def scenario():
        async with connect(app, session) as socket:
            await socket.recv()
            session.post(f"{app.base}/api/presets/FLAKY/install", headers={"Authorization": f"Bearer {token}"})
            events = await receive_until(socket, lambda m: m["type"] == "download_failed")
        async with connect(app, session) as again:
            snapshot = json.loads(await again.recv())
        return events, snapshot

    events, snapshot = asyncio.run(scenario())
    retrying = [e for e in events if e["type"] == "download_retrying"]
    assert [(e["attempt"], e["max"]) for e in retrying] == [(2, 3), (3, 3)]
    failed = events[-1]
    assert failed["preset_id"] == "FLAKY" and "503" in failed["error"] and failed["retry_count"] == 3
    assert snapshot["type"] == "queue_updated" and snapshot["current"] is None and snapshot["queue"] == []


def test_anonymous_and_cross_origin_sockets_are_refused(app, tmp_path):
    app.create_user("alice", "a-long-password")
    app.start_web()
    session = app.login("alice", "a-long-password")
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())

    async def refused(**headers):
        try:
            async with websockets.connect(ws_url(app), additional_headers=headers) as socket:
                await socket.recv()
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code
        return None

    assert asyncio.run(refused(Origin=app.base)) == 403
    assert asyncio.run(refused(Origin="http://evil.example", Cookie=cookie)) == 403


def test_two_web_processes_each_deliver_every_event_to_their_clients(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"SHARED": 1_000_000})
    server.always("/SHARED.safetensors", Fault(trickle=(100_000, 0.05)))
    app.create_user("alice", "a-long-password")
    first, second = app.start_web(), app.start_web()
    app.start_cluster()
    session = app.login("alice", "a-long-password")
    token = app.token("alice")

    async def scenario():
        async with connect(app, session, first) as one, connect(app, session, second) as two:
            await one.recv(), await two.recv()
            session.post(f"{first}/api/presets/SHARED/install", headers={"Authorization": f"Bearer {token}"})
            done = lambda m: m["type"] == "download_complete"  # noqa: E731
            return await asyncio.gather(receive_until(one, done), receive_until(two, done))

    seen_by_one, seen_by_two = asyncio.run(scenario())
    events = [[(e["type"], e.get("at")) for e in seen if e.get("at")] for seen in (seen_by_one, seen_by_two)]
    assert events[0] == events[1]
    assert sum(1 for kind, _ in events[0] if kind == "download_progress") >= 2
