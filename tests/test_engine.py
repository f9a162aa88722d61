"""Download engine against a real local HTTP server that misbehaves on demand (no network mocks).

Runs without Django: `pytest tests/test_engine.py -p no:django`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import namedtuple
from email.utils import formatdate

import pytest

from downloads import engine
from downloads.engine import Control, DownloadError, FileSpec, Options, RetryPolicy, Stopped, download
from downloads.sources import Source, Sources
from storage import part_path, remove_partial, validator_path
from tests.faultserver import Fault, file_sha256

pytestmark = pytest.mark.timeout(30)

SIZE = 300_000
FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.05, progress_threshold=1)
SMALL = Options(chunk_size=16 * 1024, buffer_chunks=4, timeout=(5, 5))
TOKEN = "hf_s3cr3t_t0k3n"
# The fault server as a source with a token, as Hugging Face is one in production.
LOCAL_TOKEN = Sources((Source("local", ("127.0.0.1",), "HF_TOKEN", TOKEN),))


@pytest.fixture
def served(server):
    return server.add_file("/model.bin", SIZE)


@pytest.fixture
def spec(server, served, tmp_path):
    return FileSpec(
        url=server.url("/model.bin"),
        dest=tmp_path / "comfy" / "checkpoints" / "model.bin",
        expected_size=served.size,
        sha256=served.sha256,
        label="checkpoints/model.bin",
    )


class Retries:
    """on_retry recorder."""

    def __init__(self):
        self.calls = []

    def __call__(self, attempt, max_attempts, delay, message):
        self.calls.append((attempt, max_attempts, delay, message))

    @property
    def delays(self):
        return [call[2] for call in self.calls]

    @property
    def messages(self):
        return [call[3] for call in self.calls]


def assert_complete(result, spec, served):
    assert result.size == served.size
    assert result.sha256 == served.sha256
    assert file_sha256(spec.dest) == served.sha256
    assert not part_path(spec.dest).exists()


def closed_port():
    """A port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pause_later(control, seconds, action="pause"):
    """Ask control to stop after `seconds`; returns a dict that gets the monotonic time of the ask."""
    asked = {}

    def fire():
        asked["at"] = time.monotonic()
        getattr(control, action)()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return asked


# --- the happy path ---------------------------------------------------------------------------


def test_download_verifies_and_renames_into_place(server, served, spec):
    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert result.resumed_from == 0
    [request] = server.requests
    assert request.headers["user-agent"].startswith("presetsite/")
    assert request.headers["accept-encoding"] == "identity"
    assert request.range is None
    assert request.authorization is None


def test_dest_only_appears_once_complete(served, spec):
    seen = []

    def on_progress(done, total, connections):
        seen.append((done, total, spec.dest.exists(), part_path(spec.dest).exists()))

    download(spec, on_progress=on_progress, policy=FAST, options=SMALL)

    assert len(seen) > 5
    assert all(not dest_exists and part_exists for _, _, dest_exists, part_exists in seen)
    assert all(total == served.size for _, total, _, _ in seen)
    assert seen[-1][0] == served.size
    assert spec.dest.exists()


def test_sha256_is_returned_even_when_not_expected(served, spec):
    result = download(FileSpec(spec.url, spec.dest), policy=FAST, options=SMALL)
    assert result.sha256 == served.sha256


# --- faults that are retried ------------------------------------------------------------------


def test_http_500_once_is_retried(server, served, spec):
    server.script("/model.bin", Fault(status=500))
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert len(retries.calls) == 1
    attempt, max_attempts, delay, message = retries.calls[0]
    assert (attempt, max_attempts, delay) == (2, 3, FAST.backoff_initial)
    assert message == "checkpoints/model.bin: 127.0.0.1 had an internal error (HTTP 500)"


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(server, served, spec, form):
    value = "7" if form == "seconds" else formatdate(time.time() + 7, usegmt=True)
    server.script("/model.bin", Fault(status=429, headers={"Retry-After": value}))
    retries, slept = Retries(), []

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL, sleep=slept.append)

    assert_complete(result, spec, served)
    [delay] = retries.delays
    assert 5.5 <= delay <= 7
    assert sum(slept) == pytest.approx(delay)
    assert max(slept) <= engine.POLL_INTERVAL  # sliced, so pause/cancel can cut in


