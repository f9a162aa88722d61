"""The prober against the local server answering like Hugging Face (no network mocks).

Runs without Django: `pytest tests/test_probe.py -p no:django`.
"""

from __future__ import annotations

import time

import pytest

from downloads.engine import Options
from downloads.probe import probe, probe_many
from downloads.sources import Source, Sources
from tests.faultserver import Fault

pytestmark = pytest.mark.timeout(30)

RESOLVE = "/org/repo/resolve/main/unet/model.safetensors"
CDN = "/xet/abc123"
TOKEN = "hf_pr0be_t0ken"
SIZE = 123_457
# localhost plays huggingface.co (a hub that declares X-Linked-*, wants HF_TOKEN), 127.0.0.1 its CDN.
NO_TOKEN = Options(huggingface_hosts=("localhost",), sources=Sources((Source("hub", ("localhost",), "HF_TOKEN"),)))
WITH_TOKEN = Options(
    huggingface_hosts=("localhost",), sources=Sources((Source("hub", ("localhost",), "HF_TOKEN", TOKEN),))
)


def test_a_resolve_url_gives_exact_size_sha256_and_name_without_downloading(server):
    served = server.add_hf_file(RESOLVE, CDN, SIZE)

    found = probe(server.url(RESOLVE, host="localhost"), options=NO_TOKEN)

    assert found.status == "ok" and found.http_status == 200
    assert (found.size, found.sha256) == (SIZE, served.sha256)
    assert found.filename == "model.safetensors"
    assert found.final_url == server.url(CDN)  # the signature is left out
    assert [r.method for r in server.requests] == ["HEAD", "HEAD"]
    assert server.bytes_sent(CDN) == 0


def test_a_gated_file_needs_a_token_until_one_is_set_and_it_goes_only_to_the_hub(server):
    served = server.add_hf_file(RESOLVE, CDN, SIZE, token=TOKEN)
    url = server.url(RESOLVE, host="localhost")

    gated = probe(url, options=NO_TOKEN)
    opened = probe(url, options=WITH_TOKEN)

    assert (gated.status, gated.http_status, gated.message) == ("needs_token", 401, "needs HF_TOKEN")
    assert (opened.status, opened.size, opened.sha256) == ("ok", SIZE, served.sha256)
    assert all(r.authorization is None for r in server.requests_for(CDN))


def test_a_wrong_token_is_told_apart_from_a_missing_one(server):
    server.add_hf_file(RESOLVE, CDN, SIZE, token="another")

    found = probe(server.url(RESOLVE, host="localhost"), options=WITH_TOKEN)

    assert (found.status, found.http_status) == ("refused", 401)
    assert TOKEN not in found.message


def test_a_missing_file_is_not_found(server):
    found = probe(server.url("/org/repo/resolve/main/gone.safetensors", host="localhost"), options=NO_TOKEN)

    assert (found.status, found.http_status) == ("not_found", 404)
    assert found.message == "not found on localhost (HTTP 404)"
    assert found.size is None


def test_a_slow_server_times_out_within_the_deadline(server):
    server.add_file("/slow.bin", SIZE)
    server.always("/slow.bin", Fault(delay=10))

    began = time.monotonic()
    found = probe(server.url("/slow.bin"), options=NO_TOKEN, deadline=0.5)

    assert found.status == "timeout"
    assert time.monotonic() - began < 2


def test_the_deadline_bounds_the_whole_probe_not_each_hop(server):
    server.add_file("/final.bin", SIZE)
    server.always("/hop1", Fault(delay=0.4, redirect="/hop2"))
    server.always("/hop2", Fault(delay=0.4, redirect="/hop3"))
    server.always("/hop3", Fault(delay=0.4, redirect="/final.bin"))

    began = time.monotonic()
    found = probe(server.url("/hop1"), options=NO_TOKEN, deadline=1.0)

    assert found.status == "timeout"
    assert time.monotonic() - began < 1.8


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        ('attachment; filename="flux1 dev.safetensors"', "flux1 dev.safetensors"),
        ("attachment; filename*=UTF-8''m%C3%BCller%20v2.safetensors", "müller v2.safetensors"),
        ("attachment; filename=plain.ckpt; filename*=UTF-8''star.ckpt", "star.ckpt"),
        ('inline; filename="../../etc/passwd"', "passwd"),
    ],
)
def test_content_disposition_names_the_file(server, disposition, name):
    server.add_file("/download/12345", SIZE)
    server.always("/download/12345", Fault(headers={"Content-Disposition": disposition}))

    found = probe(server.url("/download/12345?type=Model"), options=NO_TOKEN)

    assert (found.status, found.filename, found.size) == ("ok", name, SIZE)


def test_a_server_refusing_head_is_asked_for_one_byte_instead(server):
    server.add_file("/model.bin", SIZE)
    server.always("/model.bin", Fault(refuse_head=True))

    found = probe(server.url("/model.bin"), options=NO_TOKEN)

    assert (found.status, found.http_status, found.size) == ("ok", 206, SIZE)
    assert [(r.method, r.range) for r in server.requests] == [("HEAD", None), ("GET", "bytes=0-0")]


def test_a_server_giving_no_length_to_head_is_asked_for_one_byte(server):
    server.add_file("/model.bin", SIZE)
    server.script("/model.bin", Fault(chunked=True))

    found = probe(server.url("/model.bin"), options=NO_TOKEN)

    assert (found.status, found.size) == ("ok", SIZE)


def test_a_host_outside_the_allowed_ones_is_not_asked(server):
    server.add_file("/model.bin", SIZE)
    options = Options(sources=Sources(allowed_hosts=("huggingface.co",)))

    found = probe(server.url("/model.bin"), options=options)

    assert found.status == "error" and "DOWNLOAD_ALLOWED_HOSTS" in found.message
    assert server.requests == []


def test_probe_many_keeps_the_order_and_runs_in_parallel(server):
    for n in range(16):
        server.add_file(f"/m{n}.bin", 1000 + n)
        server.always(f"/m{n}.bin", Fault(delay=0.2))
    urls = [server.url(f"/m{n}.bin") for n in range(16)]

    began = time.monotonic()
    found = probe_many(urls, options=NO_TOKEN, workers=8)

    assert [p.size for p in found] == [1000 + n for n in range(16)]
    assert time.monotonic() - began < 1.5  # two rounds of 0.2 s, not sixteen
