"""Benchmark the download engine against curl and a naive requests loop, on 127.0.0.1.

    .venv/bin/python bench/download.py [--size-mib 1024] [--rounds 3] [--dir /tmp]

Serves a random file from a local sendfile() server, then downloads it with each client in its
own subprocess and reads that process's peak RSS (VmHWM). Every run starts with the page cache
synced and the previous output deleted, and every output is checked against the source sha256.

The engine always fsyncs before its atomic rename; curl and the requests loop do not, so the
table shows them both as measured and with an fsync of their output added ("durable"), which
is the fair comparison. The first row, curl into /dev/null, is the server's ceiling: it has to
be well above the others for the figures to mean anything.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    """GET with single-range support; the body goes out with sendfile(), no copy in Python."""

    protocol_version = "HTTP/1.1"
    source: Path

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        size = self.source.stat().st_size
        start, end = 0, size
        value = self.headers.get("Range", "")
        if value.startswith("bytes=") and value[6:].split("-")[0].isdigit():
            start = int(value[6:].split("-")[0])
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        self.wfile.flush()
        with open(self.source, "rb") as fh:
            self.connection.sendfile(fh, start, end - start)


def serve(source: Path) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"source": source})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_source(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        remaining = size
        while remaining:
            block = os.urandom(min(4 * MIB, remaining))
            digest.update(block)
            fh.write(block)
            remaining -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


# --- clients, each run as `bench/download.py --client NAME URL DEST [SHA256 SIZE]` -------------


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM: the high-water mark of the process's resident memory.

    Not ru_maxrss from wait4(): for a child started by fork/vfork + exec, that also counts the
    parent's memory the child borrowed before exec.
    """
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def client_engine(url: str, dest: str, sha256: str, size: str) -> float:
    sys.path.insert(0, str(ROOT))
    from downloads.engine import FileSpec, download

    started = time.perf_counter()
    download(FileSpec(url=url, dest=Path(dest), expected_size=int(size), sha256=sha256))
    return time.perf_counter() - started


def client_requests(url: str, dest: str, *_: str) -> float:
    import requests

    started = time.perf_counter()
    with requests.get(url, stream=True, timeout=(10, 60)) as response, open(dest, "wb") as fh:
        response.raise_for_status()
        for chunk in response.iter_content(8192):
            fh.write(chunk)
    return time.perf_counter() - started


CLIENTS = {"engine": client_engine, "requests": client_requests}


# --- the harness -----------------------------------------------------------------------------


def run_client(name: str, url: str, dest: Path, sha256: str, size: int) -> tuple[float, float]:
    """Run one client in a subprocess; return (seconds spent downloading, peak RSS in MB).

    The time is the client's own (curl's time_total, the Python clients' timer), so interpreter
    start-up is not counted. Peak RSS: the Python clients report their VmHWM when done; curl's is
    sampled from /proc while it runs (a high-water mark, so sampling misses at most the last
    few milliseconds).
    """
    if name.startswith("curl"):
        command = ["curl", "-s", "-S", "-f", "-o", str(dest), "-w", "%{time_total} 0", url]
    else:
        command = [sys.executable, __file__, "--client", name, url, str(dest), sha256, str(size)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    sampled = 0.0
    while process.poll() is None:
        try:
            sampled = max(sampled, peak_rss_mb(process.pid))
        except (OSError, ValueError):
            pass  # exiting
        time.sleep(0.02)
    if process.returncode:
        raise SystemExit(f"{name} failed with exit code {process.returncode}")
    seconds, reported = process.stdout.read().split()
    return float(seconds), max(sampled, float(reported))


def fsync_seconds(path: Path) -> float:
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="runs per client; the median is shown")
    parser.add_argument("--dir", default=None, help="where to put the files (default: the temp dir)")
    parser.add_argument("--client", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        name, *rest = args.client
        seconds = CLIENTS[name](*rest)
        print(seconds, peak_rss_mb())
        return
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the comparison")

    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="presetsite-download-bench-", dir=args.dir))
    server = None
    try:
        source = work / "source.bin"
        print(f"writing a {args.size_mib} MiB source file in {work} ...", flush=True)
        sha256 = make_source(source, size)
        server = serve(source)
        url = f"http://127.0.0.1:{server.server_address[1]}/model.bin"

        ceiling, clients = "curl → /dev/null", ["curl", "engine", "requests"]
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in [ceiling, *clients]}
        for round_number in range(1, args.rounds + 1):
            shift = round_number % len(clients)  # rotate the order: no client always runs first
            for name in [ceiling, *clients[shift:], *clients[:shift]]:
                dest = Path("/dev/null") if name.endswith("/dev/null") else work / f"{name}.bin"
                os.sync()
                seconds, rss = run_client(name, url, dest, sha256, size)
                sync = 0.0
                if dest != Path("/dev/null"):
                    sync = 0.0 if name == "engine" else fsync_seconds(dest)
                    if sha256_file(dest) != sha256:
                        raise SystemExit(f"{name} produced a wrong file")
                    dest.unlink()
                results[name].append((seconds, seconds + sync, rss))
                print(f"  round {round_number}: {name:18} {size / seconds / 1e6:8.0f} MB/s", flush=True)
        report(results, size, work)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(work, ignore_errors=True)


def report(results, size: int, work: Path) -> None:
    def median(name: str, index: int) -> float:
        return statistics.median(run[index] for run in results[name])

    curl_raw, curl_durable = size / median("curl", 0) / 1e6, size / median("curl", 1) / 1e6
    print(f"\n{size // MIB} MiB from 127.0.0.1 into {work.parent}, median of {len(results['curl'])} runs")
    print(f"{'client':20} {'MB/s':>8} {'durable MB/s':>13} {'× curl durable':>15} {'× curl':>7} {'peak RSS MB':>12}")
    for name in results:
        raw = size / median(name, 0) / 1e6
        durable = size / median(name, 1) / 1e6
        peak = max(run[2] for run in results[name])
        if name.endswith("/dev/null"):
            print(f"{name:20} {raw:8.0f} {'-':>13} {'-':>15} {raw / curl_raw:7.2f} {peak:12.1f}")
        else:
            ratios = f"{durable / curl_durable:15.2f} {raw / curl_raw:7.2f}"
            print(f"{name:20} {raw:8.0f} {durable:13.0f} {ratios} {peak:12.1f}")
    print("durable = until the data is on disk (engine: its own fsync; others: fsync added after the run)")


if __name__ == "__main__":
    main()
