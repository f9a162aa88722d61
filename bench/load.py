"""Load while a download runs: 200 WebSocket clients and 50 API clients, both configurations.

    .venv/bin/python bench/load.py [--clients 200] [--api-clients 50] [--seconds 10]
                                   [--configurations embedded,redis]

For each configuration (embedded: outbox table + in-memory layer; redis: channels-redis and
the django-q2 Redis broker) it runs the real app (one daphne, one qcluster, SQLite) with the
upstream catalogue, connects the WebSocket clients on loopback, installs a preset whose file a
local server trickles out for `--seconds`, and meanwhile has the API clients (threads of a
separate process, each with its own connection and API token) read the catalogue, a preset
and the queue in a loop. It reports:

- WebSocket: the delay of every event from the worker (its `at` stamp) to the last client to
  receive it, and how many events any client missed (goal: none dropped, p99 < 100 ms);
- API: requests answered, errors, and latency percentiles (goal: no errors; p99 reported).

`--api-clients 0` measures event delivery alone.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
import websockets  # noqa: E402

from tests.faultserver import Fault, FaultServer  # noqa: E402
from tests.liveapp import App  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/10"
UPSTREAM = ROOT / "tests" / "fixtures" / "upstream" / "presets.yaml"
API_PATHS = ["/api/presets/", "/api/presets/queue/status", "/api/presets/BENCH", "/api/presets/categories"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


class Client:
    """One WebSocket client: which events it received, and when."""

    def __init__(self, socket):
        self.socket = socket
        self.received = {}  # (type, at) -> arrival time

    async def listen(self, stop, finished):
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(self.socket.recv(), 0.5)
            except TimeoutError:
                continue
            event = json.loads(raw)
            if "at" in event:
                self.received[(event["type"], event["at"])] = time.time()
            if event["type"] == "download_complete":
                finished()


async def watch_download(app, cookies, clients, install):
    """Connect the clients one after the other (as browsers arrive), start the download, and
    return the clients once each has seen it complete."""
    url = app.base.replace("http://", "ws://") + "/ws/dashboard"
    headers = {"Cookie": cookies, "Origin": app.base}
    watchers = []
    for _ in range(clients):
        socket = await websockets.connect(url, additional_headers=headers, max_queue=None, open_timeout=30)
        await socket.recv()  # the snapshot
        watchers.append(Client(socket))
    everyone_done = asyncio.Event()
    complete = 0

    def finished():
        nonlocal complete
        complete += 1
        if complete == clients:
            everyone_done.set()

    stop = asyncio.Event()
    tasks = [asyncio.create_task(watcher.listen(stop, finished)) for watcher in watchers]
    await asyncio.to_thread(install)
    try:
        await asyncio.wait_for(everyone_done.wait(), 180)
    except TimeoutError:
        raise RuntimeError(f"only {complete} of {clients} clients saw the download complete") from None
    await asyncio.sleep(1)  # the queue update that follows the completion reaches everyone too
    stop.set()
    await asyncio.gather(*tasks)
    for watcher in watchers:
        await watcher.socket.close()
    return watchers


def api_load(base, token, clients, start, stop, results):
    """In its own process: `clients` threads, each a keep-alive session looping over API_PATHS."""
    latencies, errors = [], []
    lock = threading.Lock()

    def client(number):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        start.wait()
        n = number
        while not stop.is_set():
            path = API_PATHS[n % len(API_PATHS)]
            n += 1
            began = time.perf_counter()
            try:
                answer = session.get(base + path, timeout=30)
                ok = answer.status_code == 200
                error = f"{path}: HTTP {answer.status_code}"
            except requests.RequestException as exc:
                ok, error = False, f"{path}: {type(exc).__name__}"
            took = time.perf_counter() - began
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((latencies, errors))


def measure(configuration, clients=200, api_clients=50, seconds=10.0, workdir=None):
    """Run one configuration; returns a dict of figures (see `report`)."""
    env = {}
    if configuration == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    size = 4_000_000
    chunk = 50_000
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, FaultServer() as server:
        app = App(Path(tmp), LOG_LEVEL="ERROR", **env)
        try:
            app.load_catalogue(Path(tmp), server, {"BENCH": size}, base=UPSTREAM)
            server.always("/BENCH.safetensors", Fault(trickle=(chunk, seconds / (size / chunk))))
            app.create_user("bench", "a-long-password")
            app.start_web()
            app.start_cluster()
            session = app.login("bench", "a-long-password")
            token = app.token("bench")
            cookies = "; ".join(f"{k}={v}" for k, v in session.cookies.items())

            spawn = multiprocessing.get_context("spawn")
            start, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
            loader = spawn.Process(target=api_load, args=(app.base, token, api_clients, start, stop, results))
            loader.start()

            def install():
                answer = app.api("POST", "/api/presets/BENCH/install", token)
                if answer.status_code != 202:
                    raise RuntimeError(f"install answered {answer.status_code}: {answer.text[:300]}")
                start.set()

            began = time.monotonic()
            try:
                watchers = asyncio.run(watch_download(app, cookies, clients, install))
            finally:
                elapsed = time.monotonic() - began
                stop.set()
                start.set()
                latencies, errors = results.get(timeout=120)
                loader.join(timeout=30)
        finally:
            app.stop()

    sent = {}  # every event any client received, with the worker's stamp
    for watcher in watchers:
        sent.update(dict.fromkeys(watcher.received))
    delays = [max(watcher.received[key] for watcher in watchers if key in watcher.received) - key[1] for key in sent]
    return {
        "configuration": configuration,
        "clients": clients,
        "events": len(sent),
        "dropped": sum(len(sent) - len(watcher.received) for watcher in watchers),
        "event_median_ms": statistics.median(delays) * 1000,
        "event_p99_ms": percentile(delays, 0.99) * 1000,
        "api_clients": api_clients,
        "api_requests": len(latencies),
        "api_per_s": len(latencies) / elapsed,
        "api_errors": errors,
        "api_median_ms": percentile(latencies, 0.5) * 1000,
        "api_p99_ms": percentile(latencies, 0.99) * 1000,
        "api_max_ms": max(latencies, default=float("nan")) * 1000,
    }


def report(rows):
    first = rows[0]
    print(
        f"\n{first['clients']} WebSocket clients and {first['api_clients']} API clients during one download; "
        "event delay is worker -> last client\n"
    )
    print(
        f"{'configuration':<14}{'events':>7}{'dropped':>8}{'ev median':>11}{'ev p99':>9}"
        f"{'API reqs':>9}{'req/s':>7}{'errors':>7}{'API med':>9}{'API p99':>9}{'API max':>9}"
    )
    for row in rows:
        print(
            f"{row['configuration']:<14}{row['events']:>7}{row['dropped']:>8}"
            f"{row['event_median_ms']:>9.1f}ms{row['event_p99_ms']:>7.1f}ms"
            f"{row['api_requests']:>9}{row['api_per_s']:>7.0f}{len(row['api_errors']):>7}"
            f"{row['api_median_ms']:>7.0f}ms{row['api_p99_ms']:>7.0f}ms{row['api_max_ms']:>7.0f}ms"
        )
    print("\ngoals: nothing dropped, no API errors, event p99 < 100 ms; API p99 is reported")
    for row in rows:
        for error in sorted(set(row["api_errors"]))[:5]:
            print(f"  {row['configuration']}: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--api-clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10, help="how long the download trickles")
    parser.add_argument("--configurations", default="embedded,redis")
    args = parser.parse_args()
    rows = [
        measure(configuration, args.clients, args.api_clients, args.seconds)
        for configuration in args.configurations.split(",")
    ]
    report(rows)


if __name__ == "__main__":
    main()
