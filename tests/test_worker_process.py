"""The real worker: a `manage.py qcluster` process, killed with -9 mid-file and started again."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.faultserver import Fault, file_sha256
from tests.liveapp import ROOT, App


@pytest.fixture
def app(tmp_path):
    app = App(tmp_path)
    yield app
    app.stop()


def download_under_way(app, server, tmp_path, at_least):
    """A real worker downloading BIG slowly, its .part already holding `at_least` bytes."""
    app.load_catalogue(tmp_path, server, {"BIG": 8_000_000})
    server.always("/BIG.safetensors", Fault(trickle=(64_000, 0.02)))
    app.start_cluster()
    app.manage("install_preset", "BIG")
    part = app.models / "checkpoints" / "big.safetensors.part"
    app.wait_for(lambda: part.exists() and part.stat().st_size > at_least)
    return part


def test_a_killed_worker_resumes_the_download_from_its_part_on_restart(app, server, tmp_path):
    part = download_under_way(app, server, tmp_path, at_least=1_000_000)

    app.kill_cluster()
    assert app.job_state("BIG") == "downloading"
    killed_at = part.stat().st_size
    assert 0 < killed_at < 8_000_000

    server.always("/BIG.safetensors", None)
    app.start_cluster()
    app.wait_for(lambda: app.job_state("BIG") == "completed")
    final = app.models / "checkpoints" / "big.safetensors"
    assert file_sha256(final) == server.files["/BIG.safetensors"].sha256
    assert not part.exists()
    resumed = server.requests_for("/BIG.safetensors")[-1]
    assert resumed.range is not None and int(resumed.range.split("=")[1].rstrip("-")) >= killed_at


def test_install_wait_follows_the_job_and_reports_failure(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"GOOD": 500_000, "BROKEN": 500_000})
    server.always("/BROKEN.safetensors", Fault(status=404))
    app.start_cluster()
    good = app.manage("install_preset", "GOOD", "--wait")
    assert "GOOD installed" in good.stdout and "100.0%" in good.stdout
    broken = app.manage("install_preset", "BROKEN", "--wait", check=False)
    assert broken.returncode == 1
    assert "BROKEN failed" in broken.stderr and "404" in broken.stderr


def test_install_wait_says_when_no_worker_picks_the_job_up(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"LONELY": 1000})
    waiting = subprocess.Popen(
        [sys.executable, "manage.py", "install_preset", "LONELY", "--wait"],
        cwd=ROOT,
        env={**app.env, "INSTALL_WAIT_WARNING_AFTER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    app.start_cluster()
    out, err = waiting.communicate(timeout=60)
    assert "No worker has picked the job up" in err
    assert waiting.returncode == 0 and "LONELY installed" in out


def test_ctrl_c_stops_a_running_download_at_once_and_the_next_start_resumes_it(app, server, tmp_path):
    download_under_way(app, server, tmp_path, at_least=500_000)

    asked = time.monotonic()
    app.stop_cluster()
    assert time.monotonic() - asked < 10
    assert app.job_state("BIG") == "queued"

    server.always("/BIG.safetensors", None)
    app.start_cluster()
    app.wait_for(lambda: app.job_state("BIG") == "completed")
    assert file_sha256(app.models / "checkpoints" / "big.safetensors") == server.files["/BIG.safetensors"].sha256


def test_a_sigterm_to_the_cluster_alone_stops_the_download_at_once(app, server, tmp_path):
    """A service manager stops the cluster's main process only; the download must not run on
    to its end first, as django-q2 lets a task do."""
    download_under_way(app, server, tmp_path, at_least=500_000)

    asked = time.monotonic()
    app.cluster.send_signal(signal.SIGTERM)
    app.cluster.wait(timeout=30)
    assert time.monotonic() - asked < 10
    assert app.job_state("BIG") == "queued"
    assert app.query("select count(*) from downloads_workerlease") == [(0,)]  # released


def test_ctrl_c_pressed_twice_still_stops_the_worker(app):
    """A second SIGINT landing inside the worker's handler used to wait for ever on the lock the
    first one held: the cluster never stopped."""
    for _ in range(3):
        app.start_cluster()
        time.sleep(3)  # the worker is up and waiting for tasks
        os.killpg(app.cluster.pid, signal.SIGINT)
        os.killpg(app.cluster.pid, signal.SIGINT)
        app.cluster.wait(timeout=30)
