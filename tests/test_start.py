"""The README's start command on a fresh data directory: catalogue loaded, admin created, app served."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import websockets
from django.core.exceptions import ImproperlyConfigured

from presetsite import data_dir
from presetsite.env import env_bool, env_float, env_int, env_list, env_str
from tests.liveapp import ROOT, OwnRedis, free_port, login


def start_app(tmp_path, port=None, preexec_fn=None, **extra_env):
    port = port or free_port()
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
        preexec_fn=preexec_fn,
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


def test_start_rescans_the_template_folders_while_nobody_asks(tmp_path):
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    process, base = start_app(tmp_path, COMFYUI_TEMPLATE_DIRS=str(workflows), TEMPLATE_RESCAN_INTERVAL="0.5")
    try:
        wait_until_served(process, f"{base}/api/presets/")
        workflow = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}}
        (workflows / "added_later.json").write_text(json.dumps(workflow))
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/api/workflows/templates", timeout=5).json()["total"] == 0:
            assert time.monotonic() < deadline, "the new workflow was not found within 30 s"
            time.sleep(0.3)
    finally:
        stop(process)


def fresh_environment(tmp_path, **extra_env):
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), **extra_env}
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY"):
        env.pop(name, None)
    return env


def test_importing_the_settings_writes_nothing_and_manage_py_makes_what_it_needs(tmp_path):
    env = fresh_environment(tmp_path)
    subprocess.run([sys.executable, "-c", "import presetsite.settings"], cwd=ROOT, env=env, check=True)
    assert not (tmp_path / "data").exists()

    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    assert (tmp_path / "data" / "db.sqlite3").is_file()
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_bad_setting_stops_manage_py_naming_the_variable(tmp_path):
    env = fresh_environment(tmp_path, LOGIN_MAX_FAILURES="five")
    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode != 0
    assert "LOGIN_MAX_FAILURES='five' is not a whole number" in check.stderr


def test_fewer_than_one_download_connection_stops_manage_py_naming_the_variable(tmp_path):
    env = fresh_environment(tmp_path, DOWNLOAD_CONNECTIONS="0")
    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode != 0
    assert "DOWNLOAD_CONNECTIONS='0' is not a whole number of at least 1" in check.stderr


def test_the_environment_is_read_one_way(monkeypatch):
    monkeypatch.setenv("X_FLAG", " Yes ")
    monkeypatch.setenv("X_EMPTY", "")
    monkeypatch.setenv("X_LIST", "a, b,,c ")
    monkeypatch.setenv("X_NUMBER", "2.5")
    assert env_bool("X_FLAG") is True and env_bool("X_EMPTY", True) is True and env_bool("X_UNSET") is False
    assert env_int("X_EMPTY", 7) == 7 and env_float("X_NUMBER", 1) == 2.5
    assert env_list("X_LIST") == ["a", "b", "c"] and env_list("X_UNSET", "d,e") == ["d", "e"]
    assert env_str("X_EMPTY", "default") == "" and env_str("X_UNSET", "default") == "default"
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a yes/no value"):
        env_bool("X_FLAG")
    with pytest.raises(ImproperlyConfigured, match="X_NUMBER='2.5' is not a whole number"):
        env_int("X_NUMBER", 1)
    monkeypatch.setenv("X_NUMBER", "-1")
    assert env_int("X_NUMBER", 1) == -1 and env_int("X_UNSET", 8, minimum=1) == 8
    with pytest.raises(ImproperlyConfigured, match="X_NUMBER='-1' is not a whole number of at least 1"):
        env_int("X_NUMBER", 1, minimum=1)


def test_the_secret_key_is_made_on_first_use_and_kept(tmp_path):
    path = tmp_path / "data" / "secret_key"
    key = data_dir.secret_key(path)
    assert not path.exists()
    assert len(str(key)) > 50 and path.read_text() == str(key)
    assert str(data_dir.secret_key(path)) == str(key)


def test_start_takes_the_admin_password_from_the_environment(tmp_path):
    process, base = start_app(tmp_path, ADMIN_PASSWORD="a-long-chosen-passphrase")
    try:
        wait_until_served(process, f"{base}/api/presets/")
        assert login_to_admin(base, "admin", "a-long-chosen-passphrase")
    finally:
        output = stop(process)
    assert "a-long-chosen-passphrase" not in output


def started_from_a_script():
    """`bin/start &` in a script (or nohup) starts it with SIGINT ignored, which children inherit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("configuration", ["embedded", "redis"])
def test_stopping_takes_seconds_with_a_socket_open(tmp_path, configuration):
    own_redis = OwnRedis() if configuration == "redis" else None
    env = {"ADMIN_PASSWORD": "a-long-chosen-passphrase"}
    if own_redis:
        env["REDIS_URL"] = own_redis.url
    process, base = start_app(tmp_path, preexec_fn=started_from_a_script, **env)
    try:
        wait_until_served(process, f"{base}/api/presets/")
        session = login(base, "admin", "a-long-chosen-passphrase")
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())

        async def stop_with_socket_open():
            url = base.replace("http://", "ws://") + "/ws/dashboard"
            async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": base}) as socket_:
                assert "queue_updated" in await socket_.recv()
                began = time.monotonic()
                await asyncio.to_thread(stop, process)
                return time.monotonic() - began

        took = asyncio.run(stop_with_socket_open())
    finally:
        if process.poll() is None:
            process.kill()
        if own_redis:
            own_redis.stop()
    assert process.returncode == 0
    assert took < 10, f"stopping took {took:.1f} s"


def listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_killed_start_takes_the_server_and_the_worker_with_it(tmp_path):
    port = free_port()
    process, base = start_app(tmp_path, port=port)
    wait_until_served(process, f"{base}/api/presets/")
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20
    while listening(port) or lease_holder(tmp_path):
        assert time.monotonic() < deadline, "daphne or the worker outlived start"
        time.sleep(0.2)
    process, base = start_app(tmp_path, port=port)  # the same port, at once
    try:
        wait_until_served(process, f"{base}/api/presets/")
    finally:
        stop(process)


def lease_holder(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "db.sqlite3", timeout=10) as db:
        return db.execute("select pid from downloads_workerlease").fetchall()


def test_a_second_start_is_refused_naming_the_port_or_the_worker_that_runs(tmp_path):
    process, base = start_app(tmp_path)
    try:
        wait_until_served(process, f"{base}/api/presets/")
        port = int(base.rsplit(":", 1)[1])
        same_port, _ = start_app(tmp_path, port=port)
        output = same_port.communicate(timeout=60)[0]
        assert same_port.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use by pid" in output and "presetsite.serve" in output

        other_port, _ = start_app(tmp_path)
        output = other_port.communicate(timeout=60)[0]
        assert other_port.returncode == 1
        assert "another download worker holds this database's queue: pid" in output
    finally:
        stop(process)
