"""Benchmark the download engine against curl and aria2c on 127.0.0.1, with and without a cap per connection.

    .venv/bin/python bench/download.py [--size-mib 1024] [--rate-mib 25] [--rounds 3] [--dir /tmp]
                                       [--only uncapped|capped]

One random source file (--size-mib, 1 GiB by default) is served in two scenarios, and each
client downloads it in its own subprocess; the harness reads that process's peak RSS (VmHWM)
and the TCP connections it has open. Every run starts with the page cache synced and the
previous output deleted, and every output is checked against the source sha256.

- uncapped: a sendfile() server of the bench's own, in this process. Clients: curl into
  /dev/null (the server's ceiling: it must be well above the others for the figures to mean
  anything), curl, the engine with Options(connections=8) and with connections=1, and a naive
  requests loop.
- capped: nginx (Debian's `nginx-light`, /usr/sbin/nginx), started by the bench on a free port
  with a throwaway config under the temp dir, sends the file with sendfile and `limit_rate`
  --rate-mib MiB/s per connection, as CDNs cap what one connection gets. Clients: curl, `aria2c
  -x8 -s8` (Debian's `aria2`), the engine with 8 and with 1 connection. Skipped, with a note,
  without nginx. limit_rate sends the first sendfile chunk of every request at once, so the
  chunk is made small (256 KiB, not 2 MiB): with 2 MiB, a client that makes many range requests
  (the engine makes about 8 per connection) gets well over the cap. At 256 KiB the figures match
  those of the kernel pacing each connection (SO_MAX_PACING_RATE), a strict cap, to within a
  few per cent.

A client whose program is missing is skipped with a note. The goals (issue 14), judged on the
engine with 8 connections, the default, and printed with PASS or FAIL (the exit status is 1 if
any fails): uncapped, at least 0.95x curl's speed; capped, at least 6x faster than curl and
within 1.15x of aria2c's time; peak RSS below 150 MB in every engine run.

Times and durability: the engine always fsyncs before its atomic rename; curl, aria2c and the
requests loop do not, so the table shows them both as measured and with an fsync of their
output added ("durable"), and the goals compare durable figures. The engine's and curl's times
are their own (the engine's timer, curl's time_total: interpreter start-up is not counted);
aria2c's is the harness's, from start to exit, which counts its start-up (a few ms) against it.
aria2c is asked to work as the engine does: `--file-allocation=trunc` (the engine too only sets
the size of its .part), `--min-split-size=4M` (the engine's smallest piece), no integrity check,
no config file (see ARIA2C_OPTIONS); its output is fsynced after the run like curl's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import socket
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
NGINX = "/usr/sbin/nginx"

CURL_NULL = "curl → /dev/null"
CURL = "curl"
ARIA2C = "aria2c -x8 -s8"
ENGINE_8 = "engine, 8 connections"
ENGINE_1 = "engine, 1 connection"
REQUESTS = "requests, 8 KiB loop"

ARIA2C_OPTIONS = [
    "--no-conf",
    "--max-connection-per-server=8",
    "--split=8",
    "--min-split-size=4M",
    "--file-allocation=trunc",
    "--check-integrity=false",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
    "--console-log-level=warn",
    "--summary-interval=0",
    "--download-result=hide",
]

# The Python clients, run as `bench/download.py --client KIND [ARG] URL DEST SHA256 SIZE`.
PYTHON_CLIENTS = {ENGINE_8: ["engine", "8"], ENGINE_1: ["engine", "1"], REQUESTS: ["requests"]}

RSS_GOAL_MB = 150


class _Handler(BaseHTTPRequestHandler):
    """GET with single-range support; the body goes out with sendfile(), no copy in Python.

    Says Accept-Ranges and a strong ETag like nginx, so the engine splits the file here too.
    """

    protocol_version = "HTTP/1.1"
    source: Path

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        size = self.source.stat().st_size
        start, end = 0, size
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if match:
            start = int(match[1])
            end = min(int(match[2]) + 1, size) if match[2] else size
            if start >= end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{size:x}"')
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        self.wfile.flush()
        with open(self.source, "rb") as fh:
            self.connection.sendfile(fh, start, end - start)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client hanging up is no error: the engine drops a connection mid-answer when
        another connection has taken over the rest of its range."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def served(source: Path):
    """Serve `source` from this process; yield its URL."""
    handler = type("Handler", (_Handler,), {"source": source})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{source.name}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def served_by_nginx(work: Path, source: Path, rate_mib: int):
    """Run nginx in the foreground on a free port of 127.0.0.1, serving `source` at `rate_mib`
    MiB/s per connection; yield its URL.

    Everything it writes (config, pid, error log, temp dirs) stays under work/nginx. One process
    (master_process off), which keeps the caller's user: run as root, nginx's workers would
    switch to nobody, who cannot read the bench's private temp dir.
    """
    home = work / "nginx"
    home.mkdir()
    port = free_port()
    built_with = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    kinds = [kind.replace("-", "_") for kind in re.findall(r"--http-([\w-]+)-temp-path", built_with)]
    temp_paths = "\n".join(f"    {kind}_temp_path {home / kind};" for kind in kinds)
    log = home / "error.log"
    config = home / "nginx.conf"
    config.write_text(
        f"""daemon off;
