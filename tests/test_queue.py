"""The download queue with real HTTP: jobs, FIFO, retries, pause/resume/cancel, the JSON API."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from downloads import queue
from downloads.models import DownloadJob, JobFile, State
from downloads.queue import delete_abandoned_partials
from downloads.worker import ProgressRecorder, claim_next_job, engine_options, run_queue
from presets.models import Preset, PresetFile
from realtime.events import DOWNLOAD_PROGRESS
from realtime.models import Event
from storage import part_path, validator_path
from tests.conftest import make_preset, served_preset
from tests.faultserver import Fault
from tests.liveapp import App

pytestmark = pytest.mark.django_db(transaction=True)


def target(settings, preset, position=0):
    return settings.MODEL_BASE_PATH / preset.files.all()[position].path


def alpha_under_way(server, settings, size, at_least, every=0.05):
    """ALPHA, one file of `size` bytes trickling into a background worker, its .part already
    past `at_least` bytes. Returns (preset, job, worker, part)."""
    preset = served_preset(server, "ALPHA", [size])
    server.always("/ALPHA/0.safetensors", Fault(trickle=(20_000, every)))
    job, _ = queue.install(preset)
    worker = run_worker_in_background()
    part = part_path(target(settings, preset))
    wait_for(lambda: part.exists() and part.stat().st_size > at_least)
    return preset, job, worker, part


def run_worker_in_background():
    """The worker as django-q2 runs it, in a thread with its own database connection."""

    def work():
        try:
            run_queue()
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def wait_for(condition, timeout=10, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_install_copies_the_file_list_and_downloads_it_verified(server, settings, client):
    preset = served_preset(server, "ALPHA", [300_000, 50_000])
    job, created = queue.install(preset)
    assert created and [f.path for f in job.files.all()] == [f.path for f in preset.files.all()]
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED and job.finished_at
    assert job.bytes_done == job.bytes_total == 350_000
    for file, served in zip(job.files.all(), preset.files.all(), strict=False):
        assert file.state == State.COMPLETED and file.verified_sha256 == served.sha256
    assert target(settings, preset).stat().st_size == 300_000
    assert not part_path(target(settings, preset)).exists()
    assert client.get("/api/presets/ALPHA").json()["installed"] is True


def test_installing_an_active_preset_returns_the_existing_job(server):
    preset = served_preset(server, "ALPHA", [1000])
    first, created = queue.install(preset)
    second, created_again = queue.install(preset)
    assert created and not created_again and first.pk == second.pk
    assert DownloadJob.objects.count() == 1


def test_concurrent_install_requests_make_one_job(server, user_client, settings):
    served_preset(server, "ALPHA", [1000])
    answers = []

    def ask():
        try:
            answers.append(user_client.post("/api/presets/ALPHA/install").json()["job_id"])
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and len(set(answers)) == 1
    assert DownloadJob.objects.count() == 1


def test_files_already_present_are_skipped_unless_forced(server, settings):
    preset = served_preset(server, "ALPHA", [1000, 2000])
    present = target(settings, preset, 0)
    present.parent.mkdir(parents=True)
    present.write_bytes(server.files["/ALPHA/0.safetensors"].bytes())
    job, _ = queue.install(preset)
    assert [f.skipped for f in job.files.all()] == [True, False]
    run_queue()
    assert len(server.requests_for("/ALPHA/0.safetensors")) == 0
    forced, _ = queue.install(preset, force=True)
    assert not any(f.skipped for f in forced.files.all())
    run_queue()
    assert len(server.requests_for("/ALPHA/0.safetensors")) == 1


def test_a_file_that_reached_disk_after_the_install_is_verified_not_downloaded(server, settings):
    """As after a worker died between renaming a file into place and recording it."""
    preset = served_preset(server, "ALPHA", [1000, 2000])
    job, _ = queue.install(preset)
    arrived = target(settings, preset, 1)
    arrived.parent.mkdir(parents=True)
    arrived.write_bytes(server.files["/ALPHA/1.safetensors"].bytes())
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert server.requests_for("/ALPHA/1.safetensors") == []
    assert job.files.get(position=1).verified_sha256 == server.files["/ALPHA/1.safetensors"].sha256


def test_jobs_run_one_at_a_time_in_fifo_order(server):
    presets = [served_preset(server, name, [20_000]) for name in ("FIRST", "SECOND", "THIRD")]
    for preset in presets:
        queue.install(preset)
    run_queue()
    order = [r.path.split("/")[1] for r in server.requests]
    assert order == ["FIRST", "SECOND", "THIRD"]
    jobs = list(DownloadJob.objects.order_by("started_at"))
    assert [j.preset_id for j in jobs] == ["FIRST", "SECOND", "THIRD"]
    assert all(a.finished_at <= b.started_at for a, b in zip(jobs, jobs[1:], strict=False))


def test_server_faults_are_retried_and_the_file_ends_correct(server, settings):
    preset = served_preset(server, "ALPHA", [3_000_000])
    server.script(
        "/ALPHA/0.safetensors",
        Fault(status=500),
        Fault(truncate_after=1_500_000),
        Fault(status=429, headers={"Retry-After": "0"}),
    )
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED, job.error
    assert job.files.get().verified_sha256 == preset.files.get().sha256
    ranges = [r.range for r in server.requests_for("/ALPHA/0.safetensors")]
    assert ranges[-1] == "bytes=1500000-"


def test_exhausted_retries_fail_the_job_with_its_error_and_retry_resumes(server, settings, user_client):
    preset = served_preset(server, "ALPHA", [300_000])
    server.script("/ALPHA/0.safetensors", Fault(truncate_after=120_000))
    server.always("/ALPHA/0.safetensors", Fault(status=503))
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert "503" in job.error and "checkpoints/alpha_0.safetensors" in job.error
    file = job.files.get()
    assert file.state == State.FAILED and file.attempts == settings.DOWNLOAD_MAX_ATTEMPTS
    assert part_path(target(settings, preset)).stat().st_size == 120_000

    server.always("/ALPHA/0.safetensors", None)
    answer = user_client.post("/api/presets/ALPHA/retry")
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert server.requests_for("/ALPHA/0.safetensors")[-1].range == "bytes=120000-"
    assert target(settings, preset).stat().st_size == 300_000


def test_a_sha256_mismatch_fails_and_installs_nothing(server, settings):
    preset = served_preset(server, "ALPHA", [10_000])
    PresetFile.objects.filter(preset=preset).update(sha256="0" * 64)
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.FAILED and "sha256" in job.error
    assert not target(settings, preset).exists()


def test_pause_stops_the_transfer_and_resume_continues_from_the_byte(server, settings, user_client):
    preset, _, worker, part = alpha_under_way(server, settings, 2_000_000, at_least=100_000)

    asked = time.monotonic()
    assert user_client.post("/api/presets/ALPHA/pause").json()["status"] == "paused"
    worker.join(timeout=5)
    assert not worker.is_alive() and time.monotonic() - asked < 1.5
    paused_at = part.stat().st_size
    time.sleep(0.3)
    assert part.stat().st_size == paused_at
    assert DownloadJob.objects.get().state == State.PAUSED

    server.always("/ALPHA/0.safetensors", None)
    assert user_client.post("/api/presets/ALPHA/resume").json()["status"] == "queued"
    run_queue()
    assert DownloadJob.objects.get().state == State.COMPLETED
    assert server.requests_for("/ALPHA/0.safetensors")[-1].range == f"bytes={paused_at}-"
    assert target(settings, preset).stat().st_size == 2_000_000


def test_a_file_changed_upstream_while_paused_is_installed_anew_not_spliced(server, settings, user_client):
    """The exact size is known but no sha256, as with upstream's catalogue."""
    size = 20 << 20
    served_preset(server, "ALPHA", [size], with_hashes=False)
    PresetFile.objects.update(exact_bytes=size)
    server.always("/ALPHA/0.safetensors", Fault(trickle=(256 << 10, 0.02)))
    job, _ = queue.install(Preset.objects.get(pk="ALPHA"))
    worker = run_worker_in_background()
    part = part_path(settings.MODEL_BASE_PATH / job.files.get().path)
    wait_for(lambda: part.exists() and part.stat().st_size >= 8 << 20, timeout=30)
    user_client.post("/api/presets/ALPHA/pause")
    worker.join(timeout=5)
    old_etag = server.files["/ALPHA/0.safetensors"].etag

    new = server.add_file("/ALPHA/0.safetensors", size, seed=99)  # re-uploaded upstream
    server.always("/ALPHA/0.safetensors", None)
    user_client.post("/api/presets/ALPHA/resume")
    run_queue()

    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert job.files.get().verified_sha256 == new.sha256
    assert server.requests_for("/ALPHA/0.safetensors")[-1].if_range == old_etag


