"""The web process (daphne) as an operator runs it: it stops promptly, whatever it is serving."""

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from asgiref.sync import async_to_sync, sync_to_async

from presetsite.serve import serve_left_over_requests
from tests.liveapp import App


def test_the_web_server_finishes_a_request_in_flight_and_exits_when_told_to_stop(tmp_path):
    # Django runs a request's middleware in a thread that hands back to the event loop after the
    # view. A SIGTERM while such a request waited on the database stopped the loop under it: the
    # thread waited forever and daphne never exited (it had to be killed after its grace period).
    app = App(tmp_path)
    app.create_user("alice", "a-long-password")
    token = app.token("alice")  # its first use is recorded: a write, which the lock below holds up
    app.start_web()
    web = app.webs[0]
    lock = sqlite3.connect(app.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor() as pool:
        response = pool.submit(app.api, "GET", "/api/presets/", token)
        time.sleep(1.5)
        web.terminate()
        time.sleep(1)
        assert web.poll() is None, "daphne stopped without finishing the request"
        lock.execute("COMMIT")
        started = time.monotonic()
        web.wait(timeout=15)
        assert time.monotonic() - started < 5
        try:  # daphne answers it, or had already closed the connection: either way, no hang
            assert response.result().status_code == 200
        except requests.ConnectionError:
            pass


def test_a_request_thread_that_needs_the_event_loop_after_it_stopped_still_finishes():
    # What a client leaving just as daphne stops leaves behind: a request's worker thread that
    # schedules its next step on the event loop after the loop has stopped.
    loop = asyncio.new_event_loop()
    go_on = threading.Event()
    finished = threading.Event()

    async def async_layers():
        return "response"

    def middleware():
        go_on.wait()
        assert async_to_sync(async_layers)() == "response"
        finished.set()

    async def request():
        loop.stop()  # the server stops while the request's thread is busy
        await sync_to_async(middleware)()

    loop.create_task(request())
    loop.run_forever()
    go_on.set()
    assert not finished.wait(1), "the thread needs no event loop: this test would prove nothing"
    serve_left_over_requests(loop)
    assert finished.wait(5)