master_process off;
pid {home / "nginx.pid"};
error_log {log} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp_paths}
    sendfile on;
    sendfile_max_chunk 256k;  # limit_rate lets each request's first chunk out at once
    tcp_nopush on;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {source.parent};
        limit_rate {rate_mib}m;
    }}
}}
"""
    )
    process = subprocess.Popen([NGINX, "-p", str(home), "-c", str(config), "-e", str(log)], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"nginx did not start:\n{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/{source.name}"
    finally:
        stop(process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


# --- the Python clients, each printing "seconds peak-RSS-MB" ----------------------------------


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


def client_engine(connections: str, url: str, dest: str, sha256: str, size: str) -> float:
    sys.path.insert(0, str(ROOT))
    from downloads.engine import FileSpec, Options, download

    spec = FileSpec(url=url, dest=Path(dest), expected_size=int(size), sha256=sha256)
    started = time.perf_counter()
    download(spec, options=Options(connections=int(connections)))
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


def command(name: str, url: str, dest: Path, sha256: str, size: int) -> list[str]:
    if name in (CURL, CURL_NULL):
        return ["curl", "-s", "-S", "-f", "-o", str(dest), "-w", "%{time_total} 0", url]
    if name == ARIA2C:
        return ["aria2c", *ARIA2C_OPTIONS, "-d", str(dest.parent), "-o", dest.name, url]
    return [sys.executable, __file__, "--client", *PYTHON_CLIENTS[name], url, str(dest), sha256, str(size)]


def installed(names: list[str]) -> list[str]:
    """The clients whose program is here; a note for each one that is not."""
    here = []
    for name in names:
        program = command(name, "", Path("x"), "", 0)[0]
        if shutil.which(program):
            here.append(name)
        else:
            print(f"note: {program} is not installed, so {name!r} is skipped", flush=True)
    return here


def run_client(name: str, url: str, dest: Path, sha256: str, size: int) -> tuple[float, float, int]:
    """Run one client in a subprocess; return (seconds spent downloading, peak RSS in MB, most
    connections open at once).

    Peak RSS: the Python clients report their VmHWM when done; the others' is sampled from
    /proc while they run (a high-water mark, so sampling misses at most the last few
    milliseconds). Connections: the most TCP sockets the process had open at a sample (every 20 ms).
    aria2c reports no time: its time is from start to exit as seen here (to within a sample).
    """
    started = time.perf_counter()
    process = subprocess.Popen(command(name, url, dest, sha256, size), stdout=subprocess.PIPE, text=True)
    sampled, connections = 0.0, 0
    while process.poll() is None:
        try:
            sampled = max(sampled, peak_rss_mb(process.pid))
            connections = max(connections, tcp_connections(process.pid))
        except (OSError, ValueError):
            pass  # exiting
        time.sleep(0.02)
    wall = time.perf_counter() - started
    output = process.stdout.read()
    if process.returncode:
        raise SystemExit(f"{name} failed with exit code {process.returncode}\n{output}")
    if name == ARIA2C:
        return wall, sampled, connections
    seconds, reported = output.split()
    return float(seconds), max(sampled, float(reported)), connections


def tcp_connections(pid: int) -> int:
    """How many IPv4 TCP sockets the process has open (curl's resolver has a socketpair too)."""
    fds = Path(f"/proc/{pid}/fd")
    inodes = {os.readlink(fds / fd).removeprefix("socket:[").removesuffix("]") for fd in os.listdir(fds)}
    with open(f"/proc/{pid}/net/tcp") as fh:
        next(fh)  # the header
        return sum(line.split()[9] in inodes for line in fh)


def fsync_seconds(path: Path) -> float:
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def measure(url: str, names: list[str], work: Path, sha256: str, size: int, rounds: int) -> dict[str, dict]:
    """Run each client `rounds` times, in an order that rotates so that none always runs first;
    return {name: {seconds, durable, rss, connections}}: medians of the times, the highest RSS."""
    runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in names}
    for round_number in range(1, rounds + 1):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            dest = Path("/dev/null") if name == CURL_NULL else work / "out" / "model.bin"
            os.sync()
            seconds, rss, connections = run_client(name, url, dest, sha256, size)
            durable = seconds
            if name != CURL_NULL:
                if name not in (ENGINE_8, ENGINE_1):
                    durable += fsync_seconds(dest)
                if sha256_file(dest) != sha256:
                    raise SystemExit(f"{name} produced a wrong file")
                dest.unlink()
            runs[name].append((seconds, durable, rss, connections))
            print(f"  round {round_number}: {name:22} {size / seconds / 1e6:8.0f} MB/s", flush=True)
    return {
        name: {
            "seconds": statistics.median(run[0] for run in results),
            "durable": statistics.median(run[1] for run in results),
            "rss": max(run[2] for run in results),
            "connections": max(run[3] for run in results),
        }
        for name, results in runs.items()
    }


