"""One file over several connections: byte ranges in parallel into one .part, against the real local
fault server (no network mocks). Runs without Django: `pytest tests/test_parallel_downloads.py -p no:django`.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from downloads.engine import RECORD_INTERVAL, Control, DownloadError, FileSpec, Options, RetryPolicy, Stopped, download
from downloads.sources import Source, Sources
from storage import part_path, ranges_path, read_ranges, validator_path, write_ranges
from tests.faultserver import Fault, file_sha256

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20
SIZE = 8 * MB
FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.05, progress_threshold=1)
# Four connections, ranges of 256 KiB: a file of 8 MiB makes 32 of them.
PARALLEL = Options(connections=4, single_stream_below=MB, min_piece=256 * 1024, chunk_size=64 * 1024, timeout=(5, 5))
RANGE = re.compile(r"bytes=(\d+)-(\d*)")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def served(server):
    return server.add_file("/big.bin", SIZE)


@pytest.fixture
def spec(server, served, tmp_path):
    return FileSpec(url=server.url("/big.bin"), dest=tmp_path / "checkpoints" / "big.bin", sha256=served.sha256)


class Progress:
    """on_progress recorder: what the job's figures would show."""

    def __init__(self, control=None, pause_at=None, reason="pause"):
        self.calls = []
        self.control, self.pause_at, self.reason = control, pause_at, reason
        self.paused_at = None

    def __call__(self, done, total, connections):
        self.calls.append((done, total, connections))
        if self.pause_at is not None and done >= self.pause_at and self.paused_at is None:
            self.paused_at = time.monotonic()
            getattr(self.control, self.reason)()

    @property
    def most_connections(self):
        return max(call[2] for call in self.calls)


def ranges_asked(server, path="/big.bin"):
    """(start, end or None) of each Range request to `path`, in order."""
    asked = []
    for request in server.requests_for(path):
        match = RANGE.fullmatch(request.range or "")
        if match:
            asked.append((int(match[1]), int(match[2]) + 1 if match[2] else None))
    return asked


def assert_complete(result, spec, served):
    assert result.size == served.size
    assert result.sha256 == file_sha256(spec.dest) == served.sha256
    for leftover in (part_path(spec.dest), ranges_path(spec.dest), validator_path(spec.dest)):
        assert not leftover.exists()


def test_a_large_file_comes_over_several_connections_into_one_verified_file(server, served, spec):
    progress = Progress()

    result = download(spec, on_progress=progress, policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert progress.most_connections == 4
    assert progress.calls[-1][:2] == (SIZE, SIZE)
    asked = ranges_asked(server)
    assert len(asked) == 32 - 1  # the first request, without Range, brought the first range
    assert all(end is not None and end - start <= 256 * 1024 for start, end in asked)
    done = [(0, 256 * 1024)] + sorted(asked)
    assert all(a_end == b_start for (_, a_end), (b_start, _) in zip(done, done[1:], strict=False))


def test_the_connections_are_kept_alive_from_one_range_to_the_next(server, served, spec):
    download(spec, policy=FAST, options=PARALLEL)

    peers = {request.peer for request in server.requests_for("/big.bin")}
    assert len(peers) <= 4 + 1  # one per connection, and the first request's own


def test_a_small_file_uses_one_stream(server, tmp_path):
    small = server.add_file("/small.bin", MB - 1)
    spec = FileSpec(url=server.url("/small.bin"), dest=tmp_path / "small.bin", sha256=small.sha256)

    download(spec, policy=FAST, options=PARALLEL)

    assert [request.range for request in server.requests_for("/small.bin")] == [None]


def test_one_connection_configured_means_one_stream(server, served, spec):
    result = download(spec, policy=FAST, options=Options(connections=1, single_stream_below=MB))

    assert_complete(result, spec, served)
    assert len(server.requests_for("/big.bin")) == 1


def test_a_failing_range_is_retried_while_the_others_go_on(server, served, spec):
    server.script("/big.bin", None, None, Fault(status=500), None, Fault(reset_after=10_000), Fault(delay=2))
    impatient = dataclasses.replace(PARALLEL, timeout=(5, 1))

    result = download(spec, policy=FAST, options=impatient)

    assert_complete(result, spec, served)
    asked = ranges_asked(server)
    failed = [asked[1], asked[3], asked[4]]  # the first request, without Range, is not listed
    for start, end in failed:
        assert any(start <= again < end for again, _ in asked[5:])  # what each left undone was asked again


def test_a_range_that_fails_every_time_fails_the_file_after_the_policy_s_attempts(server, served, spec):
    server.always("/big.bin", Fault(status=503))
    server.script("/big.bin", None)  # the first request behaves, every range after it fails

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=PARALLEL)

    assert "HTTP 503" in caught.value.message
    assert len(server.requests_for("/big.bin")) <= 1 + 4 + FAST.max_attempts
    assert read_ranges(spec.dest).done_bytes > 0  # what came is kept for a later resume