def test_retry_after_is_capped(server, served, spec):
    server.script("/model.bin", Fault(status=503, headers={"Retry-After": "86400"}))
    retries = Retries()
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.01, retry_after_max=0.05)

    download(spec, on_retry=retries, policy=policy, options=SMALL)

    assert retries.delays == [0.05]


def test_connection_reset_mid_body_resumes_with_range(server, served, spec):
    server.script("/model.bin", Fault(reset_after=100_000))
    part_sizes = []

    def on_retry(*args):
        part_sizes.append(part_path(spec.dest).stat().st_size)

    result = download(spec, on_retry=on_retry, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    [kept] = part_sizes
    assert 0 < kept <= 100_000
    first, second = server.requests
    assert first.range is None
    assert second.range == f"bytes={kept}-"
    assert result.resumed_from == kept


def test_truncated_body_resumes(server, served, spec):
    server.script("/model.bin", Fault(truncate_after=120_000))
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[1].range == "bytes=120000-"
    assert retries.messages == ["checkpoints/model.bin: connection to 127.0.0.1 lost after 117.2 KB of 293.0 KB"]


def test_server_ignoring_range_restarts_from_zero(server, served, spec):
    server.script("/model.bin", Fault(reset_after=100_000), Fault(ignore_range=True))

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[1].range is not None  # asked to resume, got the whole file
    assert result.resumed_from == 0


def test_wrong_content_range_is_rejected(server, served, spec):
    server.script("/model.bin", Fault(reset_after=100_000), Fault(content_range_shift=1))
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert "Content-Range" in retries.messages[1]
    assert len(server.requests) == 3
    assert server.requests[2].range == server.requests[1].range  # the .part was kept


def test_existing_part_is_resumed(server, served, spec):
    part = part_path(spec.dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(served.read(0, 123_456))

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert result.resumed_from == 123_456
    assert server.requests[0].range == "bytes=123456-"


def test_complete_part_answered_416_is_finished(server, served, spec):
    part = part_path(spec.dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(served.bytes())

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[0].range == f"bytes={served.size}-"


def test_a_file_already_in_place_is_verified_instead_of_downloaded(server, served, spec):
    spec.dest.parent.mkdir(parents=True)
    spec.dest.write_bytes(served.bytes())

    result = engine.already_in_place(spec)

    assert result == engine.Result(size=served.size, sha256=served.sha256, resumed_from=served.size)
    assert server.requests == []


@pytest.mark.parametrize(
    ("content", "changes"),
    [
        pytest.param(b"\0" * SIZE, {}, id="same size, wrong sha256"),
        pytest.param(b"\0" * 10, {"sha256": None}, id="no sha256, wrong size"),
        pytest.param(b"\0" * SIZE, {"sha256": None, "expected_size": None}, id="nothing to check against"),
    ],
)
def test_a_file_in_place_that_cannot_be_verified_is_downloaded_again(spec, content, changes):
    spec = dataclasses.replace(spec, **changes)
    spec.dest.parent.mkdir(parents=True)
    spec.dest.write_bytes(content)

    assert engine.already_in_place(spec) is None


def test_a_file_in_place_next_to_a_part_is_downloaded_again(served, spec):
    spec.dest.parent.mkdir(parents=True)
    spec.dest.write_bytes(served.bytes())
    part_path(spec.dest).write_bytes(b"")

    assert engine.already_in_place(spec) is None


def test_a_file_in_place_with_the_exact_size_is_trusted_without_sha256(served, spec):
    spec = dataclasses.replace(spec, sha256=None)
    spec.dest.parent.mkdir(parents=True)
    spec.dest.write_bytes(served.bytes())

    assert engine.already_in_place(spec).sha256 == served.sha256


def test_corrupt_part_is_discarded_and_downloaded_again(server, served, spec):
    part = part_path(spec.dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 100_000)
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert retries.messages[0].startswith("checkpoints/model.bin: sha256 mismatch: expected")
    assert [r.range for r in server.requests] == ["bytes=100000-", None]


def test_progress_resets_the_attempt_count(server, served, spec):
    server.always("/model.bin", Fault(reset_after=40_000))  # every response dies after 40 kB
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert len(server.requests) > FAST.max_attempts
    assert {attempt for attempt, *_ in retries.calls} == {2}


# --- failures ---------------------------------------------------------------------------------


def test_gives_up_after_max_attempts_with_the_last_message(server, served, spec):
    server.always("/model.bin", Fault(status=503))
    retries = Retries()
    policy = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.03)

    with pytest.raises(DownloadError) as caught:
        download(spec, on_retry=retries, policy=policy, options=SMALL)

    assert caught.value.message == "checkpoints/model.bin: 127.0.0.1 is unavailable for now (HTTP 503)"
    assert caught.value.retryable
    assert len(server.requests) == 4
    assert [call[0] for call in retries.calls] == [2, 3, 4]
    assert retries.delays == [0.01, 0.02, 0.03]
    assert not spec.dest.exists()


def test_404_is_not_retried(server, spec, tmp_path):
    missing = FileSpec(server.url("/nope.bin"), tmp_path / "nope.bin")

    with pytest.raises(DownloadError) as caught:
        download(missing, policy=FAST, options=SMALL)

    assert not caught.value.retryable
    assert caught.value.message == f"nope.bin: not found on 127.0.0.1 (HTTP 404): {missing.url}"
    assert len(server.requests) == 1
    assert not part_path(missing.dest).exists()


def test_sha256_mismatch_leaves_nothing_behind(server, spec):
    wrong = FileSpec(spec.url, spec.dest, spec.expected_size, "ab" * 32, spec.label)

    with pytest.raises(DownloadError) as caught:
        download(wrong, policy=FAST, options=SMALL)

    assert caught.value.message.startswith(f"checkpoints/model.bin: sha256 mismatch: expected {'ab' * 32}, got ")
    assert not caught.value.retryable  # downloaded in one go: the server's file is not the expected one
    assert not spec.dest.exists()
    assert not part_path(spec.dest).exists()
    assert len(server.requests) == 1


def test_expected_size_mismatch(server, served, spec):
    wrong = FileSpec(spec.url, spec.dest, served.size + 1, None, spec.label)

    with pytest.raises(DownloadError) as caught:
        download(wrong, policy=FAST, options=SMALL)

    assert caught.value.message == "checkpoints/model.bin: size mismatch: expected 300,001 bytes, 127.0.0.1 has 300,000"
    assert not caught.value.retryable
    assert not spec.dest.exists()
    assert not part_path(spec.dest).exists()


def test_not_enough_disk_space_fails_before_writing(server, spec, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=SMALL)

    assert caught.value.message == "checkpoints/model.bin: not enough disk space: need 293.0 KB, 1000 B free"
    assert not caught.value.retryable
    assert not part_path(spec.dest).exists()
    assert len(server.requests) == 1


def test_disk_reserve_counts_against_free_space(spec):
    huge = Options(chunk_size=SMALL.chunk_size, disk_reserve=1 << 62)

    with pytest.raises(DownloadError, match="not enough disk space"):
        download(spec, policy=FAST, options=huge)


def test_disk_full_while_writing_keeps_the_part(server, spec, monkeypatch):
    real_open = open

    class FullDisk:
        """A .part file that runs out of room after 50 kB."""

        def __init__(self, fh):
            self._fh, self._written = fh, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self._fh.close()

        def write(self, data):
            if self._written + len(data) > 50_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._written += len(data)
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return FullDisk(fh) if str(path).endswith(".part") and mode in ("ab", "wb") else fh

    monkeypatch.setattr(engine, "open", fake_open, raising=False)

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=SMALL)

    assert caught.value.message.startswith("checkpoints/model.bin: disk full while writing")
    assert not caught.value.retryable
    assert caught.value.progress_made
    assert 0 < part_path(spec.dest).stat().st_size <= 50_000
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/m.bin", "unsupported URL ftp://127.0.0.1/m.bin: it must be an http:// or https:// URL"),
        ("file:///etc/passwd", "unsupported URL file:: it must be an http:// or https:// URL"),
        ("hf://org/repo/m.bin", "unsupported URL hf://org/repo/m.bin: it must be an http:// or https:// URL"),
        ("http:///x", "unsupported URL http:: it has no host"),
        ("https://user:pw@127.0.0.1/m.bin", "unsupported URL https://127.0.0.1/m.bin: it must not carry credentials"),
        ("https://127.0.0.1:port/m.bin", "unsupported URL (invalid URL): it is not a valid URL"),
        ("https://[::1/m.bin", "unsupported URL (invalid URL): it is not a valid URL"),
    ],
)
def test_urls_the_catalogue_would_refuse_are_refused(url, reason, tmp_path):
    """The same rule as the catalogue's (presets.catalogue.unsafe_url_reason), not a second one."""
    with pytest.raises(DownloadError) as caught:
        download(FileSpec(url, tmp_path / "comfy" / "x.bin"), policy=FAST, options=SMALL)

    assert not caught.value.retryable
    assert caught.value.message.startswith(f"x.bin: {reason}")
    assert not (tmp_path / "comfy").exists()


