"""A local HTTP server for download tests: deterministic files and faults on demand.

Files are generated from their offset (a seeded pattern), so a large file costs no memory and
tests can compute the expected sha256 themselves. Faults are attached to a path either as a
script consumed one request at a time (`script`) or as a standing behaviour (`always`):

    with FaultServer() as server:
        f = server.add_file("/model.bin", 1 << 20)
        server.script("/model.bin", Fault(status=500), None, Fault(reset_after=1000))
        ...  # download server.url("/model.bin"), then inspect server.requests

Faults can also be aimed at a byte (`at_byte`): the next requests whose range contains it take
them, whatever their order, as parallel range downloads need. `Fault(rate=...)` throttles one
response, so `always(path, Fault(rate=...))` is a per-connection cap like nginx's `limit_rate`.

Every request is recorded (path, Host, headers, the client's address) so tests can assert Range
or Authorization and count TCP connections; `bytes_sent` counts the body bytes written per path.
Range requests are served properly (206 + Content-Range, 416 beyond the end), and so is If-Range:
each file has a strong ETag by default (and a Last-Modified date if given), and a Range whose
If-Range no longer matches gets the whole new file with 200, as RFC 9110 says. Adding a file
again under the same path changes it on the server (a new upload of the model).

`add_hf_file` serves a file the way Hugging Face does: a `resolve` path that redirects, with
X-Linked-Size and X-Linked-Etag, to a CDN URL whose signature expires.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_PATTERN_LEN = 65521  # prime, so the pattern never lines up with power-of-two chunk sizes
_EVERY_BYTE = (0, 1 << 63)
_EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
)


class ServedFile:
    """Deterministic content of `size` bytes, produced by offset, and its validators.

    etag: the ETag header as sent (default: a strong one naming seed and size; None: none).
    last_modified: the Last-Modified header as sent, or None.
    """

    def __init__(self, size: int, seed: int = 0, etag: str | None = "", last_modified: str | None = None) -> None:
        self.size = size
        self.etag = f'"{seed:x}-{size:x}"' if etag == "" else etag
        self.last_modified = last_modified
        pattern = random.Random(seed).randbytes(_PATTERN_LEN)
        self._doubled = pattern * 2

    def matches(self, if_range: str) -> bool:
        """Whether an If-Range value still names this version (strong comparison only)."""
        if if_range.startswith('"'):
            return bool(self.etag) and not self.etag.startswith("W/") and if_range == self.etag
        return if_range == self.last_modified

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        return b"".join(self.iter(start, end))

    def iter(self, start: int, end: int, chunk: int = 32768):
        """Bytes [start, end) in pieces of at most `chunk` (≤ the pattern length) bytes."""
        chunk = min(chunk, _PATTERN_LEN)
        end = min(end, self.size)
        position = start
        while position < end:
            n = min(chunk, end - position)
            offset = position % _PATTERN_LEN
            yield self._doubled[offset : offset + n]
            position += n

    @cached_property
    def sha256(self) -> str:
        return sha256_of(self.iter(0, self.size))

    def bytes(self) -> bytes:
        return self.read(0, self.size)


def sha256_of(pieces) -> str:
    """sha256 hex digest of an iterable of byte strings."""
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def file_sha256(path) -> str:
    with open(path, "rb") as fh:
        return sha256_of(iter(lambda: fh.read(1 << 20), b""))


@dataclass
class Fault:
    """How to misbehave for one request. Fields combine where it makes sense.

    delay: seconds to wait before answering anything (a stalled server).
    status/headers/body: answer with this status instead of the file (e.g. 500, 429 + Retry-After);
        `headers` alone are added to the file's answer (e.g. Content-Disposition).
    redirect: answer 302 with this Location (and `headers`).
    ignore_range: answer 200 with the whole file even to a Range request.
    content_range_shift: report a Content-Range start shifted by this many bytes (a lying server).
    reset_after: send this many body bytes, then reset the connection (TCP RST).
    truncate_after: announce the full length but close cleanly after this many body bytes.
    trickle: (bytes, seconds) — send the body in pieces of `bytes`, sleeping between them.
    ignore_if_range: honour Range but not If-Range (206 even when the file changed), as old
        servers do.
    no_length: send no Content-Length; the body ends when the connection closes.
    chunked: send no Content-Length but Transfer-Encoding: chunked.
    rate: send the body at most this many bytes a second, in small evenly paced pieces.
    refuse_head: answer a HEAD with 405 (as some servers and CDNs do); a GET behaves.
    """

    delay: float = 0.0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    redirect: str | None = None
    ignore_range: bool = False
    content_range_shift: int = 0
    reset_after: int | None = None
    truncate_after: int | None = None
    trickle: tuple[int, float] | None = None
    ignore_if_range: bool = False
    no_length: bool = False
    chunked: bool = False
    rate: int | None = None
    refuse_head: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    host: str
    headers: dict[str, str]  # lower-case names
    peer: tuple[str, int]  # the client's (host, port): one per TCP connection

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def if_range(self) -> str | None:
        return self.headers.get("if-range")


@dataclass
class _HubFile:
    """A Hugging Face `resolve` path: where it redirects and what its 302 declares."""

    cdn_path: str
    cdn_host: str
    linked_size: int
    linked_etag: str
    etag: str  # the hub's own ETag (of the git pointer), not the CDN's
    signature_lifetime: int | None
    token: str | None  # the bearer token it wants (a gated model), or None


@dataclass
class _Signature:
    path: str
    lifetime: int | None
    uses: int = 0


class _Abort(Exception):
    """The handler dropped the connection on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle(self) -> None:
        try:
            super().handle()
        except (_Abort, OSError):
            pass

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("HEAD")

    def _answer(self, method: str) -> None:
        """Answer as to a GET; a HEAD gets the same status and headers, no body."""
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        self._path = path
        self._head = method == "HEAD"
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner._record(RecordedRequest(method, path, self.headers.get("Host", ""), headers, self.client_address[:2]))
        served = owner.files.get(path)
        span = _requested_span(self.headers.get("Range"), served.size if served else _EVERY_BYTE[1])
        fault = owner._next_fault(path, span) or Fault()
        if fault.delay and owner._stopping.wait(fault.delay):
            raise _Abort
        if fault.refuse_head and self._head:
            self._simple(405, {"Allow": "GET"})
        elif fault.redirect is not None:
            self._simple(302, {**fault.headers, "Location": fault.redirect})
        elif fault.status is not None:
            self._simple(fault.status, fault.headers, fault.body)
        elif path in owner._hub and not owner._authorized(path, headers.get("authorization")):
            self._simple(401, {"WWW-Authenticate": "Bearer"}, b"Access to this model is restricted")
        elif path in owner._hub:
            self._simple(302, owner._resolve(path))
        elif not owner._signature_valid(path, query):
            self._simple(403, {"Content-Type": "application/xml"}, _EXPIRED)
        elif served is None:
            self._simple(404, body=b"not found")
        else:
            self._serve(served, fault)

    def _simple(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write(body)

    def _write(self, data: bytes, framed: bytes | None = None) -> None:
        """Send `framed` (or `data`) and count `data` as body bytes sent for this path: counted
        before the write, so a client that has read them finds them counted; a failed write is not.
        Nothing is sent in answer to a HEAD."""
        if self._head:
            return
        owner = self.server.owner
        owner._count_sent(self._path, len(data))
        try:
            self.wfile.write(data if framed is None else framed)
        except OSError:
            owner._count_sent(self._path, -len(data))
            raise

    def _serve(self, served: ServedFile, fault: Fault) -> None:
        start, end = 0, served.size
        ranged = _parse_range(self.headers.get("Range"), served.size)
        if_range = self.headers.get("If-Range")
        if ranged and if_range and not fault.ignore_if_range and not served.matches(if_range):
            ranged = None  # the file changed: the whole new one, not a piece of it
        if ranged == "unsatisfiable":
            self._simple(416, {"Content-Range": f"bytes */{served.size}"})
            return
        if ranged and not fault.ignore_range:
            start, end = ranged
            self.send_response(206)
            shifted = start + fault.content_range_shift
            self.send_header("Content-Range", f"bytes {shifted}-{shifted + end - start - 1}/{served.size}")
        else:
            self.send_response(200)
        if fault.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif fault.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if served.etag:
            self.send_header("ETag", served.etag)
        if served.last_modified:
            self.send_header("Last-Modified", served.last_modified)
        for name, value in fault.headers.items():
            self.send_header(name, value)
        self.end_headers()

        limit = end - start
        for cut in (fault.reset_after, fault.truncate_after):
            if cut is not None:
                limit = min(limit, cut)
        self._send_body(served, start, start + limit, fault)
        if fault.reset_after is not None and fault.reset_after < end - start:
            self._reset()
        if fault.truncate_after is not None and fault.truncate_after < end - start:
            self.close_connection = True
        elif fault.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send_body(self, served: ServedFile, start: int, end: int, fault: Fault) -> None:
        """Bytes [start, end) of the file, trickled and/or paced to `fault.rate` (50 pieces a second,
        so the rate holds over any short window); a server stop interrupts the waits."""
        stopping = self.server.owner._stopping
        piece, pause = fault.trickle or (32768, 0.0)
        if fault.rate:
            piece = max(1, min(piece, fault.rate // 50))
        began, sent = time.monotonic(), 0
        for data in served.iter(start, end, piece):
            self._write(data, b"%x\r\n%s\r\n" % (len(data), data) if fault.chunked else None)
            sent += len(data)
            if pause and stopping.wait(pause):
                raise _Abort
            if fault.rate:
                ahead = began + sent / fault.rate - time.monotonic()
                if ahead > 0 and stopping.wait(ahead):
                    raise _Abort

    def _reset(self) -> None:
        """Let the client read what was sent, then drop the connection with a TCP RST."""
        self.server.owner._stopping.wait(0.05)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        raise _Abort


def _parse_range(value: str | None, size: int):
    """(start, end) for a single `bytes=a-` / `bytes=a-b` range, "unsatisfiable", or None."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[len("bytes=") :].partition("-")
    if not first.isdigit():
        return None
    start = int(first)
    end = min(int(last) + 1, size) if last.isdigit() else size
    return "unsatisfiable" if start >= size else (start, end)


def _requested_span(value: str | None, size: int) -> tuple[int, int]:
    """The bytes [start, end) a request asks for: all of them without a usable Range."""
    ranged = _parse_range(value, size)
    if ranged == "unsatisfiable":
        return (0, 0)
    return ranged or _EVERY_BYTE


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # parallel range downloads open many connections at once
    owner: FaultServer

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up mid-response are part of the tests


class FaultServer:
    """Threaded HTTP server on 127.0.0.1 (random port); use as a context manager."""

    def __init__(self) -> None:
        self.files: dict[str, ServedFile] = {}
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, list[Fault | None]] = {}
        self._standing: dict[str, Fault] = {}
        self._aimed: dict[str, list[tuple[int, list[Fault | None]]]] = {}
        self._sent: dict[str, int] = {}
        self._hub: dict[str, _HubFile] = {}
        self._signed_paths: set[str] = set()
        self._signatures: dict[str, _Signature] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="faultserver", daemon=True
        )

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add_file(self, path: str, size: int, seed: int | None = None, **validators) -> ServedFile:
        """Serve a file at `path` (replacing what was there); validators: see ServedFile."""
        served = ServedFile(size, seed if seed is not None else len(self.files), **validators)
        self.files[path] = served
        return served

    def add_hf_file(
        self,
        resolve_path: str,
        cdn_path: str,
        size: int,
        seed: int | None = None,
        linked_etag: str | None = None,
        signature_lifetime: int | None = None,
        cdn_host: str = "127.0.0.1",
        token: str | None = None,
    ) -> ServedFile:
        """Serve a file as Hugging Face does: GET `resolve_path` answers 302 to
        `http://<cdn_host>:<port><cdn_path>?sig=<n>`, a new signature each time, with X-Linked-Size,
        X-Linked-Etag (the quoted sha256, or `linked_etag` as given, to lie) and the hub's ETag.
        The CDN path answers 403 "Request has expired" to an unknown signature, or to one already
        used `signature_lifetime` times (None: never expires). Ask for the resolve URL with
        host="localhost" to tell hub and CDN apart by host name. With `token`, a gated model: the
        resolve path answers 401 unless asked with "Authorization: Bearer <token>"."""
        served = self.add_file(cdn_path, size, seed)
        declared = f'"{served.sha256}"' if linked_etag is None else linked_etag
        pointer_etag = f'"{hashlib.sha1(declared.encode()).hexdigest()}"'
        with self._lock:
            self._hub[resolve_path] = _HubFile(
                cdn_path, cdn_host, size, declared, pointer_etag, signature_lifetime, token
            )
            self._signed_paths.add(cdn_path)
        return served

    def script(self, path: str, *faults: Fault | None) -> None:
        """Faults for the next requests to `path`, one each, in order (None: behave)."""
        with self._lock:
            self._scripts.setdefault(path, []).extend(faults)

    def always(self, path: str, fault: Fault | None) -> None:
        """A fault for every request to `path` once its script is used up (None: stop)."""
        with self._lock:
            if fault is None:
                self._standing.pop(path, None)
            else:
                self._standing[path] = fault

    def at_byte(self, path: str, byte: int, *faults: Fault | None) -> None:
        """Faults for the next requests to `path` whose range contains `byte` (a request without
        Range contains every byte), one each, in order. Such a request takes one of these instead
        of the script or standing fault, and leaves the script as it is."""
        with self._lock:
            self._aimed.setdefault(path, []).append((byte, list(faults)))

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def connections_for(self, path: str) -> int:
        """How many TCP connections requests to `path` came over."""
        return len({request.peer for request in self.requests_for(path)})

    def bytes_sent(self, path: str) -> int:
        """Body bytes written to the socket for `path`, over all requests (an aborted response
        counts what was written before it stopped; the client may not have read all of it)."""
        with self._lock:
            return self._sent.get(path, 0)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_sent(self, path: str, n: int) -> None:
        with self._lock:
            self._sent[path] = self._sent.get(path, 0) + n

    def _next_fault(self, path: str, span: tuple[int, int]) -> Fault | None:
        with self._lock:
            for byte, faults in self._aimed.get(path, []):
                if faults and span[0] <= byte < span[1]:
                    return faults.pop(0)
            script = self._scripts.get(path)
            if script:
                return script.pop(0)
            return self._standing.get(path)

    def _resolve(self, path: str) -> dict[str, str]:
        """The headers of a resolve redirect, with a newly issued signature."""
        hub = self._hub[path]
        with self._lock:
            signature = str(len(self._signatures) + 1)
            self._signatures[signature] = _Signature(hub.cdn_path, hub.signature_lifetime)
        return {
            "Location": f"{self.url(hub.cdn_path, hub.cdn_host)}?sig={signature}",
            "X-Linked-Size": str(hub.linked_size),
            "X-Linked-Etag": hub.linked_etag,
            "ETag": hub.etag,
        }

    def _authorized(self, path: str, authorization: str | None) -> bool:
        token = self._hub[path].token
        return token is None or authorization == f"Bearer {token}"

    def _signature_valid(self, path: str, query: str) -> bool:
        """Whether a request may have `path`: always, unless it is a CDN path, which needs a live
        signature; each request counts as one use of it."""
        if path not in self._signed_paths:
            return True
        signature = parse_qs(query).get("sig", [""])[0]
        with self._lock:
            issued = self._signatures.get(signature)
            if issued is None or issued.path != path:
                return False
            issued.uses += 1
            return issued.lifetime is None or issued.uses <= issued.lifetime