def test_a_server_that_ignores_range_on_a_later_request_is_finished_over_one_stream(server, served, spec):
    server.script("/big.bin", None, None, Fault(ignore_range=True))
    retries = []

    result = download(spec, on_retry=lambda *call: retries.append(call), policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert "going on over one connection" in retries[0][3]
    last = server.requests_for("/big.bin")[-1]
    assert RANGE.fullmatch(last.range)[2] == ""  # open-ended: the single stream's resume


def test_a_wrong_content_range_is_caught_before_a_byte_of_it_is_written(server, served, spec):
    server.script("/big.bin", None, None, Fault(content_range_shift=4096))
    retries = []

    result = download(spec, on_retry=lambda *call: retries.append(call), policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert "wrong part of the file" in retries[0][3]


def test_pause_stops_every_connection_within_a_second_and_resume_fetches_only_the_rest(server, served, spec):
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))  # ~800 kB/s per connection
    control = Control()
    progress = Progress(control, pause_at=2 * MB)

    with pytest.raises(Stopped):
        download(spec, control=control, on_progress=progress, policy=FAST, options=PARALLEL)

    assert time.monotonic() - progress.paused_at < 1.0
    record = read_ranges(spec.dest)
    assert 2 * MB <= record.done_bytes < SIZE
    assert part_path(spec.dest).stat().st_size == SIZE  # holes and all: only the record says what is there
    server.always("/big.bin", None)
    before = len(server.requests_for("/big.bin"))

    result = download(spec, policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert result.resumed_from == record.done_bytes
    resumed = ranges_asked(server)[before - 1 :]
    assert all(not (a <= start < b) for start, _ in resumed for a, b in record.done)


def test_cancel_stops_every_connection_within_a_second(server, served, spec):
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))
    control = Control()
    progress = Progress(control, pause_at=MB, reason="cancel")

    with pytest.raises(Stopped) as caught:
        download(spec, control=control, on_progress=progress, policy=FAST, options=PARALLEL)

    assert caught.value.reason == "cancel"
    assert time.monotonic() - progress.paused_at < 1.0
    stopped = threading.active_count()
    time.sleep(0.5)
    assert len(server.requests_for("/big.bin")) == len(server.requests_for("/big.bin"))
    assert threading.active_count() <= stopped


def test_a_part_from_one_stream_resumes_over_several_connections(server, served, spec):
    control = Control()
    with pytest.raises(Stopped):
        download(spec, control=control, on_progress=Progress(control, pause_at=3 * MB), options=Options(connections=1))
    kept = part_path(spec.dest).stat().st_size

    result = download(spec, policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert result.resumed_from == kept
    assert min(start for start, _ in ranges_asked(server)) == kept


def test_a_part_from_several_connections_resumes_over_one_from_its_prefix(server, served, spec):
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))
    control = Control()
    with pytest.raises(Stopped):
        download(spec, control=control, on_progress=Progress(control, pause_at=2 * MB), options=PARALLEL)
    prefix = read_ranges(spec.dest).prefix
    server.always("/big.bin", None)
    before = len(server.requests_for("/big.bin"))

    result = download(spec, policy=FAST, options=Options(connections=1))

    assert_complete(result, spec, served)
    assert f"bytes={prefix}-" in [request.range for request in server.requests_for("/big.bin")[before:]]


