"""Faults over the real stack: daphne, a real qcluster killed with -9 in each state of a job,
SQLite locked by another process, a catalogue refresh in the middle of a download.

After each one: nothing corrupt is marked installed, no job is lost, and no .part is left
without a job that can resume it.
"""

import sqlite3
import time
import uuid

import psycopg
import pytest

from tests.faultserver import Fault, file_sha256
from tests.liveapp import App

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
RESUMABLE = ("queued", "downloading", "retrying", "paused", "failed")


@pytest.fixture
def make_app(tmp_path):
    apps = []

    def make(**env):
        apps.append(App(tmp_path, **env))
        return apps[-1]

    yield make
    for app in apps:
        app.stop()


@pytest.fixture
def postgres_database():
    """A database of its own on the local PostgreSQL server, for an app that is not the test's."""
    name = f"presetsite_faults_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {error}")
    with admin:
        admin.execute(f"create database {name}")
        yield name
        admin.execute(f"drop database {name} with (force)")


def drop_connections(database):
    """What a PostgreSQL restart (or a failover) does to every client of `database`."""
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        dropped = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (database,)
        ).fetchall()
    return len(dropped)


def assert_consistent(app):
    """The invariants every fault must leave intact."""
    rows = app.query(
        "select f.path, f.state, f.sha256, f.skipped, j.state, j.keep_partial from downloads_jobfile f "
        "join downloads_downloadjob j on f.job_id = j.id"
    )
    for path, file_state, sha256, skipped, job_state, _ in rows:
        if job_state == "completed" and not skipped:
            assert file_sha256(app.models / path) == sha256, f"{path} is marked installed but is corrupt"
        if file_state == "completed" and not skipped:
            assert (app.models / path).is_file(), f"{path} is marked complete but missing"
    resumable = {
        path
        for path, _, _, _, job_state, keep_partial in rows
        if job_state in RESUMABLE or (job_state == "cancelled" and keep_partial)
    }
    orphans = [
        str(part.relative_to(app.models))
        for part in app.models.rglob("*.part")
        if str(part.relative_to(app.models))[: -len(".part")] not in resumable
    ]
    assert not orphans, f".part files no job can resume: {orphans}"


def operator(app):
    app.create_user("ops", "a-long-password", staff=True)
    app.start_web()
    return app.token("ops")


def trickling(server, preset_id, chunk=64_000, every=0.02):
    server.always(f"/{preset_id}.safetensors", Fault(trickle=(chunk, every)))


def part_of(app, name):
    return app.models / "checkpoints" / f"{name}.safetensors.part"


def has_bytes(path, at_least):
    return lambda: path.exists() and path.stat().st_size > at_least


def installing_big(app, server, tmp_path, at_least, pace=(16_000, 0.02)):
    """BIG (6 MB) downloading slowly (`pace`: bytes per pause, the pause), installed through the
    API; returns the token and the .part."""
    app.load_catalogue(tmp_path, server, {"BIG": 6_000_000})
    trickling(server, "BIG", *pace)
    token = operator(app)
    app.start_cluster()
    assert app.api("POST", "/api/presets/BIG/install", token).status_code == 202
    part = part_of(app, "big")
    app.wait_for(has_bytes(part, at_least))
    return token, part


def finishes_from(app, server, token, preset_id, action, offset):
    """With the server well again, `action` (resume, retry) finishes the job from byte `offset`."""
    server.always(f"/{preset_id}.safetensors", None)
    assert app.api("POST", f"/api/presets/{preset_id}/{action}", token).status_code == 200
    app.wait_for(lambda: app.job_state(preset_id) == "completed")
    assert server.requests_for(f"/{preset_id}.safetensors")[-1].range == f"bytes={offset}-"
    assert_consistent(app)