def test_redirect_to_non_http_is_rejected(server, spec):
    server.always("/model.bin", Fault(redirect="file:///etc/passwd"))

    with pytest.raises(DownloadError, match="it must be an http:// or https:// URL") as caught:
        download(spec, policy=FAST, options=SMALL)

    assert not caught.value.retryable


# --- tokens -----------------------------------------------------------------------------------


def test_token_goes_to_its_host_only_even_across_redirects(server, served, spec):
    server.always("/redirect", Fault(redirect=server.url("/model.bin", host="localhost")))
    redirected = FileSpec(server.url("/redirect"), spec.dest, spec.expected_size, spec.sha256)

    options = Options(chunk_size=SMALL.chunk_size, sources=LOCAL_TOKEN)

    result = download(redirected, policy=FAST, options=options)

    assert_complete(result, spec, served)
    first, second = server.requests
    assert (first.path, first.authorization) == ("/redirect", f"Bearer {TOKEN}")
    assert second.path == "/model.bin"
    assert second.host.startswith("localhost:")
    assert second.authorization is None


def test_token_is_resent_after_a_redirect_to_the_same_host(server, served, spec):
    server.always("/redirect", Fault(redirect="/model.bin"))
    redirected = FileSpec(server.url("/redirect"), spec.dest, spec.expected_size, spec.sha256)

    download(redirected, policy=FAST, options=Options(chunk_size=SMALL.chunk_size, sources=LOCAL_TOKEN))

    assert [r.authorization for r in server.requests] == [f"Bearer {TOKEN}"] * 2


