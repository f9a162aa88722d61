"""The local fault server itself: what the parallel-download tests rely on it to do."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.faultserver import Fault, FaultServer


def test_a_rate_paces_the_body_and_a_server_stop_interrupts_it(server):
    served = server.add_file("/f.bin", 100_000)
    server.always("/f.bin", Fault(rate=200_000))

    began = time.monotonic()
    assert requests.get(server.url("/f.bin"), timeout=10).content == served.bytes()
    assert time.monotonic() - began >= 0.45

    with FaultServer() as other:
        other.add_file("/slow.bin", 1 << 20)
        other.always("/slow.bin", Fault(rate=1000))
        response = requests.get(other.url("/slow.bin"), stream=True, timeout=10)
    began = time.monotonic()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the body ends short
        for _ in response.iter_content(65536):
            pass
    assert time.monotonic() - began < 1


def test_faults_at_a_byte_go_to_the_requests_whose_range_contains_it(server):
    server.add_file("/f.bin", 1000)
    server.script("/f.bin", Fault(status=503))
    server.at_byte("/f.bin", 500, Fault(status=500), Fault(status=502))

    def status(range_=None):
        headers = {"Range": range_} if range_ else {}
        return requests.get(server.url("/f.bin"), headers=headers, timeout=10).status_code

    assert status("bytes=400-599") == 500
    assert status("bytes=500-") == 502
    assert status("bytes=0-99") == 503  # the script, untouched by the aimed faults
    assert status("bytes=400-599") == 206


def test_faults_at_a_byte_are_each_taken_once_by_concurrent_requests(server):
    server.add_file("/f.bin", 1000)
    server.at_byte("/f.bin", 0, *[Fault(status=500)] * 3)

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: requests.get(server.url("/f.bin"), timeout=10).status_code, range(12)))

    assert sorted(statuses) == [200] * 9 + [500] * 3


def test_bytes_sent_counts_what_each_response_wrote_including_cut_ones(server):
    server.add_file("/f.bin", 100_000)
    server.script("/f.bin", None, Fault(reset_after=1000), Fault(truncate_after=2000))

    for _ in range(3):
        try:
            requests.get(server.url("/f.bin"), timeout=10)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            pass
    requests.get(server.url("/f.bin"), headers={"Range": "bytes=10-109"}, timeout=10)

    assert server.bytes_sent("/f.bin") == 100_000 + 1000 + 2000 + 100
    assert server.bytes_sent("/other.bin") == 0


def test_each_request_records_its_peer_so_connections_can_be_counted(server):
    server.add_file("/f.bin", 1000)
    with requests.Session() as session:
        for _ in range(3):
            session.get(server.url("/f.bin"), timeout=10)
    requests.get(server.url("/f.bin"), timeout=10)

    peers = [request.peer for request in server.requests_for("/f.bin")]
    assert peers[0] == peers[1] == peers[2] != peers[3]
    assert peers[0][0] == "127.0.0.1"
    assert server.connections_for("/f.bin") == 2


def test_many_parallel_connections_are_served_at_once(server):
    server.add_file("/f.bin", 50_000)
    server.always("/f.bin", Fault(rate=100_000))  # half a second each

    began = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        sizes = list(pool.map(lambda _: len(requests.get(server.url("/f.bin"), timeout=10).content), range(16)))

    assert sizes == [50_000] * 16
    assert time.monotonic() - began < 3  # one after the other would take 8 s
    assert server.connections_for("/f.bin") == 16


def test_a_redirect_fault_sends_its_headers(server):
    server.script("/r", Fault(redirect=server.url("/f.bin"), headers={"X-Linked-Size": "1000"}))

    response = requests.get(server.url("/r"), allow_redirects=False, timeout=10)

    assert response.status_code == 302
    assert response.headers["Location"] == server.url("/f.bin")
    assert response.headers["X-Linked-Size"] == "1000"


def test_a_hugging_face_file_redirects_to_a_signed_cdn_url_that_expires(server):
    resolve = "/org/model/resolve/main/model.safetensors"
    served = server.add_hf_file(resolve, "/cdn/model.safetensors", 10_000, signature_lifetime=2)

    hub = requests.get(server.url(resolve, host="localhost"), allow_redirects=False, timeout=10)
    assert hub.status_code == 302
    assert hub.headers["X-Linked-Size"] == "10000"
    assert hub.headers["X-Linked-Etag"] == f'"{served.sha256}"'
    assert hub.headers["ETag"] not in (hub.headers["X-Linked-Etag"], served.etag)
    cdn = hub.headers["Location"]
    assert cdn.startswith(server.url("/cdn/model.safetensors?sig="))

    assert requests.get(cdn, timeout=10).content == served.bytes()
    assert requests.get(cdn, headers={"Range": "bytes=10-19"}, timeout=10).content == served.read(10, 20)
    expired = requests.get(cdn, timeout=10)
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content

    again = requests.get(server.url(resolve, host="localhost"), timeout=10)  # follows the new signature
    assert again.content == served.bytes()
    assert again.url != cdn
    assert requests.get(server.url("/cdn/model.safetensors?sig=nope"), timeout=10).status_code == 403
    assert len(server.requests_for(resolve)) == 2
    assert server.requests_for(resolve)[0].host == f"localhost:{server.port}"


def test_a_hugging_face_file_can_declare_a_wrong_linked_etag(server):
    server.add_hf_file("/resolve/x.bin", "/cdn/x.bin", 1000, linked_etag='"' + "0" * 64 + '"')

    hub = requests.get(server.url("/resolve/x.bin"), allow_redirects=False, timeout=10)

    assert hub.headers["X-Linked-Etag"] == '"' + "0" * 64 + '"'


def test_files_without_a_signature_still_ignore_the_query(server):
    served = server.add_file("/f.bin", 1000)

    assert requests.get(server.url("/f.bin?download=1"), timeout=10).content == served.bytes()