def test_a_job_queued_behind_a_killed_download_is_not_lost(make_app, server, tmp_path):
    app = make_app()
    app.load_catalogue(tmp_path, server, {"FIRST": 6_000_000, "SECOND": 300_000})
    trickling(server, "FIRST", chunk=8_000, every=0.05)  # ~40 s: still running however busy the machine
    app.start_cluster()
    app.manage("install_preset", "FIRST")
    app.manage("install_preset", "SECOND")
    app.wait_for(has_bytes(part_of(app, "first"), 500_000))

    app.kill_cluster()
    assert (app.job_state("FIRST"), app.job_state("SECOND")) == ("downloading", "queued")

    server.always("/FIRST.safetensors", None)
    app.start_cluster()
    app.wait_for(lambda: app.job_state("SECOND") == "completed")
    assert app.job_state("FIRST") == "completed"
    [(first_finished, second_started)] = app.query(
        "select (select finished_at from downloads_downloadjob where preset_id = 'FIRST'),"
        " (select started_at from downloads_downloadjob where preset_id = 'SECOND')"
    )
    assert first_finished <= second_started, "the queue lost its order across the restart"
    assert_consistent(app)


def test_a_job_waiting_to_retry_resumes_at_once_after_a_restart(make_app, server, tmp_path):
    app = make_app(DOWNLOAD_BACKOFF_INITIAL="600")
    app.load_catalogue(tmp_path, server, {"FLAKY": 400_000})
    server.always("/FLAKY.safetensors", Fault(status=503))
    app.start_cluster()
    app.manage("install_preset", "FLAKY")
    app.wait_for(lambda: app.job_state("FLAKY") == "retrying")

    app.kill_cluster()
    server.always("/FLAKY.safetensors", None)
    restarted = time.monotonic()
    app.start_cluster()
    app.wait_for(lambda: app.job_state("FLAKY") == "completed", timeout=60)
    assert time.monotonic() - restarted < 60, "the restart waited out the 10-minute backoff"
    assert_consistent(app)


def test_a_paused_job_stays_paused_across_a_restart_and_resumes_from_its_part(make_app, server, tmp_path):
    app = make_app()
    token, part = installing_big(app, server, tmp_path, at_least=500_000)
    assert app.api("POST", "/api/presets/BIG/pause", token).status_code == 200
    app.wait_for(lambda: app.query("select count(*) from downloads_jobfile where state = 'queued'") == [(1,)])

    app.kill_cluster()
    paused_at = part.stat().st_size
    requests_before = len(server.requests_for("/BIG.safetensors"))
    app.start_cluster()
    time.sleep(3)
    assert app.job_state("BIG") == "paused"
    assert len(server.requests_for("/BIG.safetensors")) == requests_before, "a paused job was downloaded"
    assert_consistent(app)

    finishes_from(app, server, token, "BIG", "resume", paused_at)


def test_a_preset_killed_between_files_keeps_its_finished_file(make_app, server, tmp_path):
    app = make_app()
    app.load_catalogue(tmp_path, server, {"PAIR": [300_000, 6_000_000]})
    trickling(server, "PAIR-1", chunk=16_000)
    app.start_cluster()
    app.manage("install_preset", "PAIR")
    app.wait_for(has_bytes(part_of(app, "pair-1"), 200_000))

    app.kill_cluster()
    assert_consistent(app)
    server.always("/PAIR-1.safetensors", None)
    app.start_cluster()
    app.wait_for(lambda: app.job_state("PAIR") == "completed")
    assert len(server.requests_for("/PAIR-0.safetensors")) == 1, "the finished file was downloaded again"
    assert server.requests_for("/PAIR-1.safetensors")[-1].range is not None
    assert_consistent(app)


def test_a_failed_job_survives_a_restart_and_retry_finishes_it(make_app, server, tmp_path):
    app = make_app(DOWNLOAD_MAX_ATTEMPTS="2")
    app.load_catalogue(tmp_path, server, {"BROKEN": 2_000_000})
    server.always("/BROKEN.safetensors", Fault(reset_after=700_000))
    token = operator(app)
    app.start_cluster()
    assert app.api("POST", "/api/presets/BROKEN/install", token).status_code == 202
    app.wait_for(lambda: app.job_state("BROKEN") == "failed")
    kept = part_of(app, "broken").stat().st_size
    assert kept > 0

    app.kill_cluster()
    app.start_cluster()
    time.sleep(2)
    assert app.job_state("BROKEN") == "failed"
    assert_consistent(app)

    finishes_from(app, server, token, "BROKEN", "retry", kept)