def test_a_file_sent_without_length_and_cut_short_is_not_installed(server, settings, client):
    """Upstream says "100KB"; the server sends no Content-Length and closes after 40,000 bytes."""
    preset = served_preset(server, "ALPHA", [100 << 10], with_hashes=False)
    file = preset.files.get()
    file.size = "100KB"
    file.save()
    server.always("/ALPHA/0.safetensors", Fault(no_length=True, truncate_after=40_000, ignore_range=True))
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert job.error == (
        "checkpoints/alpha_0.safetensors: connection to 127.0.0.1 ended after 39.1 KB without saying"
        " how long the file is; the catalogue says about 100.0 KB"
    )
    assert not target(settings, preset).exists()
    assert client.get("/api/presets/ALPHA").json()["installed"] is False


@pytest.mark.parametrize("keep_partial", [True, False])
def test_cancel_stops_the_download_and_keeps_or_deletes_the_part(server, settings, admin_client, keep_partial):
    preset, _, worker, part = alpha_under_way(server, settings, 2_000_000, at_least=50_000)
    suffix = "" if keep_partial else "?keep_partial=false"
    assert admin_client.post(f"/api/presets/ALPHA/cancel{suffix}").json()["status"] == "cancelled"
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert part.exists() == keep_partial
    assert validator_path(target(settings, preset)).exists() == keep_partial
    assert not target(settings, preset).exists()
    assert DownloadJob.objects.get().state == State.CANCELLED