def test_a_record_from_before_a_restart_is_trusted_only_with_a_sha256_to_check_it(server, served, spec, tmp_path):
    control = Control()
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))
    with pytest.raises(Stopped):
        download(spec, control=control, on_progress=Progress(control, pause_at=MB), options=PARALLEL)
    server.always("/big.bin", None)
    record = read_ranges(spec.dest)
    text = ranges_path(spec.dest).read_text().replace(f'"boot": "{_boot_id()}"', '"boot": "another boot"')
    ranges_path(spec.dest).write_text(text)
    assert not read_ranges(spec.dest).same_boot
    unchecked = FileSpec(url=spec.url, dest=spec.dest, expected_size=SIZE)

    result = download(unchecked, policy=FAST, options=PARALLEL)

    assert result.resumed_from == 0 < record.done_bytes
    assert file_sha256(spec.dest) == served.sha256


def test_a_file_replaced_on_the_server_mid_download_is_fetched_anew_not_spliced(server, served, spec):
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))
    replaced = threading.Event()

    def on_progress(done, total, connections):
        if done >= MB and not replaced.is_set():
            replaced.set()
            server.always("/big.bin", None)
            server.add_file("/big.bin", SIZE, seed=99)

    unchecked = FileSpec(url=spec.url, dest=spec.dest, expected_size=SIZE)
    result = download(unchecked, on_progress=on_progress, policy=FAST, options=PARALLEL)

    new = server.files["/big.bin"]
    assert result.sha256 == file_sha256(spec.dest) == new.sha256 != served.sha256


def test_an_unreadable_ranges_record_starts_the_file_again(server, served, spec):
    spec.dest.parent.mkdir(parents=True)
    write_ranges(spec.dest, SIZE, [(0, MB)])
    part_path(spec.dest).write_bytes(b"\0" * 100)  # not the size the record describes

    result = download(spec, policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert result.resumed_from == 0


def _boot_id():
    with open("/proc/sys/kernel/random/boot_id") as fh:
        return fh.read().strip()


KILLED_DOWNLOAD = """
import sys
from pathlib import Path
from downloads.engine import FileSpec, Options, download
url, dest, sha256 = sys.argv[1:]
options = Options(connections=4, single_stream_below=1 << 20, min_piece=256 * 1024, chunk_size=64 * 1024)
download(FileSpec(url=url, dest=Path(dest), sha256=sha256), options=options)
"""


def test_after_a_kill_9_mid_file_only_what_was_in_flight_is_fetched_again(server, served, spec):
    rate = 16 * 1024 / 0.02  # per connection
    server.always("/big.bin", Fault(trickle=(16 * 1024, 0.02)))
    worker = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, spec.url, str(spec.dest), spec.sha256], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while (record := read_ranges(spec.dest)) is None or record.done_bytes < 3 * MB:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.05)
    finally:
        worker.kill()
        worker.wait()
    server.always("/big.bin", None)
    recorded = read_ranges(spec.dest).done_bytes

    result = download(spec, policy=FAST, options=PARALLEL)

    assert_complete(result, spec, served)
    assert result.resumed_from == recorded
    # Lost: what was received but not yet written, what was written since the last record, and
    # what the sockets held (the server paces itself, so little).
    in_flight = (PARALLEL.buffer_chunks + PARALLEL.connections) * PARALLEL.chunk_size
    since_record = PARALLEL.connections * rate * RECORD_INTERVAL * 2
    assert server.bytes_sent("/big.bin") <= SIZE + in_flight + since_record


# --- a Hugging Face host: redirects resolved once, exact size and sha256 from the source ---------

RESOLVE = "/org/repo/resolve/main/model.safetensors"
CDN = "/xet/model.safetensors"
TOKEN = "hf_s3cr3t"
HUB = dataclasses.replace(
    PARALLEL,
    huggingface_hosts=("localhost",),
    sources=Sources((Source("hub", ("localhost",), "HF_TOKEN", TOKEN),)),
)


