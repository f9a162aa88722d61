"""A throw-away installation of the app, run as real processes: daphne, qcluster, manage.py."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import redis
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """A throw-away installation (SQLite, own model root) driven through manage.py commands."""

    def __init__(self, tmp_path, **env):
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
            "LOG_LEVEL": "WARNING",
        }
        # Its own configuration only: not the Redis or database of the test run that starts it.
        for inherited in ("DJANGO_SETTINGS_MODULE", "REDIS_URL"):
            self.env.pop(inherited, None)
        self.env.update(env)
        self.cluster = None
        self.webs = []
        self.base = None
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")

    def manage(self, *args, check=True, timeout=120):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def load_catalogue(self, tmp_path, server, presets, base=None):
        """Load presets whose files `server` serves, added to the catalogue file `base` if given.

        `presets` maps an id to a file size, or to a list of sizes for a preset of several files.
        """
        catalogue = {"categories": {"Image Generation": {"description": "Images", "type": "image"}}, "presets": {}}
        if base:
            catalogue = yaml.safe_load(base.read_text())
        for preset_id, sizes in presets.items():
            if isinstance(sizes, int):
                files = [self._served_file(server, preset_id, sizes)]
            else:
                files = [self._served_file(server, f"{preset_id}-{n}", size) for n, size in enumerate(sizes)]
            catalogue["presets"][preset_id] = {
                "name": preset_id,
                "category": "Image Generation",
                "type": "image",
                "files": files,
            }
        path = tmp_path / "presets.yaml"
        path.write_text(yaml.safe_dump(catalogue, sort_keys=False))
        self.manage("refresh_presets", "--file", str(path))
        return path

    @staticmethod
    def _served_file(server, name, size):
        served = server.add_file(f"/{name}.safetensors", size)
        return {
            "path": f"checkpoints/{name.lower()}.safetensors",
            "url": server.url(f"/{name}.safetensors"),
            "size": "8MB",
            "sha256": served.sha256,
            "size_bytes": size,
        }

    def start_cluster(self):
        self.cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**self.env, "LOG_LEVEL": "INFO"},
            stdout=subprocess.DEVNULL,
            stderr=open(self.data / "qcluster.log", "ab"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        )

    def kill_cluster(self):
        """kill -9 of the whole cluster: sentinel, pusher, monitor and the worker."""
        os.killpg(self.cluster.pid, signal.SIGKILL)
        self.cluster.wait(timeout=30)

    def stop_cluster(self):
        """Ctrl-C, as a terminal sends it: SIGINT to the cluster's whole process group."""
        os.killpg(self.cluster.pid, signal.SIGINT)
        try:
            self.cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_cluster()
            raise AssertionError("qcluster did not stop on SIGINT") from None

    def job_state(self, preset_id):
        row = self.query(
            "select state from downloads_downloadjob where preset_id = ? order by id desc limit 1", preset_id
        )
        return row[0][0] if row else None

    def query(self, sql, *params):
        """Rows of `sql` (with ? placeholders) from the app's database, SQLite or PostgreSQL."""
        url = self.env["DATABASE_URL"]
        if url.startswith("postgres"):
            with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as db:
                return db.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(self.db, timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def api(self, method, path, token, **kwargs):
        """A request to the first web process as a script sends it (API token, no cookies)."""
        return requests.request(
            method, f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )

    def start_web(self):
        """Start a daphne web process; the first one's address is `base`. Returns its address."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "presetsite.serve",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "presetsite.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data / "daphne.log", "ab"),  # noqa: SIM115 - closed with the process
        )
        self.webs.append(web)
        self.base = self.base or base
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert web.poll() is None, "daphne died"
            try:
                if requests.get(f"{base}/api/presets/", timeout=2).status_code == 200:
                    return base
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("daphne did not come up")

    def create_user(self, username, password, staff=False):
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({username!r}, password={password!r}, is_staff={staff!r})",
        )

    def token(self, username):
        return self.manage("create_api_token", username).stdout.strip()

    def login(self, username, password):
        return login(self.base, username, password)

    def stop(self):
        """Stop every process; their logs' last lines go to the test's output (shown if it failed)."""
        for log in ("daphne.log", "qcluster.log"):
            if (self.data / log).exists():
                lines = (self.data / log).read_text(errors="replace").splitlines()[-60:]
                print(f"--- last lines of {log}", *lines, sep="\n")
        for web in self.webs:
            if web.poll() is None:
                web.terminate()
                web.wait(timeout=30)
        if self.cluster and self.cluster.poll() is None:
            self.stop_cluster()

    def wait_for(self, condition, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.cluster is None or self.cluster.poll() is None, "qcluster died"
            time.sleep(0.1)
        raise AssertionError("condition not met in time")


def login(base, username, password):
    """A requests session logged in through the login form, as a browser would."""
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=5)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf, "next": "/api/presets/"},
        headers={"Referer": f"{base}/login/"},
        timeout=5,
    )
    assert "sessionid" in session.cookies, "login failed"
    return session


class OwnRedis:
    """A Redis server of the test's own: nothing shared with other test runs, and it can restart."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self.start()

    def start(self):
        process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return process
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def restart(self):
        self.stop()
        time.sleep(1.5)  # down for a moment, as during a real restart
        self.process = self.start()

    def stop(self):
        self.process.kill()
        self.process.wait()
