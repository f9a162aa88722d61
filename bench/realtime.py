"""Delay of live events from the download worker to 200 browsers, in both configurations.

    .venv/bin/python bench/realtime.py [--clients 200] [--seconds 10]

For each configuration (embedded: outbox table + in-memory layer; redis: channels-redis) it
runs the real app (daphne + qcluster on a temporary SQLite database), connects N WebSocket
clients on loopback, installs a preset whose file a local server trickles out for a few
seconds, and measures, for every event, the delay from the worker emitting it (its `at`
stamp) to the *last* client receiving it. Goal: p99 < 100 ms.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import websockets  # noqa: E402

from tests.faultserver import Fault, FaultServer  # noqa: E402
from tests.liveapp import App  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/10"


async def listen(socket, done, arrivals, counts):
    while not done.is_set():
        try:
            raw = await asyncio.wait_for(socket.recv(), 0.5)
        except asyncio.TimeoutError:
            continue
        now = time.time()
        event = json.loads(raw)
        counts["messages"] += 1
        if "at" in event:
            key = (event["type"], event["at"])
            arrivals[key] = max(arrivals.get(key, 0), now - event["at"])
        if event["type"] == "download_complete":
            counts["complete"] += 1
            if counts["complete"] == counts["clients"]:
                done.set()


async def run_clients(app, session, clients, install):
    """Connect the clients one after the other (as browsers arrive), then start the download."""
    url = app.base.replace("http://", "ws://") + "/ws/dashboard"
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in session.cookies.items()), "Origin": app.base}
    sockets = []
    for _ in range(clients):
        socket = await websockets.connect(url, additional_headers=headers, max_queue=None, open_timeout=30)
        await socket.recv()  # the snapshot
        sockets.append(socket)
    done = asyncio.Event()
    arrivals = {}
    counts = defaultdict(int, clients=clients)
    tasks = [asyncio.create_task(listen(socket, done, arrivals, counts)) for socket in sockets]
    started = time.monotonic()
    await asyncio.to_thread(install)
    try:
        await asyncio.wait_for(done.wait(), 120)
    except asyncio.TimeoutError:
        raise SystemExit(f"only {counts['complete']} of {clients} clients saw the download complete") from None
    elapsed = time.monotonic() - started
    await asyncio.gather(*tasks)
    for socket in sockets:
        await socket.close()
    return arrivals, counts["messages"], elapsed


def measure(configuration, clients, seconds):
    print(f"measuring the {configuration} configuration ...", flush=True)
    env = {}
    if configuration == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    size = 4_000_000
    with tempfile.TemporaryDirectory() as tmp, FaultServer() as server:
        app = App(Path(tmp), LOG_LEVEL="ERROR", **env)
        try:
            app.load_catalogue(Path(tmp), server, {"BENCH": size})
            chunk = 50_000
            server.always("/BENCH.safetensors", Fault(trickle=(chunk, seconds / (size / chunk))))
            app.create_user("bench", "a-long-password")
            app.start_web()
            app.start_cluster()
            session = app.login("bench", "a-long-password")
            token = app.token("bench")

            def install():
                answer = session.post(f"{app.base}/api/presets/BENCH/install", headers={"Authorization": f"Bearer {token}"})
                if answer.status_code != 202:
                    log = (app.data / "daphne.log").read_text()[-3000:]
                    raise SystemExit(f"install answered {answer.status_code}; daphne's log ends with:\n{log}")

            arrivals, messages, elapsed = asyncio.run(run_clients(app, session, clients, install))
        finally:
            app.stop()
    delays = sorted(arrivals.values())
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return {
        "configuration": configuration,
        "events": len(delays),
        "median_ms": statistics.median(delays) * 1000,
        "p99_ms": p99 * 1000,
        "max_ms": delays[-1] * 1000,
        "delivered_per_s": messages / elapsed,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10, help="how long the download trickles")
    args = parser.parse_args()
    rows = [measure(configuration, args.clients, args.seconds) for configuration in ("embedded", "redis")]
    print(f"\n{args.clients} WebSocket clients, one download of ~{args.seconds:.0f} s; delay worker -> last client\n")
    print(f"{'configuration':<14}{'events':>8}{'median':>10}{'p99':>10}{'max':>10}{'msgs/s':>10}  goal p99 < 100 ms")
    for row in rows:
        ok = "yes" if row["p99_ms"] < 100 else "NO"
        print(
            f"{row['configuration']:<14}{row['events']:>8}{row['median_ms']:>8.1f}ms{row['p99_ms']:>8.1f}ms"
            f"{row['max_ms']:>8.1f}ms{row['delivered_per_s']:>10.0f}  {ok}"
        )


if __name__ == "__main__":
    main()