def test_cancel_of_a_queued_job_deletes_its_part_at_once(server, settings, user_client):
    preset = served_preset(server, "ALPHA", [10_000])
    part = part_path(target(settings, preset))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 100)
    user_client.post("/api/presets/ALPHA/install")
    user_client.post("/api/presets/ALPHA/cancel?keep_partial=false")
    assert not part.exists()


def test_a_part_left_by_a_cancel_is_kept_while_a_new_job_for_it_waits(server, settings, user_client):
    """Cancelled mid-download (the worker deletes the .part once it stops) and installed again
    before a worker ran: the new job resumes the .part, so the clean-up on start leaves it."""
    preset = served_preset(server, "ALPHA", [10_000])
    part = part_path(target(settings, preset))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 100)
    user_client.post("/api/presets/ALPHA/install")
    DownloadJob.objects.update(state=State.DOWNLOADING)  # claimed by a worker that then died
    user_client.post("/api/presets/ALPHA/cancel?keep_partial=false")
    user_client.post("/api/presets/ALPHA/install")

    delete_abandoned_partials()

    assert part.exists()


def test_a_paused_job_lets_the_next_one_run(server, user_client):
    served_preset(server, "FIRST", [10_000])
    served_preset(server, "SECOND", [10_000])
    user_client.post("/api/presets/FIRST/install")
    user_client.post("/api/presets/SECOND/install")
    user_client.post("/api/presets/FIRST/pause")
    run_queue()
    states = dict(DownloadJob.objects.values_list("preset_id", "state"))
    assert states == {"FIRST": State.PAUSED, "SECOND": State.COMPLETED}


