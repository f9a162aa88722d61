"""The README's start command on a fresh data directory: catalogue loaded, admin created, app served."""

import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.liveapp import ROOT, free_port


def start_app(tmp_path, **extra_env):
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "start", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_until_served(process, url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.ConnectionError:
            time.sleep(0.3)
    raise AssertionError(f"{url} was not served within {timeout} s")


def stop(process):
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError("start did not stop on Ctrl-C:\n" + output) from None
    return output


def login_to_admin(base, username, password):
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/admin/login/"},
        timeout=5,
    )
    return "Site administration" in response.text


def test_start_sets_everything_up_and_prints_a_random_admin_password_once(tmp_path):
    process, base = start_app(tmp_path)
    try:
        presets = wait_until_served(process, f"{base}/api/presets/").json()
        assert presets["total"] == 56
        assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200
    finally:
        output = stop(process)
    password = re.search(r"Created admin user 'admin' with password: (\S+)", output).group(1)
    assert len(password) >= 12

    process, base = start_app(tmp_path)
    try:
        wait_until_served(process, f"{base}/api/presets/")
        assert login_to_admin(base, "admin", password)
        assert not login_to_admin(base, "admin", "admin")
    finally:
        output = stop(process)
    assert "Created admin user" not in output


def test_start_takes_the_admin_password_from_the_environment(tmp_path):
    process, base = start_app(tmp_path, ADMIN_PASSWORD="a-long-chosen-passphrase")
    try:
        wait_until_served(process, f"{base}/api/presets/")
        assert login_to_admin(base, "admin", "a-long-chosen-passphrase")
    finally:
        output = stop(process)
    assert "a-long-chosen-passphrase" not in output