def test_auth_failure_hints_and_never_shows_the_token(server, spec):
    server.always("/model.bin", Fault(status=401))
    options = Options(sources=LOCAL_TOKEN)

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=options)

    message = caught.value.message
    assert message == (
        "checkpoints/model.bin: 127.0.0.1 refused the token (HTTP 401): it is wrong or has no access"
        " to this file; set HF_TOKEN"
    )
    assert not caught.value.retryable
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


def test_network_errors_never_show_the_token(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/model.bin?token={TOKEN}"
    retries = Retries()
    options = Options(sources=LOCAL_TOKEN)

    with pytest.raises(DownloadError) as caught:
        download(FileSpec(url, tmp_path / "m.bin"), on_retry=retries, policy=FAST, options=options)

    assert caught.value.retryable
    assert "refused" in caught.value.message
    for text in [str(caught.value), repr(caught.value), *retries.messages]:
        assert TOKEN not in text


# --- pause and cancel -------------------------------------------------------------------------


def test_pause_on_a_trickling_server_is_quick_and_resume_continues(server, served, spec):
    server.script("/model.bin", Fault(trickle=(1024, 0.05)))  # ~20 kB/s
    control = Control()
    asked = {}

    def on_progress(done, total, connections):
        if done >= 16 * 1024 and "when" not in asked:
            asked["when"] = pause_later(control, 0.3)

    with pytest.raises(Stopped) as caught:
        download(spec, control=control, on_progress=on_progress, policy=FAST, options=SMALL)
    stopped_after = time.monotonic() - asked["when"]["at"]

    assert caught.value.reason == "pause"
    assert stopped_after < 1.0
    part = part_path(spec.dest)
    kept = part.stat().st_size
    assert kept >= 16 * 1024
    assert not spec.dest.exists()

    result = download(spec, control=Control(), policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[-1].range == f"bytes={kept}-"
    assert result.resumed_from == kept


def test_cancel_stops_and_leaves_the_part_to_the_caller(server, spec):
    server.script("/model.bin", Fault(trickle=(1024, 0.05)))
    control = Control()
    asked = {}

    def on_progress(done, total, connections):
        if done >= 16 * 1024 and "when" not in asked:
            asked["when"] = pause_later(control, 0.2, "cancel")

    with pytest.raises(Stopped) as caught:
        download(spec, control=control, on_progress=on_progress, policy=FAST, options=SMALL)

    assert caught.value.reason == "cancel"
    assert time.monotonic() - asked["when"]["at"] < 1.0
    assert part_path(spec.dest).exists()
    assert not spec.dest.exists()


def test_pause_while_the_server_has_not_answered_yet(server, spec):
    server.script("/model.bin", Fault(delay=10))
    control = Control()
    asked = pause_later(control, 0.3)

    with pytest.raises(Stopped):
        download(spec, control=control, policy=FAST, options=Options(timeout=(5, 30)))

    assert time.monotonic() - asked["at"] < 1.0


def test_pause_during_the_wait_between_attempts(server, spec):
    server.always("/model.bin", Fault(status=503))
    control = Control()
    asked = pause_later(control, 0.3)

    with pytest.raises(Stopped):
        download(spec, control=control, policy=RetryPolicy(backoff_initial=30), options=SMALL)

    assert time.monotonic() - asked["at"] < 1.0
    assert len(server.requests) == 1


def test_already_paused_control_stops_before_any_request(server, spec):
    control = Control()
    control.pause()

    with pytest.raises(Stopped):
        download(spec, control=control, policy=FAST, options=SMALL)

    assert server.requests == []


def test_a_netrc_login_is_never_sent(server, served, spec, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    download(spec, policy=FAST, options=SMALL)

    assert server.requests[0].authorization is None


# --- resuming only the same version of the file -----------------------------------------------

MB = 1 << 20


def pause_at(control, at_least):
    """on_progress that pauses once the .part holds `at_least` bytes."""

    def on_progress(done, total, connections):
        if done >= at_least:
            control.pause()

    return on_progress


def test_a_file_changed_on_the_server_during_a_pause_is_downloaded_anew_not_spliced(server, tmp_path):
    old = server.add_file("/big.bin", 20 * MB, seed=1)
    spec = FileSpec(server.url("/big.bin"), tmp_path / "big.bin", expected_size=20 * MB)  # no sha256, as upstream
    control = Control()
    with pytest.raises(Stopped):
        download(spec, control=control, on_progress=pause_at(control, 8 * MB), policy=FAST)
    kept = part_path(spec.dest).stat().st_size
    assert 8 * MB <= kept < 20 * MB

    new = server.add_file("/big.bin", 20 * MB, seed=2)  # a new upload, same size
    result = download(spec, policy=FAST)

    assert file_sha256(spec.dest) == result.sha256 == new.sha256 != old.sha256
    resumed = server.requests[-1]
    assert (resumed.range, resumed.if_range) == (f"bytes={kept}-", old.etag)
    assert result.resumed_from == 0
    assert not validator_path(spec.dest).exists()


def test_a_server_that_ignores_if_range_is_caught_by_its_etag(server, tmp_path):
    server.add_file("/big.bin", 2 * MB, seed=1)
    spec = FileSpec(server.url("/big.bin"), tmp_path / "big.bin", expected_size=2 * MB)
    server.script("/big.bin", Fault(reset_after=MB))
    control = Control()
    with pytest.raises(DownloadError):
        download(spec, control=control, policy=RetryPolicy(max_attempts=1))
    new = server.add_file("/big.bin", 2 * MB, seed=2)
    server.script("/big.bin", Fault(ignore_if_range=True))  # 206 with the rest of the new file
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST)

    assert result.sha256 == file_sha256(spec.dest) == new.sha256
    assert retries.messages == [
        "big.bin: the file on 127.0.0.1 changed since the download began; starting again from zero"
    ]
    assert [r.range is None for r in server.requests] == [True, False, True]


def test_last_modified_stands_in_for_a_missing_etag(server, tmp_path):
    monday, tuesday = "Mon, 02 Nov 2026 10:00:00 GMT", "Tue, 03 Nov 2026 10:00:00 GMT"
    server.add_file("/m.bin", SIZE, seed=1, etag=None, last_modified=monday)
    spec = FileSpec(server.url("/m.bin"), tmp_path / "m.bin", expected_size=SIZE)
    server.script("/m.bin", Fault(reset_after=100_000))
    with pytest.raises(DownloadError):
        download(spec, policy=RetryPolicy(max_attempts=1), options=SMALL)
    new = server.add_file("/m.bin", SIZE, seed=2, etag=None, last_modified=tuesday)

    result = download(spec, policy=FAST, options=SMALL)

    assert result.sha256 == new.sha256
    assert server.requests[-1].if_range == monday
    assert result.resumed_from == 0


@pytest.mark.parametrize(
    ("last_modified", "if_range"),
    [(None, None), ("Mon, 02 Nov 2026 10:00:00 GMT", "Mon, 02 Nov 2026 10:00:00 GMT")],
    ids=["alone", "with Last-Modified"],
)
def test_a_weak_etag_is_never_sent_as_if_range(server, tmp_path, last_modified, if_range):
    served = server.add_file("/m.bin", SIZE, seed=1, etag='W/"v1"', last_modified=last_modified)
    spec = FileSpec(server.url("/m.bin"), tmp_path / "m.bin", expected_size=SIZE)
    server.script("/m.bin", Fault(reset_after=100_000))

    result = download(spec, policy=FAST, options=SMALL)

    assert result.sha256 == served.sha256
    first, resumed = server.requests
    assert resumed.range is not None
    assert resumed.if_range == if_range
    assert result.resumed_from > 0  # nothing says the file changed: the .part is resumed


def test_an_unchanged_file_resumes_with_its_etag(server, served, spec):
    server.script("/model.bin", Fault(reset_after=100_000))

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[1].if_range == served.etag
    assert result.resumed_from > 0


def test_a_part_of_unknown_version_without_sha256_starts_again(server, served, spec):
    """A .part left by an older presetsite, or whose version could not be recorded."""
    spec = dataclasses.replace(spec, sha256=None)
    part = part_path(spec.dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 100_000)  # whatever version this was

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert [r.range for r in server.requests] == [None]


def test_a_planted_validator_link_is_neither_read_nor_written(server, served, spec, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    part = part_path(spec.dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(served.read(0, 100_000))
    validator_path(spec.dest).symlink_to(victim)

    result = download(spec, policy=FAST, options=SMALL)

    assert_complete(result, spec, served)
    assert server.requests[0].range == "bytes=100000-"  # resumed on the strength of the sha256
    assert server.requests[0].if_range is None
    assert victim.read_text() == "precious"


def test_remove_partial_deletes_the_part_and_its_version(server, spec):
    server.script("/model.bin", Fault(reset_after=100_000))
    with pytest.raises(DownloadError):
        download(spec, policy=RetryPolicy(max_attempts=1), options=SMALL)
    assert part_path(spec.dest).exists() and validator_path(spec.dest).exists()

    remove_partial(spec.dest)

    assert not [p for p in spec.dest.parent.iterdir() if p.is_file()]  # no .part, no version record


# --- DOWNLOAD_ALLOWED_HOSTS on every hop ------------------------------------------------------


def test_a_redirect_off_the_allow_list_is_refused_naming_the_host(server, served, spec):
    server.always("/redirect", Fault(redirect=server.url("/model.bin")))
    redirected = dataclasses.replace(spec, url=server.url("/redirect", host="localhost"))

    with pytest.raises(DownloadError) as caught:
        download(redirected, policy=FAST, options=Options(sources=Sources(allowed_hosts=("localhost",))))

    assert caught.value.message == (
        f"checkpoints/model.bin: localhost redirected to {server.url('/model.bin')},"
        " and 127.0.0.1 is not in DOWNLOAD_ALLOWED_HOSTS"
    )
    assert not caught.value.retryable
    assert [r.path for r in server.requests] == ["/redirect"]
    assert not spec.dest.parent.exists() or list(spec.dest.parent.iterdir()) == []


def test_a_redirect_to_ipv6_loopback_never_reaches_that_port(server, spec):
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with listener:
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        server.always("/redirect", Fault(redirect=f"http://[::1]:{port}/"))
        redirected = dataclasses.replace(spec, url=server.url("/redirect", host="localhost"))

        with pytest.raises(DownloadError, match=r"redirected to http://\[::1\]:\d+/, and \[::1\] is not in"):
            download(
                redirected, policy=FAST, options=Options(sources=Sources(allowed_hosts=("localhost",)), timeout=(2, 2))
            )

        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected


def test_the_first_url_is_checked_before_anything_is_sent(server, spec):
    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=Options(sources=Sources(allowed_hosts=("huggingface.co",))))

    assert caught.value.message == "checkpoints/model.bin: 127.0.0.1 is not in DOWNLOAD_ALLOWED_HOSTS"
    assert server.requests == []


def test_redirects_within_the_allow_list_work_and_still_drop_the_token(server, served, spec):
    server.always("/redirect", Fault(redirect=server.url("/model.bin", host="localhost")))
    redirected = dataclasses.replace(spec, url=server.url("/redirect"))
    options = Options(sources=dataclasses.replace(LOCAL_TOKEN, allowed_hosts=("127.0.0.1", "LOCALHOST")))

    result = download(redirected, policy=FAST, options=options)

    assert_complete(result, spec, served)
    assert [(r.path, r.authorization) for r in server.requests] == [
        ("/redirect", f"Bearer {TOKEN}"),
        ("/model.bin", None),
    ]


# --- a body with no length ----------------------------------------------------------------------

HUNDRED_KB = 100 * 1024  # upstream's "100KB"


@pytest.fixture
def unmeasured(server, tmp_path):
    """A 100KB file whose catalogue entry has only upstream's approximate size."""
    served = server.add_file("/m.bin", HUNDRED_KB)
    return served, FileSpec(server.url("/m.bin"), tmp_path / "m.bin", approx_size=HUNDRED_KB)


def test_a_body_with_no_length_cut_short_is_not_taken_for_the_file(server, unmeasured):
    served, spec = unmeasured
    server.always("/m.bin", Fault(no_length=True, truncate_after=40_000, ignore_range=True))
    retries = Retries()

    with pytest.raises(DownloadError) as caught:
        download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert caught.value.message == (
        "m.bin: connection to 127.0.0.1 ended after 39.1 KB without saying how long the file is;"
        " the catalogue says about 100.0 KB"
    )
    assert caught.value.retryable
    assert len(retries.calls) == FAST.max_attempts - 1
    assert not spec.dest.exists()


def test_a_body_with_no_length_cut_short_resumes_and_completes(server, unmeasured):
    served, spec = unmeasured
    server.script("/m.bin", Fault(no_length=True, truncate_after=40_000))

    result = download(spec, policy=FAST, options=SMALL)

    assert result.sha256 == file_sha256(spec.dest) == served.sha256
    assert server.requests[1].range == "bytes=40000-"


def test_a_chunked_body_cut_short_is_a_lost_connection(server, unmeasured):
    served, spec = unmeasured
    server.script("/m.bin", Fault(chunked=True, truncate_after=40_000), Fault(chunked=True))
    retries = Retries()

    result = download(spec, on_retry=retries, policy=FAST, options=SMALL)

    assert result.sha256 == served.sha256
    assert retries.messages == ["m.bin: connection to 127.0.0.1 lost after 39.1 KB"]


@pytest.mark.parametrize("approx", [HUNDRED_KB, 95_000, 115_000], ids=["exact", "a bit over", "a bit under"])
def test_a_whole_body_with_no_length_near_the_catalogue_size_counts(server, unmeasured, approx):
    served, spec = unmeasured
    server.always("/m.bin", Fault(no_length=True))

    result = download(dataclasses.replace(spec, approx_size=approx), policy=FAST, options=SMALL)

    assert result.sha256 == served.sha256


def test_a_body_with_no_length_far_over_the_catalogue_size_is_refused(server, unmeasured):
    served, spec = unmeasured
    server.always("/m.bin", Fault(no_length=True))

    with pytest.raises(DownloadError) as caught:
        download(dataclasses.replace(spec, approx_size=50 * 1024), policy=FAST, options=SMALL)

    assert caught.value.message == (
        "m.bin: 127.0.0.1 sent 100.0 KB without saying how long the file is; the catalogue says about"
        " 50.0 KB, so it is not the expected file"
    )
    assert not caught.value.retryable
    assert not [p for p in spec.dest.parent.iterdir() if p.is_file()]  # no .part, no version record


def test_a_body_with_no_length_and_nothing_to_check_it_against_is_refused(server, unmeasured):
    served, spec = unmeasured
    server.always("/m.bin", Fault(no_length=True))

    with pytest.raises(DownloadError) as caught:
        download(dataclasses.replace(spec, approx_size=None), policy=FAST, options=SMALL)

    assert caught.value.message == (
        "m.bin: 127.0.0.1 sent 100.0 KB without saying how long the file is, and the catalogue gives no"
        " exact size or sha256 to check it against"
    )
    assert not [p for p in spec.dest.parent.iterdir() if p.is_file()]  # no .part, no version record


@pytest.mark.parametrize("check", [{"expected_size": HUNDRED_KB}, {"sha256": "set below"}], ids=["size", "sha256"])
def test_a_body_with_no_length_counts_when_its_exact_size_or_sha256_match(server, unmeasured, check):
    served, spec = unmeasured
    server.always("/m.bin", Fault(no_length=True))
    check = {k: served.sha256 if v == "set below" else v for k, v in check.items()}

    result = download(dataclasses.replace(spec, approx_size=None, **check), policy=FAST, options=SMALL)

    assert result.sha256 == served.sha256


# --- errors in words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "url", "timeout", "expected"),
    [
        pytest.param(
            Fault(truncate_after=256 * 1024),
            None,
            (5, 5),
            "connection to 127.0.0.1 lost after 256.0 KB of 20.0 MB",
            id="cut",
        ),
        pytest.param(
            Fault(reset_after=256 * 1024),
            None,
            (5, 5),
            "connection to 127.0.0.1 lost after <n> KB of 20.0 MB",
            id="reset",
        ),
        pytest.param(
            Fault(trickle=(1024, 2)),
            None,
            (5, 0.3),
            "127.0.0.1 sent nothing for 0.3 s, after 1.0 KB of 20.0 MB",
            id="stalled body",
        ),
        pytest.param(Fault(delay=2), None, (5, 0.3), "127.0.0.1 did not answer within 0.3 s", id="no answer"),
        pytest.param(
            None,
            "http://127.0.0.1:{closed}/big.bin",
            (5, 5),
            "127.0.0.1 refused the connection: nothing is listening on that port",
            id="refused",
        ),
        pytest.param(
            None,
            "http://nonexistent.invalid/big.bin",
            (5, 5),
            "cannot find nonexistent.invalid: the name does not resolve",
            id="no such host",
        ),
        pytest.param(
            None,
            "https://127.0.0.1:{port}/big.bin",
            (5, 5),
            "could not open a secure connection to 127.0.0.1 (TLS handshake failed)",
            id="not TLS",
        ),
        pytest.param(
            Fault(status=429), None, (5, 5), "127.0.0.1 is limiting how often it may be asked (HTTP 429)", id="429"
        ),
        pytest.param(
            Fault(status=502), None, (5, 5), "127.0.0.1 could not reach its own upstream (HTTP 502)", id="502"
        ),
        pytest.param(Fault(status=403), None, (5, 5), "127.0.0.1 wants a login for this file (HTTP 403)", id="403"),
        pytest.param(Fault(status=418), None, (5, 5), "127.0.0.1 answered HTTP 418 (I'm a Teapot)", id="418"),
    ],
)
def test_network_faults_read_as_plain_sentences(server, tmp_path, fault, url, timeout, expected):
    server.add_file("/big.bin", 20 * MB)
    if fault:
        server.script("/big.bin", fault)
    url = (url or server.url("/big.bin")).format(port=server.port, closed=closed_port())
    spec = FileSpec(url, tmp_path / "big.bin", expected_size=20 * MB, label="checkpoints/big.bin")

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=RetryPolicy(max_attempts=1), options=Options(timeout=timeout))

    pattern = re.escape(f"checkpoints/big.bin: {expected}").replace("<n>", r"[\d.]+")  # <n>: wherever the reset hit
    assert re.fullmatch(pattern, caught.value.message), caught.value.message


def test_an_untrusted_certificate_reads_as_one(tmp_path):
    """A real TLS server with a self-signed certificate, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*command, "-keyout", key, "-out", cert], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one_handshake():
        connection, _ = listener.accept()
        with connection, contextlib.suppress(OSError):
            context.wrap_socket(connection, server_side=True)

    threading.Thread(target=serve_one_handshake, daemon=True).start()
    with listener:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/m.bin"
        with pytest.raises(DownloadError) as caught:
            download(FileSpec(url, tmp_path / "m.bin"), policy=RetryPolicy(max_attempts=1), options=SMALL)

    assert caught.value.message == (
        "m.bin: secure connection to 127.0.0.1 refused: its certificate is not trusted (self-signed certificate)"
    )