def test_queue_status_shows_the_current_download_and_the_waiting_list(server, settings, client):
    preset = served_preset(server, "FIRST", [2_000_000])
    served_preset(server, "SECOND", [1000])
    server.always("/FIRST/0.safetensors", Fault(trickle=(50_000, 0.05)))
    queue.install(preset)
    queue.install(Preset.objects.get(pk="SECOND"))
    assert client.get("/api/presets/queue/status").json()["current"] is None
    worker = run_worker_in_background()
    wait_for(lambda: (client.get("/api/presets/queue/status").json()["current"] or {}).get("downloaded", 0) > 100_000)
    status = client.get("/api/presets/queue/status").json()
    assert status["active_downloads"] == 1
    current = status["current"]
    assert current["preset_id"] == "FIRST" and current["status"] == "downloading"
    assert current["file"] == "checkpoints/first_0.safetensors" and current["total"] == 2_000_000
    assert 0 < current["progress"] < 100 and current["speed"] > 0 and current["eta"] is not None
    assert [j["preset_id"] for j in status["queue"]] == ["SECOND"]
    queue.cancel(DownloadJob.objects.get(preset_id="FIRST"))
    worker.join(timeout=10)


def test_actions_need_a_login_and_known_presets(server, user_client):
    served_preset(server, "ALPHA", [1000])
    anonymous = Client()
    for action in ("install", "pause", "resume", "cancel", "retry"):
        assert anonymous.post(f"/api/presets/ALPHA/{action}").status_code == 401
    assert user_client.post("/api/presets/NOPE/install").status_code == 404
    assert user_client.post("/api/presets/ALPHA/pause").status_code == 404
    assert user_client.get("/api/presets/ALPHA/install").status_code == 405
    assert user_client.post("/api/presets/ALPHA/install").status_code == 202
    assert user_client.post("/api/presets/ALPHA/install").status_code == 200
    conflict = user_client.post("/api/presets/ALPHA/resume")
    assert conflict.status_code == 409 and "queued" in conflict.json()["error"]


def test_retired_presets_cannot_be_installed(server, user_client):
    preset = served_preset(server, "ALPHA", [1000])
    Preset.objects.filter(pk=preset.pk).update(retired_at="2026-01-01T00:00:00Z")
    assert user_client.post("/api/presets/ALPHA/install").status_code == 409


def test_queue_command_prints_the_queue(server, capsys):
    queue.install(served_preset(server, "ALPHA", [1000]))
    queue.install(served_preset(server, "BETA", [1000]))
    call_command("queue")
    out = capsys.readouterr().out
    assert "nothing is downloading" in out and "1. ALPHA queued" in out and "2. BETA queued" in out


def test_install_command_queues_and_reports_unknown_presets(server, capsys):
    served_preset(server, "ALPHA", [1000])
    call_command("install_preset", "ALPHA")
    assert "Queued ALPHA" in capsys.readouterr().out
    assert JobFile.objects.count() == 1
    with pytest.raises(Exception, match="no preset 'NOPE'"):
        call_command("install_preset", "NOPE")


def test_worker_timeout_and_retry_never_cut_a_long_download(settings):
    """django-q2 kills a task past `timeout` and re-runs one unacknowledged past `retry`."""
    q = settings.Q_CLUSTER
    assert q["workers"] == 1
    assert q["timeout"] >= 24 * 3600, "a day-long download must not be killed"
    assert q["retry"] > q["timeout"], "a running download must not be handed out again"


def test_a_pause_undone_before_the_worker_looks_still_stops_and_resumes_the_transfer(server, settings):
    preset, job, worker, part = alpha_under_way(server, settings, 2_000_000, at_least=100_000)
    server.always("/ALPHA/0.safetensors", None)
    queue.pause(job)
    queue.resume(job)  # back to queued at once: the worker must not go on as if nothing happened
    worker.join(timeout=15)
    job.refresh_from_db()
    assert job.state == State.COMPLETED
    ranges = [r.range for r in server.requests_for("/ALPHA/0.safetensors")]
    assert len(ranges) == 2 and ranges[1].startswith("bytes=")


