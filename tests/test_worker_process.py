"""The real worker: a `manage.py qcluster` process, killed with -9 mid-file and started again."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.faultserver import Fault, FaultServer, file_sha256

ROOT = Path(__file__).resolve().parent.parent


class App:
    """A throw-away installation (SQLite, own model root) driven through manage.py commands."""

    def __init__(self, tmp_path):
        self.data = tmp_path / "data"
        self.models = tmp_path / "models"
        self.db = self.data / "db.sqlite3"
        self.env = {
            **os.environ,
            "DATA_DIR": str(self.data),
            "MODEL_BASE_PATH": str(self.models),
            "DATABASE_URL": f"sqlite:///{self.db}",
            "DOWNLOAD_BACKOFF_INITIAL": "0.05",
            "DOWNLOAD_DISK_RESERVE": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.cluster = None
        self.manage("migrate", "--noinput")

    def manage(self, *args, check=True, timeout=120):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def load_catalogue(self, tmp_path, server, presets):
        catalogue = {"categories": {"Image Generation": {"description": "Images", "type": "image"}}, "presets": {}}
        for preset_id, size in presets.items():
            served = server.add_file(f"/{preset_id}.safetensors", size)
            catalogue["presets"][preset_id] = {
                "name": preset_id,
                "category": "Image Generation",
                "type": "image",
                "files": [
                    {
                        "path": f"checkpoints/{preset_id.lower()}.safetensors",
                        "url": server.url(f"/{preset_id}.safetensors"),
                        "size": "8MB",
                        "sha256": served.sha256,
                        "size_bytes": size,
                    }
                ],
            }
        path = tmp_path / "presets.yaml"
        path.write_text(yaml.safe_dump(catalogue))
        self.manage("refresh_presets", "--file", str(path))

    def start_cluster(self):
        self.cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill_cluster(self):
        """kill -9 of the whole cluster: sentinel, pusher, monitor and the worker."""
        os.killpg(self.cluster.pid, signal.SIGKILL)
        self.cluster.wait(timeout=30)

    def stop_cluster(self):
        self.cluster.send_signal(signal.SIGTERM)
        try:
            self.cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_cluster()
            raise AssertionError("qcluster did not stop on SIGTERM") from None

    def job_state(self, preset_id):
        with sqlite3.connect(self.db, timeout=10) as db:
            row = db.execute(
                "select state from downloads_downloadjob where preset_id = ? order by id desc limit 1", (preset_id,)
            ).fetchone()
        return row and row[0]

    def wait_for(self, condition, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.cluster is None or self.cluster.poll() is None, "qcluster died"
            time.sleep(0.1)
        raise AssertionError("condition not met in time")


@pytest.fixture
def app(tmp_path):
    app = App(tmp_path)
    yield app
    if app.cluster and app.cluster.poll() is None:
        app.stop_cluster()


@pytest.fixture
def server():
    with FaultServer() as server:
        yield server


def test_a_killed_worker_resumes_the_download_from_its_part_on_restart(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"BIG": 8_000_000})
    server.always("/BIG.safetensors", Fault(trickle=(64_000, 0.02)))
    app.start_cluster()
    app.manage("install_preset", "BIG")
    part = app.models / "checkpoints" / "big.safetensors.part"
    app.wait_for(lambda: part.exists() and part.stat().st_size > 1_000_000)

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
