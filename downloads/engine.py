"""Download engine: fetch one file over HTTP(S) into its final place, resumable and verified.

Plain Python, no Django: the django-q2 worker drives it through callbacks, and the tests and
the benchmark (bench/download.py) use it directly.

- `fetch()` makes one attempt: stream into ``<dest>.part`` (resuming it with a Range request
  that names the version it holds, see `storage.validator_path`), verify size and sha256, then
  atomically rename to ``dest``. A file under its final name is therefore always complete and
  verified.
- `download()` wraps `fetch()` in the retry policy (backoff, Retry-After, attempt counter reset
  on progress) and makes the waits between attempts interruptible.

Pause and cancel are cooperative: `fetch()` polls ``control.stop_requested()`` between chunks
and at least every `POLL_INTERVAL` seconds while the network is silent, and raises `Stopped`
leaving the ``.part`` in place; the caller deletes it on cancel if it wants to.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import hashlib
import os
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from downloads.ranges import Plan, Segment
from downloads.sources import Sources, host_matches, host_of
from presets.catalogue import unsafe_url_reason
from presets.sizes import human_size
from storage import (
    NAME_MAX,
    RangesRecord,
    free_space,
    fsync_dir,
    part_path,
    partial_bytes,
    ranges_path,
    read_ranges,
    remove_partial,
    validator_path,
    write_ranges,
)

VERSION = "1.0"
USER_AGENT = f"presetsite/{VERSION}"

# Chunks are hashed and written in slices of this size: large write() calls are several times
# slower on Linux page cache than 64 KiB ones, and a slice hashed then written stays in CPU cache.
_WRITE_SLICE = 64 << 10

# The prefix hasher reads back this much at a time.
_HASH_BLOCK = 1 << 20

# Every this many bytes, writeback of the new data is started (see _start_writeback).
_WRITEBACK_STEP = 32 << 20

# How often control is polled while nothing arrives from the network, and the slice in which
# waits between attempts are cut. Keeps pause/cancel latency well under a second.
POLL_INTERVAL = 0.25

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_QUERY = re.compile(r"\?[^\s'\"<>()]*")

# A download whose server sent no length is accepted against the catalogue's approximate size
# (upstream's "4.8GB", "~23GB": rounded, and GB may mean 10^9 or 2^30) when within this fraction.
APPROX_SIZE_TOLERANCE = 0.15

NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
_PERMANENT_REQUEST_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


@dataclass(frozen=True)
class FileSpec:
    """What to download and where; `label` names the file in messages (default: dest's name).

    expected_size is the exact size; approx_size the catalogue's estimate, used only to judge a
    download whose server sent no length (see APPROX_SIZE_TOLERANCE).
    """

    url: str
    dest: Path
    expected_size: int | None = None
    sha256: str | None = None
    label: str | None = None
    approx_size: int | None = None
    size_from: str | None = None  # where expected_size came from, when not the catalogue
    sha256_from: str | None = None  # likewise for sha256

    @property
    def name(self) -> str:
        return self.label or self.dest.name


@dataclass(frozen=True)
class Options:
    """Per-deployment knobs of a single attempt (the Django settings fill them in).

    sources: the tokens, each sent only to its own source's hosts, never elsewhere (redirects
        are followed hop by hop and each hop gets only its own host's token); the advice added
        to a 401/403; the allowed hosts, which every hop, redirects too, must go to (a hop
        elsewhere is refused before it is requested).
    timeout: (connect, read) seconds; read is the longest silence tolerated mid-transfer.
    chunk_size, buffer_chunks: the most bytes one network read hands over, and how many such
        chunks may wait for the disk; memory use stays under chunk_size * (buffer_chunks + 2).
    disk_reserve: bytes to leave free on the target filesystem.
    connections: the most connections one file is fetched over (byte ranges in parallel); 1
        fetches every file over a single stream, and so does a file smaller than
        single_stream_below. min_piece: the smallest range handed to a connection.
    huggingface_hosts: hosts whose `resolve` answers carry X-Linked-Size and X-Linked-Etag (the
        exact size and sha256 of the file it redirects to); these fill in what the spec lacks.
    """

    sources: Sources = field(default_factory=Sources)
    timeout: tuple[float, float] = (10.0, 60.0)
    chunk_size: int = 1 << 20
    buffer_chunks: int = 8
    disk_reserve: int = 0
    max_redirects: int = 10
    user_agent: str = USER_AGENT
    connections: int = 8
    huggingface_hosts: tuple[str, ...] = ("huggingface.co", "hf.co")
    single_stream_below: int = 32 << 20
    min_piece: int = 4 << 20


@dataclass(frozen=True)
class RetryPolicy:
    """Retry numbers for `download()`; seconds, except the byte threshold.

    An attempt that grew the .part by at least `progress_threshold` bytes before failing resets
    the attempt counter, so a flaky link cannot fail a 20 GB file after a few resets.
    """

    max_attempts: int = 3
    backoff_initial: float = 5.0
    backoff_max: float = 60.0
    retry_after_max: float = 300.0
    progress_threshold: int = 1 << 20


@dataclass(frozen=True)
class Result:
    """A verified file; source_size and source_sha256: what its source declared (X-Linked-Size
    and X-Linked-Etag from a Hugging Face host, or the length a server announced), or None."""

    size: int
    sha256: str
    resumed_from: int = 0
    source_size: int | None = None
    source_sha256: str | None = None


class StopSource(Protocol):
    def stop_requested(self) -> str | None: ...


class Control:
    """Thread-safe stop flag: the simple `StopSource` used by tests and scripts.

    The worker supplies its own object whose stop_requested() reads the job row (throttled);
    stop_requested() is called after every chunk, so it must be cheap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None

    def pause(self) -> None:
        self._set("pause")

    def cancel(self) -> None:
        self._set("cancel")

    def _set(self, reason: str) -> None:
        with self._lock:
            if self._reason != "cancel":  # cancel wins over pause
                self._reason = reason

    def stop_requested(self) -> str | None:
        with self._lock:
            return self._reason


class Stopped(Exception):
    """Pause or cancel took effect; the .part is left in place."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DownloadError(Exception):
    """A failed attempt, with what the retry loop needs to decide what to do next.

    progress_made: this attempt added bytes to the .part (they are kept for the next attempt).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        progress_made: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.progress_made = progress_made

    def name_file(self, name: str) -> None:
        self.message = f"{name}: {self.message}"
        self.args = (self.message,)


# on_progress(bytes done, file size or None, connections in use)
ProgressCallback = Callable[[int, "int | None", int], None]
RetryCallback = Callable[[int, int, float, str], None]


def download(
    spec: FileSpec,
    *,
    control: StopSource | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: RetryCallback | None = None,
    policy: RetryPolicy = RetryPolicy(),
    options: Options = Options(),
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Run `fetch()` until it succeeds, fails for good, or runs out of attempts.

    The wait before attempt n is backoff_initial * 2**(n-2), capped at backoff_max, or the
    server's Retry-After (capped at retry_after_max) when it sent one. on_retry(attempt,
    max_attempts, delay, message) is called before each wait, attempt being the number of the
    attempt about to start. Raises the last DownloadError, or Stopped.
    """
    own_session = session is None
    session = session or credential_free_session()
    failures = 0
    backoff = policy.backoff_initial
    try:
        while True:
            size_before = partial_bytes(spec.dest)
            try:
                return fetch(
                    spec,
                    session=session,
                    control=control,
                    on_progress=on_progress,
                    on_retry=on_retry,
                    policy=policy,
                    options=options,
                )
            except DownloadError as error:
                if not error.retryable:
                    raise
                if isinstance(error, RangesUnsupported):
                    options = replace(options, connections=1)
                if partial_bytes(spec.dest) - size_before >= max(1, policy.progress_threshold):
                    failures, backoff = 0, policy.backoff_initial
                failures += 1
                if failures >= policy.max_attempts:
                    raise
                if error.retry_after is not None:
                    delay = min(error.retry_after, policy.retry_after_max)
                else:
                    delay, backoff = backoff, min(backoff * 2, policy.backoff_max)
                if on_retry:
                    on_retry(failures + 1, policy.max_attempts, delay, error.message)
                _wait(delay, control, sleep)
    finally:
        if own_session:
            session.close()


def already_in_place(spec: FileSpec, *, control: StopSource | None = None, block: int = 1 << 20) -> Result | None:
    """The Result for a destination that already holds the file, or None to download it.

    A run that died between renaming the .part into place and recording it (kill -9, power
    loss, a database that stayed locked) leaves the whole file there and no .part. It is
    accepted when its sha256 matches, or, with no sha256 given, when its size is the exact
    expected one (as an install skips such a file); one that can be checked neither way is not.
    """
    if part_path(spec.dest).exists() or spec.dest.is_symlink() or not spec.dest.is_file():
        return None
    size = _file_size(spec.dest)
    if spec.expected_size is not None and size != spec.expected_size:
        return None
    if not spec.sha256 and spec.expected_size is None:
        return None
    hasher = hashlib.sha256()
    _hash_existing(spec.dest, size, hasher, control, block)
    if spec.sha256 and hasher.hexdigest() != spec.sha256.strip().lower():
        return None
    return Result(size=size, sha256=hasher.hexdigest(), resumed_from=size)


def credential_free_session() -> requests.Session:
    """A session that sends only the credentials the engine adds itself (Options.tokens).

    Left alone, requests takes a login from ~/.netrc for any host listed there, and sends it
    over plain http too, replacing our own Authorization header.
    """
    session = requests.Session()
    session.auth = _as_given
    # One pooled connection per parallel range, kept alive from one piece to the next.
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _as_given(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def fetch(
    spec: FileSpec,
    *,
    session: requests.Session,
    control: StopSource | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: RetryCallback | None = None,
    policy: RetryPolicy = RetryPolicy(),
    options: Options = Options(),
) -> Result:
    """One attempt: resume or start ``<dest>.part``, stream, verify, rename into place.

    A file of known length, from a server that honours Range, is fetched over up to
    options.connections connections (see `_Ranges`); within the attempt a failed range is
    retried by `policy`, on_retry being told when no connection is left transferring.

    Raises DownloadError (see its `retryable`) or Stopped. A size or sha256 mismatch deletes
    the .part: the next attempt starts from zero. Such a mismatch is retryable only when the
    bytes came from a resumed transfer (a stale or damaged .part is the likely cause); a file
    downloaded in one go that does not match is not what the spec describes, and fetching it
    again would not change that. Every DownloadError's message starts with the file's name.
    """
    try:
        return _attempt(
            spec,
            session=session,
            control=control,
            on_progress=on_progress,
            on_retry=on_retry,
            policy=policy,
            options=options,
        )
    except DownloadError as error:
        error.name_file(spec.name)
        raise


def _attempt(spec, *, session, control, on_progress, on_retry, policy, options) -> Result:
    _check_url(spec.url, options)
    part = part_path(spec.dest)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {part.parent}: {exc.strerror}", retryable=False) from None
    record = _usable_ranges(spec, part, options)
    offset = record.prefix if record else _file_size(part)
    validator = _read_validator(spec.dest) if offset or record else None
    if (spec.expected_size is not None and offset > spec.expected_size) or (
        (offset or record) and validator is None and not spec.sha256
    ):
        # Too long, or of an unknown version (left by an older presetsite, or its validator
        # could not be written) with no sha256 to catch a splice: start again.
        remove_partial(spec.dest)
        offset, record = 0, None
    hasher = hashlib.sha256()
    if offset and record is None:
        _hash_existing(part, offset, hasher, control, options.chunk_size)
    _check_stop(control)

    end = _first_range_end(spec, record, offset, options)
    exchange = _Exchange(session, spec.url, offset, validator, options, ranged=record is not None, end=end)
    ranges = None
    try:
        try:
            response = exchange.get(control)
        except NETWORK_ERRORS as exc:
            raise network_error(exc, exchange.url, options) from None
        host = host_of(exchange.url)
        spec = _with_declared(spec, exchange)
        if response.status_code == 416 and offset and record is None:
            _accept_complete_part(response, spec, part, offset)
            if on_progress:
                on_progress(offset, offset, 1)
            return _finish(spec, part, offset, hasher, resumed_from=offset, sync_part=True)
        start, length = _accept(response, spec, offset, end, validator, host, options)
        total = length if length is not None else spec.expected_size
        on_disk = record.done_bytes if record else offset
        # A new .part: nothing to go on from, or the whole file sent (maybe a new version).
        fresh = response.status_code == 200 or (record is None and offset == 0)
        if fresh:
            record = None
        elif record is not None and total != record.size:
            remove_partial(spec.dest)
            raise _FileChanged(host)
        done_before = 0 if fresh else on_disk
        needed = None if total is None else total - done_before
        _check_disk_space(spec, part, needed=needed, reclaimed=on_disk - done_before, options=options)
        if fresh:
            # Its version is recorded before its first byte is written.
            remove_partial(spec.dest)
            validator = _validator_of(response)
            _write_validator(spec.dest, validator)
            hasher = hashlib.sha256()
        if record is not None or _worth_splitting(response, spec, start, total, end, options):
            ranges = _Ranges(spec, part, total, record, start, exchange, validator, hasher, session, policy, options)
            ranges.run(control, on_progress, on_retry)
            size = total
        else:
            size = _receive(exchange, spec, part, start, total, hasher, control, on_progress, options)
    finally:
        exchange.close()
        if ranges is not None:
            ranges.close()
    if length is None:
        _judge_unannounced_length(spec, size, start, host)
    result = _finish(spec, part, size, hasher, resumed_from=done_before)
    declared = exchange.linked.size if exchange.linked.size is not None else length
    return replace(result, source_size=declared, source_sha256=exchange.linked.sha256)


def _usable_ranges(spec: FileSpec, part: Path, options: Options) -> RangesRecord | None:
    """The ranges record of a .part fetched over several connections, when it can be trusted
    and ranges are to be used; otherwise the .part is made a plain prefix again (or removed)."""
    if not ranges_path(spec.dest).exists():
        return None
    record = read_ranges(spec.dest)
    if record is None or _file_size(part) != record.size or (not record.same_boot and not spec.sha256):
        # Unreadable, or not what the record describes, or the machine restarted since (the
        # last ranges recorded may not be on disk) with no sha256 to catch that: start again.
        remove_partial(spec.dest)
        return None
    if options.connections > 1:
        return record
    # One stream from now on (configured so, or the server stopped honouring Range): keep
    # the prefix, which a single stream appends to.
    try:
        os.truncate(part, record.prefix)
    except OSError:
        remove_partial(spec.dest)
        return None
    _remove(ranges_path(spec.dest))
    return None


def _first_range_end(spec: FileSpec, record: RangesRecord | None, offset: int, options: Options) -> int | None:
    """Where the first request stops when the rest is expected to go over several connections:
    at the end of the first connection's piece, so that its answer ends cleanly (nothing sent
    for nothing, the connection kept alive). A smaller file than expected comes whole in it.
    None: to the end of the file, when one stream is expected (or nothing is known of the size)."""
    if record is not None:
        gap_end = next((start for start, _ in record.done if start > offset), record.size)
        piece = Plan.piece_for(record.size - record.done_bytes, options.connections, options.min_piece)
        return min(gap_end, offset + piece)
    expected = spec.expected_size or spec.approx_size
    if not _may_split(spec, options) or expected is None or expected - offset < options.single_stream_below:
        return None
    return offset + Plan.piece_for(expected - offset, options.connections, options.min_piece)


def _may_split(spec: FileSpec, options: Options) -> bool:
    record_name = ranges_path(spec.dest).name + ".new"
    return options.connections > 1 and len(os.fsencode(record_name)) <= NAME_MAX


def _worth_splitting(response, spec: FileSpec, start: int, total: int | None, end: int | None, options: Options):
    """Whether the rest of the file goes over several connections: its length is known and large
    enough (or longer than the range asked), and the server honours Range (said so, or just did)."""
    if end is not None:
        return response.status_code == 206 and total is not None and total > end
    if not _may_split(spec, options) or total is None or total - start < options.single_stream_below:
        return False
    return response.status_code == 206 or "bytes" in response.headers.get("Accept-Ranges", "").lower()


def _with_declared(spec: FileSpec, exchange: _Exchange) -> FileSpec:
    """The spec with the size and sha256 a Hugging Face host declared where the catalogue gave
    none: the download is verified against them."""
    if spec.expected_size is None and exchange.linked.size is not None:
        spec = replace(spec, expected_size=exchange.linked.size, size_from=f"{exchange.linked.host}'s X-Linked-Size")
    if not spec.sha256 and exchange.linked.sha256:
        spec = replace(spec, sha256=exchange.linked.sha256, sha256_from=f"{exchange.linked.host}'s X-Linked-Etag")
    return spec


@dataclass
class Linked:
    """What a Hugging Face host declared on the way (X-Linked-Size, X-Linked-Etag): the exact size
    and sha256 (the ETag of an LFS file) of what its `resolve` URL redirects to; host: who said so."""

    size: int | None = None
    sha256: str | None = None
    host: str | None = None

    def note(self, url: str, response: requests.Response, options: Options) -> None:
        if not host_matches(host_of(url), options.huggingface_hosts):
            return
        size = _int_header(response.headers.get("X-Linked-Size"))
        etag = response.headers.get("X-Linked-Etag", "").strip().removeprefix("W/").strip('"').lower()
        if size is not None and size >= 0:
            self.size, self.host = size, host_of(url)
        if _SHA256.fullmatch(etag):
            self.sha256, self.host = etag, host_of(url)


def follow(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    options: Options,
    *,
    method: str = "GET",
    linked: Linked,
    on_hop: Callable[[str], None] | None = None,
    timeout: tuple[float, float] | None = None,
) -> requests.Response:
    """Ask for `url`, following redirects by hand so a token only ever goes to its own host and each
    hop is checked against the allowed hosts before it is requested; what Hugging Face hosts
    declare on the way goes to `linked`. on_hop(url) is called before each hop is asked (it may
    raise to give up). Downloads and the prober (downloads/probe.py) both come this way."""
    came_from = None
    for _ in range(options.max_redirects + 1):
        _check_url(url, options, came_from)
        if on_hop:
            on_hop(url)
        came_from = url
        hop_headers = dict(headers)
        token = options.sources.token_for(url)
        if token:
            hop_headers["Authorization"] = f"Bearer {token}"
        response = session.request(
            method,
            url,
            headers=hop_headers,
            stream=True,
            allow_redirects=False,
            timeout=timeout or options.timeout,
        )
        linked.note(url, response, options)
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise DownloadError(f"too many redirects from {_display(came_from)}", retryable=False)


class _Exchange:
    """One HTTP exchange (redirects, headers, body) run on a helper thread.

    Why a thread: a blocking socket read cannot be interrupted, so a stalled or trickling server
    would delay pause/cancel for up to the whole read timeout; and short socket timeouts are
    not an option because http.client's socket file refuses to read again after one. Here the
    helper thread does the network I/O only and hands the response, the body chunks and any
    exception to the caller through a small bounded queue. The caller waits on that queue in
    slices of POLL_INTERVAL and checks control in between, and all callbacks stay on the
    caller's thread (the worker's touch the database). On close, a body read in progress is
    woken up by shutting the socket down (urllib3's HTTPResponse.shutdown); a thread still
    connecting or waiting for headers is left to finish on its own timeout (it is a daemon
    and discards whatever it gets). As a bonus, network reads overlap hashing and writing.
    """

    _EOF = object()

    def __init__(
        self,
        session: requests.Session,
        url: str,
        offset: int,
        validator: str | None,
        options: Options,
        *,
        ranged: bool = False,
        end: int | None = None,
        inbox: queue.Queue | None = None,
    ) -> None:
        """Ask for the file from `offset` (to `end`, exclusive, if given; ranged: with a Range
        header even from 0). Items go to `inbox` as (exchange, item) pairs: several exchanges
        can share one, the memory bound then holding for all of them."""
        self.url = url
        self.range_end = end  # where the body ends, once the answer says (for the ranges)
        self.answered = False  # the answer was accepted and its body is arriving
        self.linked = Linked()
        self._session = session
        self._offset = offset
        self._end = end
        self._ranged = ranged or bool(offset) or end is not None
        self._validator = validator
        self._options = options
        self.inbox: queue.Queue = inbox or queue.Queue(maxsize=max(1, options.buffer_chunks))
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, name="download-exchange", daemon=True)
        self._thread.start()

    def get(self, control: StopSource | None):
        """The next item: the response first, then body chunks, then None at the end."""
        while True:
            _check_stop(control)
            try:
                _, item = self.inbox.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            return None if item is self._EOF else item

    def close(self) -> None:
        if self.stop():  # the read wakes up at once; a thread still connecting is not waited for
            self._thread.join(timeout=POLL_INTERVAL)

    def stop(self) -> bool:
        """Wake up and end the transfer without waiting; True if a body was being read."""
        self._closed.set()
        with self._lock:
            reading = self._response is not None
            if reading:
                try:
                    self._response.raw.shutdown()
                except (OSError, ValueError, RuntimeError):
                    pass  # already closed or released: nothing is blocked on it
        return reading

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        response = None
        try:
            response = self._open()
            with self._lock:
                if self._closed.is_set():
                    return
                self._response = response
            self._put(response)
            # read1 hands over what has arrived (up to a chunk) instead of waiting for a full
            # chunk: on a slow link progress still moves, and the .part grows, every few KB.
            read, size = response.raw.read1, self._options.chunk_size
            while not self._closed.is_set():
                data = read(size, decode_content=False)
                if not data:
                    # All of the body is read: the connection goes back to the pool, and the
                    # next range asked of this host reuses it (so stop() must not touch it now).
                    with self._lock:
                        self._response = None
                        response.raw.release_conn()
                    self._put(self._EOF)
                    return
                self._put(data)
        except BaseException as exc:  # handed to the caller's thread
            self._put(exc)
        finally:
            if response is not None:
                with self._lock:
                    response.close()

    def _open(self) -> requests.Response:
        headers = {"User-Agent": self._options.user_agent, "Accept-Encoding": "identity"}
        if self._ranged:
            headers["Range"] = f"bytes={self._offset}-{'' if self._end is None else self._end - 1}"
            if self._validator:
                headers["If-Range"] = self._validator
        return follow(self._session, self.url, headers, self._options, linked=self.linked, on_hop=self._hop)

    def _hop(self, url: str) -> None:
        if self._closed.is_set():
            raise Stopped("closed")  # let go before it asked: it never asks
        self.url = url

    def _put(self, item) -> None:
        while not self._closed.is_set():
            try:
                self.inbox.put((self, item), timeout=POLL_INTERVAL)
                return
            except queue.Full:
                continue


def _accept(
    response: requests.Response,
    spec: FileSpec,
    offset: int,
    end: int | None,
    validator: str | None,
    host: str,
    options: Options,
):
    """Check status and headers of the answer to a request for bytes [offset, end) (end None:
    to the end of the file); return (start, total): where the body starts and the file's size
    as the server gives it (None when it gives none)."""
    status = response.status_code
    headers = response.headers
    if status not in (200, 206):
        raise _status_error(response, host, options)
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise DownloadError(f"{host} sent it with Content-Encoding {encoding}", retryable=False)
    length = _int_header(headers.get("Content-Length"))
    if status == 200:
        start, total = 0, length
    else:
        content_range = headers.get("Content-Range", "")
        match = _CONTENT_RANGE.match(content_range)
        first, last = (int(match[1]), int(match[2])) if match else (None, None)
        total = int(match[3]) if match and match[3] != "*" else None
        if end is not None and match and total is None:
            raise RangesUnsupported(f"{host} did not say how long the file is (Content-Range {content_range!r})")
        if (
            first != offset
            or (total is not None and last != min(total, end or total) - 1)
            or (length is not None and last is not None and length != last - first + 1)
        ):
            raise DownloadError(
                f"{host} sent the wrong part of the file when asked for bytes {offset:,} on"
                f" (Content-Range {content_range!r})",
                retryable=True,
            )
        if validator and not _same_version(response, validator):
            # A server that ignores If-Range sends the rest of whatever it has now.
            remove_partial(spec.dest)
            raise _FileChanged(host)
        start = offset
    if spec.expected_size is not None and total is not None and total != spec.expected_size:
        remove_partial(spec.dest)
        raise DownloadError(
            f"size mismatch: expected {spec.expected_size:,} bytes{_from(spec.size_from)}, {host} has {total:,}",
            retryable=False,
        )
    return start, total


def _validator_of(response: requests.Response) -> str:
    """What identifies this version of the file for If-Range: a strong ETag, else Last-Modified.

    A weak ETag (W/"...") is not used: it may stay the same when the bytes change, and
    servers must not honour it in If-Range (RFC 9110, 13.1.5).
    """
    etag = response.headers.get("ETag", "").strip()
    if etag.startswith('"') and etag.endswith('"') and len(etag) > 1:
        return etag
    return response.headers.get("Last-Modified", "").strip()


def _same_version(response: requests.Response, validator: str) -> bool:
    """Whether a 206 comes from the version recorded with the .part, as far as it says."""
    header = "ETag" if validator.startswith('"') else "Last-Modified"
    now = response.headers.get(header, "").strip()
    return not now or now == validator


def _read_validator(dest: Path) -> str | None:
    """The recorded version of ``<dest>.part`` ("" when its server gave none), or None when
    there is no usable record. A symbolic link planted there is not followed."""
    try:
        fd = os.open(validator_path(dest), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        text = os.read(fd, 1024).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    return text if text.isprintable() else None


def _write_validator(dest: Path, validator: str) -> None:
    """Record the version of the .part about to be written (durably: a kill -9 or power cut
    must not leave new bytes with no record). A record that cannot be written is left out:
    the .part then counts as of unknown version and a resume starts from zero."""
    path = validator_path(dest)
    _remove(path)  # a planted link is replaced, not followed
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        return
    try:
        os.write(fd, validator.encode("ascii", "replace"))
        os.fsync(fd)
    except OSError:
        _remove(path)
    finally:
        os.close(fd)


def _accept_complete_part(response: requests.Response, spec: FileSpec, part: Path, offset: int) -> None:
    """A 416 to ``Range: bytes=offset-`` is fine only if the .part already is the whole file."""
    match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
    total = int(match[1]) if match else spec.expected_size
    if total == offset and spec.expected_size in (None, offset):
        return
    remove_partial(spec.dest)
    raise DownloadError(
        f"{host_of(response.url)} refused to resume at {human_size(offset)}; starting again from zero",
        retryable=True,
    )


def _status_error(response: requests.Response, host: str, options: Options) -> DownloadError:
    """An HTTP error status in words, keeping the code for whoever looks it up."""
    status = response.status_code
    if status in (401, 403):
        if options.sources.token_for(response.url):
            message = f"{host} refused the token (HTTP {status}): it is wrong or has no access to this file"
        else:
            message = f"{host} wants a login for this file (HTTP {status})"
        hint = options.sources.auth_hint(response.url)
        if hint:
            message += f"; {hint}"
    elif status in (404, 410):
        message = f"not found on {host} (HTTP {status}): {_display(response.url)}"
    elif status == 429:
        message = f"{host} is limiting how often it may be asked (HTTP 429)"
    elif status == 503:
        message = f"{host} is unavailable for now (HTTP 503)"
    elif status in (502, 504):
        message = f"{host} could not reach its own upstream (HTTP {status})"
    elif status >= 500:
        message = f"{host} had an internal error (HTTP {status})"
    else:
        message = f"{host} answered HTTP {status}" + (f" ({response.reason})" if response.reason else "")
    retryable = status in (408, 429) or status >= 500
    retry_after = _retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return DownloadError(scrub(message, options), retryable=retryable, retry_after=retry_after)


def _receive(exchange, spec, part, start, total, hasher, control, on_progress, options) -> int:
    """Stream the body into the .part (appending at `start`); return the final size."""
    position = written_back = start
    try:
        with open(part, "ab" if start else "wb") as out:
            if on_progress:
                on_progress(position, total, 1)
            while True:
                try:
                    data = exchange.get(control)
                except NETWORK_ERRORS as exc:
                    raise network_error(exc, exchange.url, options, (position, total, position > start)) from None
                if data is None:
                    break
                view = memoryview(data)
                for cut in range(0, len(view), _WRITE_SLICE):
                    piece = view[cut : cut + _WRITE_SLICE]
                    hasher.update(piece)
                    out.write(piece)
                position += len(data)
                if position - written_back >= _WRITEBACK_STEP:
                    out.flush()
                    _start_writeback(out.fileno(), written_back, position - written_back)
                    written_back = position
                if on_progress:
                    on_progress(position, total, 1)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise _write_error(exc, part, position > start) from None
    if total is not None and position < total:
        raise DownloadError(_lost(exchange.url, position, total), retryable=True, progress_made=position > start)
    return position


class RangesUnsupported(DownloadError):
    """The server stopped honouring Range, or sent the wrong range: the rest comes over one
    stream (download() retries with a single connection, the .part keeping its prefix)."""

    def __init__(self, message: str) -> None:
        super().__init__(message + "; going on over one connection", retryable=True)


class _FileChanged(DownloadError):
    def __init__(self, host: str) -> None:
        message = f"the file on {host} changed since the download began; starting again from zero"
        super().__init__(message, retryable=True)


# How often the ranges on disk are recorded next to the .part while they change.
RECORD_INTERVAL = POLL_INTERVAL


class _Ranges:
    """The rest of a file over several connections, each fetching byte ranges into the one .part
    at their offsets (`downloads.ranges.Plan` says who fetches what).

    Only the caller's thread writes, keeps the plan and runs callbacks. The exchanges' threads do
    the network I/O and share one bounded inbox, so memory stays within about chunk_size *
    (buffer_chunks + connections) whatever the file size. The ranges on disk are recorded next
    to the .part every RECORD_INTERVAL and on every stop, so a resume after a pause or a kill -9
    fetches again only what was in flight. A thread hashes the done prefix as it grows (reading
    back what was just written, from the page cache), so the sha256 is ready soon after the
    last byte. A range that fails is retried after the policy's backoff; a failure counts
    against the file's attempts only when no range made progress since the last one.
    """

    def __init__(self, spec, part, total, record, start, first, validator, hasher, session, policy, options):
        self.spec, self.part, self.session, self.policy, self.options = spec, part, session, policy, options
        self.url = first.url  # where the redirects led: every range is asked of it
        self.validator = validator
        self.host = host_of(first.url)
        self.inbox = first.inbox
        done = record.done if record else ([(0, start)] if start else [])
        self.record_exists = record is not None
        piece = Plan.piece_for(total - sum(end - begin for begin, end in done), options.connections, options.min_piece)
        self.plan = Plan(total, done, piece=piece, min_piece=options.min_piece)
        self.exchanges: dict[_Exchange, Segment] = {}
        self.asked: dict[_Exchange, str] = {}
        self.started: list[_Exchange] = []
        self.resting: list[float] = []
        self.failures = 0
        self.mark = self.plan.done_bytes
        self.saved = -1
        self.discard = False
        self.fd: int | None = None
        self.hasher = _PrefixHasher(part, hasher, 0 if record else start, self.plan)
        self.first = first
        self.written_back = 0

    def run(self, control, on_progress, on_retry) -> None:
        try:
            if not self.record_exists:
                # Recorded before the .part grows to full size: a full-size .part never lacks it.
                write_ranges(self.spec.dest, self.plan.size, self.plan.done(), durable=True)
            self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT, 0o644)
            os.ftruncate(self.fd, self.plan.size)
        except OSError as exc:
            raise _write_error(exc, self.part, False) from None
        self.hasher.start()
        self._attach(self.first, self.plan.take(end=self.first.range_end), self.spec.url)
        if self.first.range_end is None:  # asked for the rest of the file: let go, it is closed
            self.first.range_end = self.plan.size
        self._fill()
        saved_at = reported_at = 0.0
        while not self.plan.complete:
            _check_stop(control)
            try:
                exchange, item = self.inbox.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                pass
            else:
                wrote = self._handle(exchange, item, on_retry)
                # Thousands of chunks a second arrive from all the connections together.
                if wrote and on_progress and (self.plan.complete or time.monotonic() - reported_at >= 0.05):
                    on_progress(self.plan.done_bytes, self.plan.size, len(self.exchanges))
                    reported_at = time.monotonic()
            self._fill()
            if time.monotonic() - saved_at >= RECORD_INTERVAL:
                self._save()
                saved_at = time.monotonic()
        self._close_exchanges()
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise _write_error(exc, self.part, True) from None
        while not self.hasher.wait(POLL_INTERVAL):
            _check_stop(control)
        if self.hasher.error is not None:
            raise _write_error(self.hasher.error, self.part, True)

    def close(self) -> None:
        """Stop every connection and the hasher, and record what is on disk (or, for a file
        that changed on the server, delete it)."""
        self._close_exchanges()
        self.hasher.stop()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.discard:
            remove_partial(self.spec.dest)
        elif not self.plan.complete:
            with contextlib.suppress(DownloadError):  # the last record saved stands
                self._save()

    def _handle(self, exchange, item, on_retry) -> bool:
        """Act on one item from an exchange; True when bytes were written."""
        segment = self.exchanges.get(exchange)
        if segment is None:
            return False  # from an exchange already let go
        try:
            if isinstance(item, requests.Response):
                self._check(exchange, segment, item)
            elif isinstance(item, BaseException):
                if isinstance(item, DownloadError):
                    raise item
                position = (segment.pos, self.plan.size, False)
                raise network_error(item, exchange.url, self.options, position if exchange.answered else None)
            elif item is _Exchange._EOF:
                if segment.pos < exchange.range_end:
                    raise DownloadError(_lost(exchange.url, segment.pos, self.plan.size), retryable=True)
                self._let_go(exchange, segment)  # the server sent a shorter range than asked
            else:
                self._write(exchange, segment, item)
                return True
        except (RangesUnsupported, _FileChanged):
            raise
        except DownloadError as error:
            self._failed(exchange, segment, error, on_retry)
        return False

    def _check(self, exchange, segment, response) -> None:
        """A range's answer must be that range of the same version of the file."""
        status = response.status_code
        if status in (403, 410) and self.asked[exchange] != self.spec.url:
            self._resolve_again(exchange, segment)
            return
        if status == 200:
            if self.validator and not _same_version(response, self.validator):
                self.discard = True
                raise _FileChanged(self.host)
            raise RangesUnsupported(f"{self.host} sent the whole file when asked for bytes {segment.pos:,} on")
        if status != 206:
            raise _status_error(response, host_of(exchange.url), self.options)
        content_range = response.headers.get("Content-Range", "")
        match = _CONTENT_RANGE.match(content_range)
        length = _int_header(response.headers.get("Content-Length"))
        if (
            not match
            or int(match[1]) != segment.pos
            or match[3] != str(self.plan.size)
            or not int(match[1]) <= int(match[2]) < self.plan.size
            or (length is not None and length != int(match[2]) - int(match[1]) + 1)
        ):
            raise RangesUnsupported(
                f"{self.host} sent the wrong part of the file when asked for bytes {segment.pos:,} on"
                f" (Content-Range {content_range!r})"
            )
        if self.validator and not _same_version(response, self.validator):
            self.discard = True
            raise _FileChanged(self.host)
        exchange.range_end = int(match[2]) + 1
        exchange.answered = True
        if self.asked[exchange] == self.spec.url:
            self.url = exchange.url  # resolved again: the new signed URL serves the others

    def _write(self, exchange, segment, data) -> None:
        view = memoryview(data)[: segment.left]
        try:
            # One call per chunk: each call lets go of the GIL and takes it back, and behind
            # several busy connection threads taking it back is what costs (8 connections
            # over loopback ran at 0.7x one connection with 64 KiB slices).
            written = 0
            while written < len(view):  # a short write (the disk filling up) goes on, or raises
                written += os.pwrite(self.fd, view[written:], segment.pos + written)
        except OSError as exc:
            raise _write_error(exc, self.part, True) from None
        self.plan.wrote(segment, len(view))
        self.hasher.grown()
        if self.plan.done_bytes - self.written_back >= _WRITEBACK_STEP:
            _start_writeback(self.fd, 0, 0)
            self.written_back = self.plan.done_bytes
        if segment.left == 0:
            self._let_go(exchange, segment)

    def _failed(self, exchange, segment, error: DownloadError, on_retry) -> None:
        self._let_go(exchange, segment)
        if not error.retryable:
            raise error
        done = self.plan.done_bytes
        if done - self.mark >= max(1, self.policy.progress_threshold):
            self.failures = 0
        self.mark = done
        self.failures += 1
        if self.failures >= self.policy.max_attempts:
            error.retryable = False  # the attempts were spent here, range by range
            raise error
        if error.retry_after is not None:
            delay = min(error.retry_after, self.policy.retry_after_max)
        else:
            delay = min(self.policy.backoff_initial * 2 ** (self.failures - 1), self.policy.backoff_max)
        self.resting.append(time.monotonic() + delay)
        if on_retry and not self.exchanges:  # nothing is transferring: the file waits
            on_retry(self.failures + 1, self.policy.max_attempts, delay, f"{self.spec.name}: {error.message}")

    def _resolve_again(self, exchange, segment) -> None:
        """The signed URL the redirects led to expired: ask the original URL again (tokens only
        to their own hosts, as ever) and go on from the ranges done."""
        asked = self.asked[exchange]
        self._let_go(exchange, segment)
        if asked != self.url:
            return  # resolved again since this range was asked: _fill uses the new URL
        if self.spec.url not in self.asked.values():
            self._attach(None, self.plan.take(), self.spec.url)
        else:
            self.resting.append(time.monotonic() + POLL_INTERVAL)  # another range is resolving

    def _fill(self) -> None:
        """Hand work to every free connection."""
        now = time.monotonic()
        self.resting = [until for until in self.resting if until > now]
        while len(self.exchanges) + len(self.resting) < self.options.connections:
            segment = self.plan.take()
            if segment is None:
                return
            self._attach(None, segment, self.url)

    def _attach(self, exchange, segment, url) -> None:
        if segment is None:
            return
        if exchange is None:
            exchange = _Exchange(
                self.session, url, segment.pos, self.validator, self.options, end=segment.end, inbox=self.inbox
            )
        else:  # the first exchange, already answered
            exchange.answered = True
        self.exchanges[exchange] = segment
        self.asked[exchange] = url
        self.started.append(exchange)

    def _let_go(self, exchange, segment) -> None:
        """The exchange no longer fetches for the plan. One that has sent exactly its range ends
        by itself, and its connection goes back to the pool for the next range."""
        del self.exchanges[exchange]
        del self.asked[exchange]
        self.plan.release(segment)
        if exchange.range_end != segment.pos:
            exchange.close()

    def _close_exchanges(self) -> None:
        """Stop them all at once, then wait for them together: pause takes well under a second."""
        reading = [exchange for exchange in self.started if exchange.stop()]
        deadline = time.monotonic() + POLL_INTERVAL
        for exchange in reading:
            exchange.join(max(0.0, deadline - time.monotonic()))
        self.started.clear()
        self.exchanges.clear()
        self.asked.clear()

    def _save(self) -> None:
        if self.plan.done_bytes == self.saved:
            return
        try:
            write_ranges(self.spec.dest, self.plan.size, self.plan.done())
        except OSError as exc:
            raise _write_error(exc, ranges_path(self.spec.dest), True) from None
        self.saved = self.plan.done_bytes


class _PrefixHasher:
    """Feeds the sha256 with the .part from `hashed` on, as the done prefix grows, on a thread of
    its own (hashlib lets go of the GIL for large buffers)."""

    def __init__(self, part: Path, hasher, hashed: int, plan: Plan) -> None:
        self.part, self.hasher, self.hashed, self.plan = part, hasher, hashed, plan
        self.error: OSError | None = None
        self._grown = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="download-hasher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def grown(self) -> None:
        self._grown.set()

    def wait(self, timeout: float) -> bool:
        """Whether the whole file is hashed (or hashing failed) within `timeout` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        self._grown.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            fd = os.open(self.part, os.O_RDONLY)
        except OSError as exc:
            self.error = exc
            return
        try:
            while self.hashed < self.plan.size and not self._stopping.is_set():
                ready = self.plan.prefix - self.hashed
                if ready <= 0:
                    self._grown.wait(0.05)
                    self._grown.clear()
                    continue
                data = os.pread(fd, min(ready, _HASH_BLOCK), self.hashed)
                if not data:
                    raise OSError(errno.EIO, "the .part is shorter than the ranges written to it")
                self.hasher.update(data)
                self.hashed += len(data)
        except OSError as exc:
            self.error = exc
        finally:
            os.close(fd)


def _judge_unannounced_length(spec: FileSpec, size: int, start: int, host: str) -> None:
    """A body sent with no length ends when the connection closes, whether it was cut or not.

    Such a file counts only when its exact size or sha256 is known (`_finish` checks them), or
    failing those when its size is within APPROX_SIZE_TOLERANCE of the catalogue's estimate.
    Far short is taken for a cut connection (retried, resuming the .part); far over, or nothing
    to compare with, is not the file the catalogue describes.
    """
    if spec.expected_size is not None or spec.sha256:
        return
    approx = spec.approx_size
    if not approx:
        remove_partial(spec.dest)
        raise DownloadError(
            f"{host} sent {human_size(size)} without saying how long the file is, and the catalogue gives"
            " no exact size or sha256 to check it against",
            retryable=False,
        )
    if size < approx * (1 - APPROX_SIZE_TOLERANCE):
        raise DownloadError(
            f"connection to {host} ended after {human_size(size)} without saying how long the file is;"
            f" the catalogue says about {human_size(approx)}",
            retryable=True,
            progress_made=size > start,
        )
    if size > approx * (1 + APPROX_SIZE_TOLERANCE):
        remove_partial(spec.dest)
        raise DownloadError(
            f"{host} sent {human_size(size)} without saying how long the file is; the catalogue says"
            f" about {human_size(approx)}, so it is not the expected file",
            retryable=False,
        )


def _finish(spec: FileSpec, part: Path, size: int, hasher, *, resumed_from: int, sync_part: bool = False) -> Result:
    """Verify the complete .part, then rename it into place durably."""
    retry = resumed_from > 0  # see fetch(): only a resumed transfer is worth restarting
    if spec.expected_size is not None and size != spec.expected_size:
        remove_partial(spec.dest)
        expected = f"{spec.expected_size:,} bytes{_from(spec.size_from)}"
        raise DownloadError(f"size mismatch: expected {expected}, got {size:,}", retryable=retry)
    digest = hasher.hexdigest()
    if spec.sha256 and digest != spec.sha256.strip().lower():
        remove_partial(spec.dest)
        raise DownloadError(
            f"sha256 mismatch: expected {spec.sha256.strip().lower()}{_from(spec.sha256_from)}, got {digest}",
            retryable=retry,
        )
    try:
        if sync_part:
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(part, spec.dest)
        fsync_dir(spec.dest.parent)
    except OSError as exc:
        raise _write_error(exc, spec.dest, False) from None
    _remove(validator_path(spec.dest))
    _remove(ranges_path(spec.dest))
    return Result(size=size, sha256=digest, resumed_from=resumed_from)


def _from(source: str | None) -> str:
    return f" (from {source})" if source else ""


def hash_file(
    path: Path,
    *,
    control: StopSource | None = None,
    on_progress: Callable[[int], None] | None = None,
    block: int = 1 << 20,
) -> tuple[int, str]:
    """The size and sha256 of a file in place (a verify of an installed file), read as a resume
    reads its .part: interruptible by `control` (raises Stopped), on_progress(bytes read so far)."""
    size = path.stat().st_size
    hasher = hashlib.sha256()
    _hash_existing(path, size, hasher, control, block, on_progress)
    return size, hasher.hexdigest()


def _hash_existing(path: Path, size: int, hasher, control: StopSource | None, block: int, on_progress=None) -> None:
    """Feed the bytes already on disk to the hash (interruptible: a .part can be 40 GB)."""
    with open(path, "rb") as fh:
        remaining = size
        while remaining:
            _check_stop(control)
            data = fh.read(min(block, remaining))
            if not data:
                break
            hasher.update(data)
            remaining -= len(data)
            if on_progress:
                on_progress(size - remaining)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing this range to disk now rather than at the final fsync.

    Keeps that fsync short and the dirty page cache small while a 40 GB file streams in
    (a large dirty backlog stalls every writer on the machine, ComfyUI included). Linux only.
    """
    if hasattr(os, "sync_file_range"):
        os.sync_file_range(fd, offset, length, os.SYNC_FILE_RANGE_WRITE)


def _check_disk_space(spec: FileSpec, part: Path, *, needed: int | None, reclaimed: int, options: Options) -> None:
    if needed is None:
        return
    free = free_space(part.parent, options.disk_reserve) + reclaimed
    if needed > free:
        raise DownloadError(
            f"not enough disk space: need {human_size(needed)}, {human_size(max(free, 0))} free",
            retryable=False,
        )


def _wait(delay: float, control: StopSource | None, sleep: Callable[[float], None]) -> None:
    """Sleep `delay` seconds in short slices, raising Stopped as soon as control asks."""
    remaining = delay
    while True:
        _check_stop(control)
        if remaining <= 0:
            return
        step = min(POLL_INTERVAL, remaining)
        sleep(step)
        remaining -= step


def _check_stop(control: StopSource | None) -> None:
    reason = control.stop_requested() if control is not None else None
    if reason:
        raise Stopped(reason)


def network_error(exc, url, options, streaming=None) -> DownloadError:
    """A failure of the connection itself, before the headers or (streaming given) in the body,
    in a sentence: requests and urllib3 wrap the cause in layers of reprs nobody should read.

    streaming: (position, total, progress_made) at the time of the failure.
    """
    host = _shown_host(url)
    causes = _causes(exc)

    def found(*types):
        return next((cause for cause in causes if isinstance(cause, types)), None)

    connect_timeout, read_timeout = options.timeout
    timed_out = found(requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)
    progress_made = False
    if streaming is not None:
        position, total, progress_made = streaming
        if timed_out:
            message = f"{host} sent nothing for {read_timeout:g} s, after {_so_far(position, total)}"
        else:
            message = _lost(url, position, total)
    elif certificate := found(ssl.SSLCertVerificationError):
        message = f"secure connection to {host} refused: its certificate is not trusted ({certificate.verify_message})"
    elif found(ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError):
        message = f"could not open a secure connection to {host} (TLS handshake failed)"
    elif found(socket.gaierror, urllib3.exceptions.NameResolutionError):
        message = f"cannot find {host}: the name does not resolve"
    elif found(ConnectionRefusedError):
        message = f"{host} refused the connection: nothing is listening on that port"
    elif (unreachable := found(OSError)) and unreachable.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        message = f"{host} cannot be reached from this server"
    elif found(requests.exceptions.ConnectTimeout):  # urllib3's NewConnectionError is not one
        message = f"could not connect to {host} within {connect_timeout:g} s"
    elif timed_out:
        message = f"{host} did not answer within {read_timeout:g} s"
    elif found(ConnectionError, urllib3.exceptions.ProtocolError):
        message = f"{host} closed the connection without answering"
    else:
        message = f"request to {host} failed: {_reason(exc)}"
    return DownloadError(
        scrub(message, options),
        retryable=not isinstance(exc, _PERMANENT_REQUEST_ERRORS),
        progress_made=progress_made,
    )


def _lost(url: str, position: int, total: int | None) -> str:
    return f"connection to {_shown_host(url)} lost after {_so_far(position, total)}"


def _so_far(position: int, total: int | None) -> str:
    return human_size(position) + (f" of {human_size(total)}" if total else "")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and those it wraps, outermost first (requests and urllib3 nest one or two
    layers, in args, `reason` or the exception chain)."""
    chain = []
    while exc is not None and exc not in chain and len(chain) < 10:
        chain.append(exc)
        exc = _wrapped(exc) or exc.__cause__ or exc.__context__
    return chain


def _wrapped(exc: BaseException) -> BaseException | None:
    """The exception that requests or urllib3 wrapped in `exc` (in args or `reason`), if any."""
    args = exc.args
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return exc.reason
    if isinstance(exc, requests.RequestException) and args and isinstance(args[0], BaseException):
        return args[0]
    if isinstance(exc, urllib3.exceptions.ProtocolError) and len(args) > 1 and isinstance(args[1], BaseException):
        return args[1]
    return None


def _write_error(exc: OSError, path: Path, progress_made: bool) -> DownloadError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"disk full while writing {path}"
    else:
        message = f"cannot write {path}: {exc.strerror or exc}"
    return DownloadError(message, retryable=False, progress_made=progress_made)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _check_url(url: str, options: Options, came_from: str | None = None) -> None:
    """Refuse a URL the catalogue would refuse (not plain http(s), credentials in it), or whose
    host is not allowed; came_from: the URL that redirected to it."""
    problem = unsafe_url_reason(url)
    if problem:
        raise DownloadError(f"unsupported URL {_display(url)}: it {problem}", retryable=False)
    if not options.sources.allows(url):
        if came_from is None:
            message = f"{_shown_host(url)} is not in DOWNLOAD_ALLOWED_HOSTS"
        else:
            message = (
                f"{_shown_host(came_from)} redirected to {_display(url)},"
                f" and {_shown_host(url)} is not in DOWNLOAD_ALLOWED_HOSTS"
            )
        raise DownloadError(message, retryable=False)


def _shown_host(url: str) -> str:
    """The host as people write it: an IPv6 address in brackets."""
    host = host_of(url)
    return f"[{host}]" if ":" in host else host


def _display(url: str) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number, an unclosed [
        return "(invalid URL)"
    if not parts.hostname:
        return f"{parts.scheme}:" if parts.scheme else "(invalid URL)"
    return f"{parts.scheme}://{_shown_host(url)}{port}{parts.path}"


def _reason(exc: BaseException) -> str:
    """The root cause of a network error in a few words, without query strings (signed URLs)."""
    while _wrapped(exc) is not None:  # requests and urllib3 wrap the cause in one or two layers
        exc = _wrapped(exc)
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return _QUERY.sub("?...", text or type(exc).__name__)


def scrub(text: str, options: Options) -> str:
    """Blank out any configured token, in case an error message quotes one."""
    for secret in options.sources.secrets():
        text = text.replace(secret, "***")
    return text


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
