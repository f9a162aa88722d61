"""Ask a model file's source what it is, without downloading it: exact size, sha256, name, and
whether the link works at all.

Plain Python, no Django: enrich (downloads/enrich.py), the link check (downloads/links.py), adding
presets from URLs and bench/enrich.py use it. A probe is a HEAD, or, when a server refuses HEAD
(405, 501) or gives no length, a GET of one byte (Range: bytes=0-0) whose body is not read. Its
redirects go through the engine's `follow`, the same hop checks, tokens and X-Linked reading as a
download. A probe never raises: whatever happens becomes a `Probe` whose status says it in one word
and whose message says it in a sentence.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import requests

from downloads import engine
from downloads.sources import host_of

_CONTENT_RANGE_TOTAL = re.compile(r"bytes\s+\d+-\d+/(\d+)\s*$", re.IGNORECASE)
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([\w!#$%&+^`{}~-]+)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.IGNORECASE)


@dataclass(frozen=True)
class Probe:
    """What the source of `url` said.

    status: "ok", "not_found" (404/410), "needs_token" (401/403 and no token set for the host),
        "refused" (401/403 although a token is set), "timeout", or "error" (anything else).
    size: the exact size: X-Linked-Size, else the final answer's length (None: not told).
    sha256: from a Hugging Face host's X-Linked-Etag, else None.
    filename: from Content-Disposition, else the last part of the URL's path.
    final_url: where the redirects led, without its query (a signed URL's signature is a secret).
    message: the result in words, for reports.
    """

    url: str
    status: str
    http_status: int | None
    size: int | None
    sha256: str | None
    filename: str | None
    final_url: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def probe(
    url: str, *, options: engine.Options, session: requests.Session | None = None, deadline: float = 20.0
) -> Probe:
    """Probe one URL within `deadline` seconds, all hops and the fallback GET included.

    Each request's timeouts are cut to the time left, and the probe runs on a helper thread that
    is given up on at the deadline, so a server that trickles its headers cannot hold it longer.
    """
    own_session = session is None
    session = session or engine.credential_free_session()
    outcome: list[Probe] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_probe(url, options, session, time.monotonic() + deadline)),
        name="probe",
        daemon=True,
    )
    worker.start()
    worker.join(deadline + 1.0)
    if own_session and not worker.is_alive():
        session.close()
    if outcome:
        return outcome[0]
    return _failed(url, "timeout", f"{_host(url)} did not answer within {deadline:g} s", options)


def probe_many(
    urls, *, options: engine.Options, workers: int = 8, deadline: float = 20.0, session: requests.Session | None = None
) -> list[Probe]:
    """Probe each URL, at most `workers` at a time over one pool of connections; results in the
    order of `urls`."""
    urls = list(urls)
    own_session = session is None
    session = session or engine.credential_free_session()
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="probe") as pool:
            return list(pool.map(lambda url: probe(url, options=options, session=session, deadline=deadline), urls))
    finally:
        if own_session:
            session.close()


def _probe(url: str, options: engine.Options, session: requests.Session, ends: float) -> Probe:
    try:
        response, linked, final_url = _ask(url, "HEAD", options, session, ends)
        if response.status_code in (405, 501) or (response.ok and _length(response) is None):
            response, linked, final_url = _ask(url, "GET", options, session, ends)
    except engine.DownloadError as error:
        return _failed(url, "error", error.message, options)
    except _Timeout:
        return _failed(url, "timeout", f"{_host(url)} did not answer in time", options)
    except engine.NETWORK_ERRORS as exc:
        error = engine.network_error(exc, url, options)
        return _failed(url, "timeout" if isinstance(exc, requests.Timeout) else "error", error.message, options)
    return _judge(url, response, linked, final_url, options)


class _Timeout(Exception):
    """The probe's deadline passed between two hops."""


def _ask(url, method, options, session, ends):
    """One request (HEAD, or a GET of the first byte), redirects followed; the response is closed
    before it is returned (its headers stay readable)."""
    headers = {"User-Agent": options.user_agent, "Accept-Encoding": "identity"}
    if method == "GET":
        headers["Range"] = "bytes=0-0"
    hops: list[str] = []

    def on_hop(hop: str) -> None:
        if time.monotonic() >= ends:
            raise _Timeout
        hops.append(hop)

    left = max(0.001, ends - time.monotonic())
    timeout = (min(options.timeout[0], left), min(options.timeout[1], left))
    linked = engine.Linked()
    response = engine.follow(
        session, url, headers, options, method=method, linked=linked, on_hop=on_hop, timeout=timeout
    )
    response.close()
    return response, linked, hops[-1]


def _judge(url, response, linked, final_url, options) -> Probe:
    status = response.status_code
    host = _host(final_url)
    shown_final = _without_query(final_url)
    if status in (200, 206):
        size = linked.size if linked.size is not None else _length(response)
        name = _disposition_name(response.headers.get("Content-Disposition", "")) or _path_name(url)
        if size is None:
            message = f"{host} did not say how long it is"
        else:
            message = f"{size:,} bytes" + (f", sha256 from {linked.host}" if linked.sha256 else "")
        return Probe(url, "ok", status, size, linked.sha256, name, shown_final, message)
    if status in (404, 410):
        return Probe(url, "not_found", status, None, None, None, shown_final, f"not found on {host} (HTTP {status})")
    if status in (401, 403):
        source = options.sources.source_for(final_url)
        if options.sources.token_for(final_url):
            kind, message = "refused", f"{host} refused the token (HTTP {status})"
        elif source and source.token_setting:
            kind, message = "needs_token", f"needs {source.token_setting}"
        else:
            kind, message = "needs_token", f"{host} wants a login (HTTP {status})"
        return Probe(url, kind, status, None, None, None, shown_final, message)
    return Probe(url, "error", status, None, None, None, shown_final, f"{host} answered HTTP {status}")


def _failed(url: str, status: str, message: str, options: engine.Options) -> Probe:
    return Probe(url, status, None, None, None, None, None, engine.scrub(message, options))


def _length(response: requests.Response) -> int | None:
    """The whole file's length: a Content-Range's total, or the Content-Length of a HEAD or 200."""
    if response.status_code == 206:
        match = _CONTENT_RANGE_TOTAL.match(response.headers.get("Content-Range", ""))
        return int(match[1]) if match else None
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _disposition_name(value: str) -> str | None:
    """The file name a Content-Disposition gives (filename* preferred), without any folders."""
    if match := _FILENAME_STAR.search(value):
        try:
            name = unquote(match[2].strip(), encoding=match[1], errors="strict")
        except (LookupError, UnicodeDecodeError):
            name = ""
    elif match := _FILENAME.search(value):
        name = match[1].replace('\\"', '"') if match[1] is not None else match[2]
    else:
        name = ""
    return _base_name(name)


def _path_name(url: str) -> str | None:
    return _base_name(unquote(urlsplit(url).path))


def _base_name(name: str) -> str | None:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None


def _without_query(url: str) -> str:
    return urlsplit(url)._replace(query="", fragment="").geturl()


def _host(url: str) -> str:
    return host_of(url) or "the server"