def report(title: str, rows: dict[str, dict], size: int) -> None:
    curl = rows.get(CURL)
    print(f"\n{title}")
    print(
        f"{'client':22} {'seconds':>8} {'durable s':>10} {'MB/s':>7} {'durable MB/s':>13}"
        f" {'× curl durable':>15} {'peak RSS MB':>12} {'connections':>12}"
    )
    for name, row in rows.items():
        durable = "-" if name == CURL_NULL else f"{row['durable']:.2f}"
        durable_speed = "-" if name == CURL_NULL else f"{size / row['durable'] / 1e6:.0f}"
        ratio = "-" if name == CURL_NULL or curl is None else f"{curl['durable'] / row['durable']:.2f}"
        print(
            f"{name:22} {row['seconds']:8.2f} {durable:>10} {size / row['seconds'] / 1e6:7.0f} {durable_speed:>13}"
            f" {ratio:>15} {row['rss']:12.1f} {row['connections']:>12}"
        )
    print("durable = until the data is on disk (engine: its own fsync; the others: fsync added after the run)")


def judge(scenarios: dict[str, dict[str, dict]]) -> bool:
    """Print each goal of issue 14 with what was measured and PASS or FAIL; True if none failed."""

    def ratio(scenario: str, numerator: str, denominator: str) -> float | None:
        """One client's durable time over another's, or None if either was not run."""
        rows = scenarios.get(scenario, {})
        if numerator in rows and denominator in rows:
            return rows[numerator]["durable"] / rows[denominator]["durable"]
        return None

    rss = [row["rss"] for rows in scenarios.values() for name, row in rows.items() if name in (ENGINE_8, ENGINE_1)]
    goals = [  # (what, measured, unit, lowest passing, highest passing)
        ("uncapped: engine ≥ 0.95× curl's speed", ratio("uncapped", CURL, ENGINE_8), "×", 0.95, None),
        ("capped: engine ≥ 6× faster than curl", ratio("capped", CURL, ENGINE_8), "×", 6.0, None),
        ("capped: engine's time ≤ 1.15× aria2c's", ratio("capped", ENGINE_8, ARIA2C), "×", None, 1.15),
        (f"engine's peak RSS < {RSS_GOAL_MB} MB (every run)", max(rss, default=None), " MB", None, RSS_GOAL_MB),
    ]
    print(f"\n{'goal (issue 14; engine with 8 connections, durable times)':58} {'measured':>10}  verdict")
    failed = False
    for text, measured, unit, lowest, highest in goals:
        if measured is None:
            print(f"{text:58} {'-':>10}  skipped")
            continue
        passed = (lowest is None or measured >= lowest) and (highest is None or measured <= highest)
        failed = failed or not passed
        print(f"{text:58} {f'{measured:.2f}{unit}':>10}  {'PASS' if passed else 'FAIL'}")
    return not failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rate-mib", type=int, default=25, help="nginx's limit_rate per connection (capped)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per client; the median is shown")
    parser.add_argument("--dir", default=None, help="where to put the files (default: the temp dir)")
    parser.add_argument("--only", choices=["uncapped", "capped"], help="run one scenario")
    parser.add_argument("--client", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        kind, *rest = args.client
        print(CLIENTS[kind](*rest), peak_rss_mb())
        return
    if not shutil.which("curl"):
        raise SystemExit("curl is needed: every goal is measured against it")

    size, rate = args.size_mib * MIB, args.rate_mib
    work = Path(tempfile.mkdtemp(prefix="presetsite-download-bench-", dir=args.dir))
    titles = {
        "uncapped": "uncapped: the bench's own sendfile() server",
        "capped": f"capped: nginx, limit_rate {rate} MiB/s per connection",
    }
    scenarios: dict[str, dict[str, dict]] = {}
    try:
        (work / "www").mkdir()
        (work / "out").mkdir()
        source = work / "www" / "model.bin"
        print(f"writing a {args.size_mib} MiB source file in {work} ...", flush=True)
        sha256 = make_source(source, size)
        for scenario in [args.only] if args.only else titles:
            if scenario == "capped" and not os.access(NGINX, os.X_OK):
                print(f"note: {NGINX} is not installed (apt-get install nginx-light): the capped scenario is skipped")
                continue
            print(titles[scenario], flush=True)
            if scenario == "uncapped":
                server, clients = served(source), [CURL_NULL, CURL, ENGINE_8, ENGINE_1, REQUESTS]
            else:
                server, clients = served_by_nginx(work, source, rate), [CURL, ARIA2C, ENGINE_8, ENGINE_1]
            with server as url:
                scenarios[scenario] = measure(url, installed(clients), work, sha256, size, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    where = f"{args.size_mib} MiB from 127.0.0.1 into {work.parent}, median of {args.rounds} runs"
    for scenario, rows in scenarios.items():
        report(f"{titles[scenario]}; {where}", rows, size)
    if not judge(scenarios):
        sys.exit(1)


if __name__ == "__main__":
    main()