def hub_spec(server, tmp_path, **fields):
    """What the upstream catalogue gives: a resolve URL, an approximate size, no exact size, no sha256."""
    dest = tmp_path / "checkpoints" / "model.safetensors"
    return FileSpec(url=server.url(RESOLVE, host="localhost"), dest=dest, approx_size=SIZE, **fields)


def test_the_source_s_exact_size_and_sha256_check_a_file_the_catalogue_leaves_unchecked(server, tmp_path):
    served = server.add_hf_file(RESOLVE, CDN, SIZE)
    spec = hub_spec(server, tmp_path)

    result = download(spec, policy=FAST, options=HUB)

    assert (result.source_size, result.source_sha256) == (SIZE, served.sha256)
    assert file_sha256(spec.dest) == served.sha256
    assert len(server.requests_for(RESOLVE)) == 1  # resolved once, every range asked of the CDN
    assert len(server.requests_for(CDN)) > 4
    assert {request.authorization for request in server.requests_for(RESOLVE)} == {f"Bearer {TOKEN}"}
    assert {request.authorization for request in server.requests_for(CDN)} == {None}


def test_a_file_that_does_not_match_the_source_s_sha256_fails_and_takes_no_name(server, tmp_path):
    server.add_hf_file(RESOLVE, CDN, SIZE, linked_etag=f'"{"0" * 64}"')
    spec = hub_spec(server, tmp_path)

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=HUB)

    assert caught.value.message.startswith(f"model.safetensors: sha256 mismatch: expected {'0' * 64}")
    assert "(from localhost's X-Linked-Etag)" in caught.value.message
    assert not caught.value.retryable
    assert list(spec.dest.parent.iterdir()) == []


def test_a_length_that_contradicts_the_source_s_size_fails_before_the_download(server, tmp_path):
    served = server.add_file(CDN, SIZE)
    server.always(RESOLVE, Fault(redirect=server.url(CDN), headers={"X-Linked-Size": str(SIZE + 1)}))
    spec = hub_spec(server, tmp_path)

    with pytest.raises(DownloadError) as caught:
        download(spec, policy=FAST, options=HUB)

    expected = f"expected {SIZE + 1:,} bytes (from localhost's X-Linked-Size), 127.0.0.1 has {served.size:,}"
    assert expected in caught.value.message
    assert list(spec.dest.parent.iterdir()) == []


def test_a_catalogue_s_own_sha256_wins_over_the_source_s(server, tmp_path):
    served = server.add_hf_file(RESOLVE, CDN, SIZE, linked_etag=f'"{"0" * 64}"')
    spec = hub_spec(server, tmp_path, sha256=served.sha256)

    result = download(spec, policy=FAST, options=HUB)

    assert result.sha256 == served.sha256
    assert result.source_sha256 == "0" * 64  # what the source said, for whoever keeps it


def test_linked_headers_from_other_hosts_are_not_taken(server, tmp_path):
    server.add_hf_file(RESOLVE, CDN, SIZE, linked_etag=f'"{"0" * 64}"')
    spec = hub_spec(server, tmp_path)

    result = download(spec, policy=FAST, options=dataclasses.replace(HUB, huggingface_hosts=("huggingface.co",)))

    assert result.source_sha256 is None
    assert result.source_size == SIZE  # the length the CDN announced
    assert file_sha256(spec.dest) == result.sha256


def test_an_expired_signed_url_is_resolved_again_and_the_download_goes_on(server, tmp_path):
    served = server.add_hf_file(RESOLVE, CDN, SIZE, signature_lifetime=6)
    spec = hub_spec(server, tmp_path)
    retries = []

    result = download(spec, on_retry=lambda *call: retries.append(call), policy=FAST, options=HUB)

    assert result.sha256 == file_sha256(spec.dest) == served.sha256
    assert len(server.requests_for(RESOLVE)) > 2
    assert retries == []  # not a failure: the file never waited
    assert server.bytes_sent(CDN) < SIZE + MB
    assert {request.authorization for request in server.requests_for(CDN)} == {None}