def test_a_cancel_the_dead_worker_never_saw_still_deletes_the_part(make_app, server, tmp_path):
    app = make_app()
    token, part = installing_big(app, server, tmp_path, at_least=300_000)

    app.kill_cluster()
    assert app.api("POST", "/api/presets/BIG/cancel?keep_partial=false", token).status_code == 200
    assert part.exists()  # the worker deletes it once it has stopped, and this one is dead
    app.start_cluster()
    app.wait_for(lambda: not part.exists())
    assert app.job_state("BIG") == "cancelled"
    assert_consistent(app)


def test_sqlite_locked_past_its_timeout_refuses_requests_clearly_and_loses_no_download(make_app, server, tmp_path):
    """Another process holds SQLite's write lock from mid-download until after the file is
    complete: progress writes are skipped, the web answers 503 to writes, and once the lock
    is gone the job is completed without downloading the file again."""
    app = make_app(SQLITE_BUSY_TIMEOUT="0.5")
    app.load_catalogue(tmp_path, server, {"BIG": 3_000_000, "OTHER": 1000})
    trickling(server, "BIG", chunk=50_000, every=0.03)
    token = operator(app)
    assert app.api("GET", "/api/presets/queue/status", token).status_code == 200  # token use recorded now
    app.start_cluster()
    assert app.api("POST", "/api/presets/BIG/install", token).status_code == 202
    app.wait_for(has_bytes(part_of(app, "big"), 300_000))

    lock = sqlite3.connect(app.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        status = app.api("GET", "/api/presets/queue/status", token)
        assert status.status_code == 200 and status.json()["current"]["preset_id"] == "BIG"
        refused = app.api("POST", "/api/presets/OTHER/install", token)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "busy" in refused.json()["error"]
        app.wait_for(lambda: (app.models / "checkpoints" / "big.safetensors").exists())
        time.sleep(2)  # the worker fails to record the finished file, and keeps trying
        assert app.job_state("BIG") == "downloading"
    finally:
        lock.rollback()
        lock.close()

    app.wait_for(lambda: app.job_state("BIG") == "completed")
    assert len(server.requests_for("/BIG.safetensors")) == 1, "the finished file was downloaded again"
    assert app.job_state("OTHER") is None, "the refused install left a job behind"
    assert app.api("POST", "/api/presets/OTHER/install", token).status_code == 202
    app.wait_for(lambda: app.job_state("OTHER") == "completed")
    assert "database" in (app.data / "qcluster.log").read_text()
    assert_consistent(app)


def test_postgresql_dropping_every_connection_mid_download_loses_nothing(make_app, server, tmp_path, postgres_database):
    app = make_app(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{postgres_database}")
    token, part = installing_big(app, server, tmp_path, at_least=300_000)

    assert drop_connections(postgres_database) >= 2  # the worker's and django-q2's at least
    grown = part.stat().st_size + 500_000
    app.wait_for(has_bytes(part, grown))  # the download goes on, resumed or not
    assert app.api("GET", "/api/presets/queue/status", token).json()["current"]["preset_id"] == "BIG"

    server.always("/BIG.safetensors", None)
    app.wait_for(lambda: app.job_state("BIG") == "completed")
    assert_consistent(app)


def test_a_refresh_during_a_download_leaves_the_download_alone(make_app, server, tmp_path):
    app = make_app()
    # ~12 s in all: longer than the refresh below takes on a busy machine.
    token, _ = installing_big(app, server, tmp_path, at_least=300_000, pace=(24_000, 0.05))

    # Upstream drops BIG and adds NEW while BIG downloads.
    catalogue = app.load_catalogue(tmp_path, server, {"NEW": 1000})
    assert "BIG" not in catalogue.read_text()
    assert app.job_state("BIG") == "downloading"
    server.always("/BIG.safetensors", None)
    app.wait_for(lambda: app.job_state("BIG") == "completed")

    big = app.api("GET", "/api/presets/BIG", token).json()
    assert big["retired"] and big["installed"]
    assert app.api("GET", "/api/presets/NEW", token).status_code == 200
    assert len(server.requests_for("/BIG.safetensors")) == 1
    assert_consistent(app)