def test_a_folder_where_the_part_goes_fails_that_file_clearly_and_the_next_job_runs(server, settings):
    blocked = served_preset(server, "BLOCKED", [10_000])
    following = served_preset(server, "NEXT", [10_000])
    part_path(target(settings, blocked)).mkdir(parents=True)
    queue.install(blocked)
    queue.install(following)

    run_queue()

    job = DownloadJob.objects.get(preset=blocked)
    assert job.state == State.FAILED
    assert "checkpoints/blocked_0.safetensors" in job.error and "Is a directory" in job.error
    assert job.files.get().state == State.FAILED
    assert DownloadJob.objects.get(preset=following).state == State.COMPLETED


def test_a_name_too_long_for_the_file_system_fails_its_job_instead_of_wedging_the_queue(server, settings):
    """A job copied from a catalogue validated by older rules: the worker refuses it by name."""
    too_long = served_preset(server, "TOO_LONG", [1000])
    PresetFile.objects.filter(preset=too_long).update(path="checkpoints/" + "é" * 130 + ".safetensors")
    queue.install(too_long)
    queue.install(served_preset(server, "NEXT", [1000]))

    run_queue()

    job = DownloadJob.objects.get(preset=too_long)
    assert job.state == State.FAILED and "file name of 272 bytes" in job.error
    assert DownloadJob.objects.get(preset_id="NEXT").state == State.COMPLETED


def test_cancelling_a_queued_job_whose_part_is_a_folder_deletes_nothing_else_and_answers(server, settings, user_client):
    preset = served_preset(server, "ALPHA", [10_000])
    folder = part_path(target(settings, preset))
    (folder / "inside").mkdir(parents=True)
    user_client.post("/api/presets/ALPHA/install")

    answer = user_client.post("/api/presets/ALPHA/cancel?keep_partial=false")

    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert (folder / "inside").is_dir()


def test_every_state_is_active_or_finished_and_the_groups_agree():
    assert sorted(State.ACTIVE + State.FINISHED) == sorted(State.values)
    assert set(State.RUNNING) < set(State.ACTIVE)
    assert set(State.CANCELLABLE) == {*State.ACTIVE, State.FAILED}


def test_a_transition_applies_only_from_its_allowed_states_and_refreshes_the_job(server):
    job, _ = queue.install(served_preset(server, "ALPHA", [1000]))
    seen_earlier = DownloadJob.objects.get(pk=job.pk)
    assert job.transition((State.QUEUED,), State.PAUSED, error="kept") is True
    assert (job.state, job.error) == (State.PAUSED, "kept")

    # A second process still holding the queued job loses: the pause stands, and it sees it.
    assert seen_earlier.transition((State.QUEUED,), State.DOWNLOADING) is False
    assert seen_earlier.state == State.PAUSED and seen_earlier.error == "kept"


def test_requeue_running_puts_only_running_jobs_and_their_files_back(server):
    running, _ = queue.install(served_preset(server, "RUNNING", [1000]))
    paused, _ = queue.install(served_preset(server, "PAUSED", [1000]))
    DownloadJob.objects.filter(pk=running.pk).update(state=State.RETRYING, speed=5.0)
    JobFile.objects.filter(job=running).update(state=State.RETRYING, speed=5.0)
    DownloadJob.objects.filter(pk=paused.pk).update(state=State.PAUSED)

    assert DownloadJob.objects.requeue_running() == 1

    assert list(DownloadJob.objects.active().values_list("preset_id", "state", "speed")) == [
        ("RUNNING", State.QUEUED, 0),
        ("PAUSED", State.PAUSED, 0),
    ]
    assert list(JobFile.objects.filter(job=running).values_list("state", "speed")) == [(State.QUEUED, 0)]
    assert not DownloadJob.objects.running().exists()


