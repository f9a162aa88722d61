"""Live queue events from a real worker process to a real WebSocket client, through daphne.

Run in both configurations: the embedded default (outbox table polled by the web process) and
scale-out (channels-redis, and Redis as django-q2's broker).
"""

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
import websockets

from realtime import events
from realtime.transports import ChannelLayerTransport, OutboxTransport, transport
from tests.faultserver import Fault
from tests.liveapp import App, OwnRedis


@pytest.fixture
def own_redis():
    running = OwnRedis()
    yield running
    running.stop()


@pytest.fixture(params=["embedded", "redis"])
def app(request, tmp_path):
    env = {}
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("own_redis").url
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
    assert all(a["file_downloaded"] <= b["file_downloaded"] for a, b in zip(progress, progress[1:], strict=False))
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


def install_as(app, session, preset_id):
    return session.post(
        f"{app.base}/api/presets/{preset_id}/install",
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": app.base},
    )


def test_the_redis_channel_layer_waits_quietly_for_messages(own_redis):
    """With redis-py 8's default 5 s read timeout, channels-redis's 5 s blocking pop raised
    redis.exceptions.TimeoutError on every idle receive."""
    from channels_redis.core import RedisChannelLayer

    from presetsite.settings import redis_channel_layer

    async def idle_receive():
        layer = RedisChannelLayer(**redis_channel_layer(own_redis.url)["CONFIG"])
        channel = await layer.new_channel()
        with pytest.raises(asyncio.TimeoutError):  # ours, not redis-py's
            await asyncio.wait_for(layer.receive(channel), 8)

    asyncio.run(idle_receive())


def trickling_download_ready(app, server, tmp_path, preset_id, size):
    """A preset whose file comes at 2 MB/s, a web process, a worker, and alice's session."""
    app.load_catalogue(tmp_path, server, {preset_id: size})
    server.always(f"/{preset_id}.safetensors", Fault(trickle=(100_000, 0.05)))
    app.create_user("alice", "a-long-password")
    app.start_web()
    app.start_cluster()
    return app.login("alice", "a-long-password")


def test_a_socket_idle_for_a_minute_still_gets_every_event_of_a_download(app, server, tmp_path):
    """redis-py 8 gave each read 5 s, channels-redis blocks 5 s waiting for a message: every idle
    socket was closed with 1011 after about 5 s under Redis."""
    session = trickling_download_ready(app, server, tmp_path, "LATER", 1_000_000)

    async def scenario():
        async with connect(app, session) as socket:
            await socket.recv()
            with pytest.raises(asyncio.TimeoutError):  # nothing happens, and the socket stays open
                await asyncio.wait_for(socket.recv(), 60)
            assert install_as(app, session, "LATER").status_code == 202
            return await receive_until(socket, lambda m: m["type"] == "download_complete")

    events = asyncio.run(scenario())
    types = [e["type"] for e in events]
    assert types[0] == "queue_updated" and types[-1] == "download_complete"
    progress = [e for e in events if e["type"] == "download_progress"]
    assert len(progress) >= 3 and progress[-1]["progress"] == 100, types


def test_a_redis_restart_under_an_open_socket_ends_with_a_fresh_snapshot(own_redis, server, tmp_path):
    app = App(tmp_path, REDIS_URL=own_redis.url)
    try:
        session = trickling_download_ready(app, server, tmp_path, "STEADY", 1_500_000)

        async def scenario():
            async with connect(app, session) as socket:
                await socket.recv()
                assert install_as(app, session, "STEADY").status_code == 202
                await receive_until(socket, lambda m: m["type"] == "download_progress")
                await asyncio.to_thread(own_redis.restart)
                after = await receive_until(socket, lambda m: m["type"] == "queue_updated", timeout=15)
                await asyncio.to_thread(app.wait_for, lambda: app.job_state("STEADY") == "completed", 60)
                return after

        snapshot = asyncio.run(scenario())[-1]
        assert app.webs[0].poll() is None, "the web process died"
        assert snapshot["current"] is None or snapshot["current"]["preset_id"] == "STEADY"

        # the page comes back to the truth: a new socket sees the finished queue
        async def fresh():
            async with connect(app, session) as socket:
                return json.loads(await socket.recv())

        assert asyncio.run(fresh())["current"] is None
    finally:
        app.stop()


def test_whatever_a_client_sends_is_ignored_without_a_traceback(app, tmp_path):
    app.create_user("alice", "a-long-password")
    app.start_web()
    session = app.login("alice", "a-long-password")

    async def scenario():
        async with connect(app, session) as socket:
            await socket.recv()
            for frame in ("not json", "{", b"\x00\xff", '{"type": "pause"}'):
                await socket.send(frame)
            await asyncio.sleep(1.5)  # daphne looks at its applications once a second
            await asyncio.wait_for(await socket.ping(), 5)  # still served
            return socket.state.name

    assert asyncio.run(scenario()) == "OPEN"
    log = (app.data / "daphne.log").read_text()
    assert "Traceback" not in log, log


def test_the_transport_is_chosen_once_by_configuration(settings):
    settings.EVENTS_VIA_CHANNEL_LAYER = False
    assert isinstance(transport(), OutboxTransport) and transport() is transport()
    settings.EVENTS_VIA_CHANNEL_LAYER = True
    assert isinstance(transport(), ChannelLayerTransport) and transport() is transport()


def test_the_event_names_are_those_the_pages_listen_for():
    scripts = (Path(__file__).parent.parent / "static" / "presetsite").glob("*.js")
    heard = {name for script in scripts for name in re.findall(r'event\.type === "(\w+)"', script.read_text())}
    names = {value for name, value in vars(events).items() if name.isupper()}
    assert heard == names
