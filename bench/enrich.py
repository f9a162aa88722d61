"""Times enriching upstream's whole catalogue with the prober, against a local hub with latency.

    .venv/bin/python bench/enrich.py [--latency-ms 50] [--workers 8] [--catalogue PATH]

Every file of the upstream presets.yaml (183 files, all on huggingface.co) is served by a local
server answering as Hugging Face does: its `resolve` URL (on "localhost", the hub) redirects with
X-Linked-Size and X-Linked-Etag to a CDN URL (on 127.0.0.1) that answers the HEAD with the
length. Every request waits --latency-ms before its answer, so one probe costs two round trips.
The URLs are probed with `probe_many`, as `enrich_presets` does; the table shows what came back
and how long it took. Goal (issue 16): the whole catalogue in under 5 s, every file given its
exact size and sha256. Exit status 1 if it is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from downloads.engine import Options  # noqa: E402 - after the path is set
from downloads.probe import probe_many  # noqa: E402
from presets.catalogue import parse_catalogue  # noqa: E402
from presets.sizes import parse_size  # noqa: E402

UPSTREAM = Path("/work/shared/fixtures/upstream/presets.yaml")
GOAL_SECONDS = 5.0


class Hub(ThreadingHTTPServer):
    """resolve paths -> 302 with X-Linked-*; /cdn/<sha256> -> 200 with the length; after `latency`."""

    daemon_threads = True

    def __init__(self, files: dict[str, int], latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files  # resolve path -> size
        self.sizes = {_sha(path): size for path, size in files.items()}
        self.latency = latency


def _sha(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Hub

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(self.server.latency)
        path = self.path.partition("?")[0]
        if path in self.server.files:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/cdn/{_sha(path)}?sig=x")
            self.send_header("X-Linked-Size", str(self.server.files[path]))
            self.send_header("X-Linked-Etag", f'"{_sha(path)}"')
        elif path.startswith("/cdn/") and path[5:] in self.server.sizes:
            self.send_response(200)
            self.send_header("Content-Length", str(self.server.sizes[path[5:]]))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--catalogue", type=Path, default=UPSTREAM)
    args = parser.parse_args()

    catalogue = parse_catalogue(args.catalogue.read_text())
    files = [file for preset in catalogue["presets"].values() for file in preset["files"]]
    sizes = {urlsplit(file["url"]).path: parse_size(file["size"]) or 1 for file in files}
    hub = Hub(sizes, args.latency_ms / 1000)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    urls = [f"http://localhost:{hub.server_port}{urlsplit(file['url']).path}" for file in files]
    options = Options(huggingface_hosts=("localhost",), timeout=(5, 5))

    began = time.perf_counter()
    found = probe_many(urls, options=options, workers=args.workers)
    elapsed = time.perf_counter() - began
    hub.shutdown()

    exact = sum(1 for url, probe in zip(urls, found, strict=True) if probe.size == sizes[urlsplit(url).path])
    hashed = sum(1 for url, probe in zip(urls, found, strict=True) if probe.sha256 == _sha(urlsplit(url).path))
    failed = [probe for probe in found if not probe.ok]
    passed = elapsed < GOAL_SECONDS and exact == hashed == len(urls)
    rows = [
        ("files", f"{len(urls)} ({len(set(urls))} distinct URLs)"),
        ("latency per request", f"{args.latency_ms:g} ms (2 requests a file: hub, CDN)"),
        ("workers", str(args.workers)),
        ("exact size / sha256", f"{exact} / {hashed}"),
        ("failed", str(len(failed))),
        ("wall time", f"{elapsed:.2f} s  ({elapsed / len(urls) * 1000:.1f} ms a file)"),
        ("lower bound", f"{len(urls) / args.workers * 2 * args.latency_ms / 1000:.2f} s (files / workers x 2 RTT)"),
        ("goal", f"< {GOAL_SECONDS:g} s, every file exact: {'PASS' if passed else 'FAIL'}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for probe in failed[:5]:
        print(f"  {probe.url}: {probe.message}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
