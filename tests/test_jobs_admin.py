"""Download jobs in the real admin: the history, queue actions, and deleting finished jobs."""

import pytest
from django.contrib.auth.models import User

from downloads import queue
from downloads.models import DownloadJob, JobFile, State
from presets.models import Preset
from storage import part_path
from tests.conftest import make_preset

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/downloads/downloadjob/"


def job_in(state, preset_id, user=None):
    job, _ = queue.install(make_preset(preset_id), user=user)
    DownloadJob.objects.filter(pk=job.pk).update(
        state=state, error="HTTP 404 from example.org" if state == "failed" else ""
    )
    return DownloadJob.objects.get(pk=job.pk)


def act(admin_client, action, *jobs):
    return admin_client.post(
        CHANGELIST, {"action": action, "_selected_action": [job.pk for job in jobs]}, follow=True
    ).content.decode()


def test_the_history_shows_who_asked_for_what_and_how_it_ended(admin_client):
    alice = User.objects.create_user("alice")
    job_in(State.FAILED, "BROKEN", user=alice)
    job_in(State.QUEUED, "WAITING")

    page = admin_client.get(CHANGELIST).content.decode()
    assert "BROKEN" in page and "alice" in page and "HTTP 404 from example.org" in page
    failed_only = admin_client.get(CHANGELIST, {"state__exact": "failed"}).content.decode()
    assert "BROKEN" in failed_only and "WAITING" not in failed_only
    assert "delete_selected" not in page


def test_queue_actions_follow_the_queue_rules(admin_client):
    waiting = job_in(State.QUEUED, "WAITING")
    failed = job_in(State.FAILED, "BROKEN")

    page = act(admin_client, "pause", waiting, failed)
    assert "1 job(s) paused" in page and "BROKEN is failed; only a queued or running download can be paused" in page
    assert DownloadJob.objects.get(pk=waiting.pk).state == State.PAUSED

    act(admin_client, "retry", failed)
    assert DownloadJob.objects.get(pk=failed.pk).state == State.QUEUED


def test_deleting_keeps_active_jobs_and_removes_the_part_files_only_finished_jobs_held(admin_client, settings):
    failed = job_in(State.FAILED, "BROKEN")
    active = job_in(State.QUEUED, "WAITING")
    parts = [part_path(settings.MODEL_BASE_PATH / job.files.get().path) for job in (failed, active)]
    for part in parts:
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"partial")

    assert "deletelink" in admin_client.get(f"{CHANGELIST}{failed.pk}/change/").content.decode()
    page = act(admin_client, "delete_finished", failed, active)

    assert "1 finished job(s) deleted" in page
    assert list(DownloadJob.objects.values_list("preset_id", flat=True)) == ["WAITING"]
    assert [part.exists() for part in parts] == [False, True]
    assert "deletelink" not in admin_client.get(f"{CHANGELIST}{active.pk}/change/").content.decode()
    assert admin_client.post(f"{CHANGELIST}{active.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_preset_with_an_active_download_cannot_be_deleted_from_under_the_worker(admin_client):
    active = job_in(State.QUEUED, "WAITING")
    job_in(State.FAILED, "BROKEN")

    refused = admin_client.post("/admin/presets/preset/WAITING/delete/", {"post": "yes"})
    assert refused.status_code == 403
    admin_client.post(
        "/admin/presets/preset/", {"action": "delete_selected", "_selected_action": ["WAITING"], "post": "yes"}
    )
    assert DownloadJob.objects.filter(pk=active.pk).exists()

    admin_client.post("/admin/presets/preset/BROKEN/delete/", {"post": "yes"})
    assert not Preset.objects.filter(pk="BROKEN").exists()


def test_a_cancelled_jobs_files_say_they_were_not_downloaded_and_unknown_sizes_say_so(admin_client):
    job = job_in(State.QUEUED, "ALPHA")
    JobFile.objects.filter(job=job).update(bytes_done=2048, exact_bytes=None, approx_bytes=None, bytes_total=None)
    queue.cancel(job)

    page = admin_client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()

    assert "Not downloaded (job cancelled)" in page and ">Queued<" not in page
    assert "2.0 KB (size unknown)" in page and "B / <" not in page


def test_django_q2s_own_pages_are_not_in_the_admin(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Download jobs" in index
    assert "django_q" not in index and "Scheduled tasks" not in index
    assert admin_client.get("/admin/django_q/schedule/").status_code == 404
