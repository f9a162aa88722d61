"""The load the hardening issue asks for, over the real stack: 200 WebSocket clients and 50 API
clients while a download runs. Nothing may be dropped and no request may fail; the latency
figures are the business of `bench/load.py`, which runs this same measurement."""

import os

from bench.load import measure


def test_200_websocket_clients_and_50_api_clients_during_a_download_lose_nothing(tmp_path):
    configuration = "redis" if os.environ.get("REDIS_URL") else "embedded"

    result = measure(configuration, clients=200, api_clients=50, seconds=4, workdir=tmp_path)

    assert result["events"] >= 10, "the download sent too few events to prove anything"
    assert result["dropped"] == 0
    assert result["api_errors"] == []
    assert result["api_requests"] >= 100