def test_a_retry_that_loses_the_race_to_an_install_answers_409(server, user_client):
    """An install lands between retry's check and its update: the database refuses a second
    active job, and the retry says so instead of failing with an IntegrityError."""
    preset = served_preset(server, "ALPHA", [1000])
    failed, _ = queue.install(preset)
    DownloadJob.objects.filter(pk=failed.pk).update(state=State.FAILED)
    competing = []

    def install_elsewhere():
        try:
            competing.append(queue.install(preset)[0])
        finally:
            connection.close()

    def install_right_after_the_check(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not competing and '"downloads_downloadjob"."state" IN' in sql:
            other = threading.Thread(target=install_elsewhere)  # its own database connection
            other.start()
            other.join()
        return result

    with connection.execute_wrapper(install_right_after_the_check):
        answer = user_client.post("/api/presets/ALPHA/retry")

    assert competing, "the competing install did not run"
    assert answer.status_code == 409 and answer.json()["error"].endswith("is already in the queue")
    assert DownloadJob.objects.get(pk=failed.pk).state == State.FAILED
    assert list(DownloadJob.objects.filter(state=State.QUEUED).values_list("pk", flat=True)) == [competing[0].pk]


def test_a_storm_of_queue_actions_answers_only_success_or_conflict(server, user_client):
    served_preset(server, "ALPHA", [1000])
    statuses = []

    def storm(actions):
        try:
            for action in actions * 10:
                statuses.append(user_client.post(f"/api/presets/ALPHA/{action}").status_code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=storm, args=(actions,))
        for actions in (["install", "cancel"], ["retry", "install"], ["cancel", "retry"], ["install", "retry"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 80 and set(statuses) <= {200, 202, 404, 409}
    assert DownloadJob.objects.filter(state__in=[State.QUEUED]).count() <= 1


@pytest.fixture
def app(tmp_path):
    app = App(tmp_path)
    yield app
    app.stop()


def test_a_real_worker_fails_a_job_it_cannot_write_and_runs_the_next_at_once(app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"BLOCKED": 10_000, "NEXT": 10_000})
    (app.models / "checkpoints" / "blocked.safetensors.part").mkdir(parents=True)
    app.start_cluster()
    app.manage("install_preset", "BLOCKED")
    app.manage("install_preset", "NEXT")

    app.wait_for(lambda: app.job_state("NEXT") == "completed")
    assert app.job_state("BLOCKED") == "failed"
    [(error,)] = app.query("select error from downloads_downloadjob where preset_id = ?", "BLOCKED")
    assert "checkpoints/blocked.safetensors" in error and "Is a directory" in error


def test_cancelling_a_job_no_worker_runs_wakes_the_worker_for_the_next(app, server, tmp_path):
    """A job left downloading by a worker task that died holds the queue; cancelling it must be
    enough for the job behind it to start, without waiting for another install."""
    app.load_catalogue(tmp_path, server, {"FIRST": 1000, "STUCK": 1000, "NEXT": 1000})
    app.start_cluster()
    app.manage("install_preset", "FIRST", "--wait")  # the cluster is up and has recovered
    app.manage(
        "shell",
        "-c",
        "from downloads.models import DownloadJob; DownloadJob.objects.create(preset_id='STUCK', state='downloading')",
    )
    app.manage("install_preset", "NEXT")
    assert app.job_state("NEXT") == "queued"

    app.manage(
        "shell",
        "-c",
        "from downloads import queue; from downloads.models import DownloadJob; "
        "queue.cancel(DownloadJob.objects.get(preset_id='STUCK'), keep_partial=False)",
    )

    app.wait_for(lambda: app.job_state("NEXT") == "completed", timeout=30)


def test_the_connection_settings_reach_the_engine(settings):
    settings.DOWNLOAD_CONNECTIONS = 3
    settings.HUGGINGFACE_HOSTS = ["hub.example.org"]
    options = engine_options()
    assert options.connections == 3 and options.huggingface_hosts == ("hub.example.org",)


def test_the_connections_of_a_file_reach_its_row_the_queue_and_the_events_with_its_progress(server, settings, client):
    settings.EVENTS_VIA_CHANNEL_LAYER = False  # events land in the outbox table, whatever the configuration
    settings.DOWNLOAD_PROGRESS_INTERVAL = 60
    queue.install(served_preset(server, "ALPHA", [5000]))
    job = claim_next_job()
    file = job.files.get()
    JobFile.objects.filter(pk=file.pk).update(state=State.DOWNLOADING)
    recorder = ProgressRecorder(job, file)
    recorder(1000, 5000, connections=8)
    recorder(2000, 5000, connections=6)  # within the interval: no write, as for the bytes
    assert JobFile.objects.get(pk=file.pk).connections == 8
    assert client.get("/api/presets/queue/status").json()["current"]["connections"] == 8
    recorder(5000, 5000, connections=2)
    events = [e.payload for e in Event.objects.filter(type=DOWNLOAD_PROGRESS).order_by("pk")]
    assert [(e["file_downloaded"], e["connections"]) for e in events] == [(1000, 8), (5000, 2)]


def hub_preset(server, size, **hub):
    """ALPHA, one file served as Hugging Face serves it, with no exact size or sha256 in the catalogue."""
    served = server.add_hf_file("/org/repo/resolve/main/alpha.safetensors", "/cdn/alpha", size, **hub)
    url = server.url("/org/repo/resolve/main/alpha.safetensors", host="localhost")
    return make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors", "url": url}]), served


def test_a_hub_file_keeps_the_size_and_sha256_its_source_declared_and_came_over_several_connections(
    server, settings, client
):
    settings.EVENTS_VIA_CHANNEL_LAYER = False
    settings.HUGGINGFACE_HOSTS = ["localhost"]
    settings.DOWNLOAD_CONNECTIONS = 4
    preset, served = hub_preset(server, 40 << 20)  # over the engine's single-stream threshold
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED, job.error
    file = PresetFile.objects.get(preset=preset)
    assert (file.exact_bytes, file.sha256) == (40 << 20, served.sha256)
    assert client.get("/api/presets/ALPHA").json()["installed"] is True
    target(settings, preset).write_bytes(b"x")  # the installed check is now exact
    assert client.get("/api/presets/ALPHA").json()["installed"] is False
    connections = [
        e["connections"] for e in Event.objects.filter(type=DOWNLOAD_PROGRESS).values_list("payload", flat=True)
    ]
    assert max(connections) == 4, connections
    assert server.connections_for("/cdn/alpha") >= 4


def test_a_file_from_another_host_keeps_the_length_its_server_announced(server):
    preset = served_preset(server, "ALPHA", [50_000], with_hashes=False)
    queue.install(preset)
    run_queue()
    file = PresetFile.objects.get(preset=preset)
    assert (file.exact_bytes, file.sha256) == (50_000, "")


def test_a_wrong_sha256_from_the_hub_fails_the_file_and_is_not_kept(server, settings):
    settings.HUGGINGFACE_HOSTS = ["localhost"]
    preset, _ = hub_preset(server, 50_000, linked_etag=f'"{"0" * 64}"')
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.FAILED and "sha256" in job.error
    assert not target(settings, preset).exists()
    file = PresetFile.objects.get(preset=preset)
    assert (file.exact_bytes, file.sha256) == (None, "")


def test_what_the_catalogue_gives_is_never_replaced_by_what_a_source_declares():
    preset = make_preset("ALPHA", [{"path": "checkpoints/a.safetensors", "sha256": "a" * 64}])
    file = preset.files.get()
    file.learn_from_source(1234, "b" * 64)
    file.learn_from_source(5678, None)
    file.refresh_from_db()
    assert (file.exact_bytes, file.sha256) == (1234, "a" * 64)
