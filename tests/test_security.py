"""What must not happen on a shared server: writing outside the model root, fetching from hosts
the admins did not allow, leaking tokens, or acting without the right to."""

import json
import logging

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from downloads import queue, sources
from downloads.models import DownloadJob, State
from downloads.sources import Source
from downloads.worker import run_queue
from realtime.models import Event
from tests.conftest import served_preset
from tests.faultserver import Fault

pytestmark = pytest.mark.django_db

MODEL = "checkpoints/model.safetensors"
SERVED = "/ALPHA/0.safetensors"  # where the fault server serves ALPHA's file


def run(preset):
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    return job


def test_a_symlinked_folder_cannot_take_a_download_out_of_the_model_root(server, settings, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.MODEL_BASE_PATH / "checkpoints").symlink_to(outside)
    job = run(served_preset(server, paths=[MODEL]))
    assert job.state == State.FAILED and "outside the model root" in job.error
    assert list(outside.iterdir()) == []
    assert server.requests == []


def test_a_planted_part_symlink_is_replaced_not_followed(server, settings, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (settings.MODEL_BASE_PATH / "checkpoints").mkdir()
    (settings.MODEL_BASE_PATH / "checkpoints" / "model.safetensors.part").symlink_to(victim)
    job = run(served_preset(server, paths=[MODEL]))
    assert job.state == State.COMPLETED
    assert victim.read_text() == "precious"
    assert (settings.MODEL_BASE_PATH / "checkpoints" / "model.safetensors").stat().st_size == 50_000


def test_hosts_off_the_allow_list_are_not_contacted(server, settings):
    settings.DOWNLOAD_ALLOWED_HOSTS = ["huggingface.co"]
    job = run(served_preset(server, paths=[MODEL]))
    assert job.state == State.FAILED and "127.0.0.1 is not in DOWNLOAD_ALLOWED_HOSTS" in job.error
    assert server.requests == []
    settings.DOWNLOAD_ALLOWED_HOSTS = ["huggingface.co", "127.0.0.1"]
    queue.retry(job)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED


def test_a_token_never_reaches_errors_events_logs_or_pages(server, settings, caplog, admin_client, monkeypatch):
    caplog.set_level(logging.DEBUG)
    settings.EVENTS_VIA_CHANNEL_LAYER = False  # events land in the outbox table, whatever the configuration
    monkeypatch.setattr(sources, "KNOWN_SOURCES", (Source("local", ("127.0.0.1",), "HF_TOKEN"),))
    settings.DOWNLOAD_TOKENS = {"HF_TOKEN": "hf_SuperSecretToken123"}
    server.script(SERVED, Fault(status=500), Fault(reset_after=1000))
    server.always(SERVED, Fault(status=401))
    job = run(served_preset(server, paths=[MODEL]))
    assert job.state == State.FAILED and "401" in job.error
    assert {r.authorization for r in server.requests} == {"Bearer hf_SuperSecretToken123"}
    seen = {
        "error": job.error,
        "events": json.dumps(list(Event.objects.values_list("payload", flat=True))),
        "logs": caplog.text,
        "queue API": Client().get("/api/presets/queue/status").content.decode(),
        "preset API": Client().get("/api/presets/ALPHA").content.decode(),
        "models page": admin_client.get("/").content.decode(),
        "admin": admin_client.get("/admin/presets/preset/ALPHA/change/").content.decode(),
    }
    assert "retrying" in seen["events"] and "WARNING" in caplog.text
    assert [where for where, text in seen.items() if "SuperSecret" in text] == []


def test_queue_actions_can_be_opened_to_anonymous_users_by_setting(server, settings):
    served_preset(server, paths=[MODEL])
    anonymous = Client()
    assert anonymous.post("/api/presets/ALPHA/install").status_code == 401
    settings.ALLOW_ANONYMOUS_QUEUE_ACTIONS = True
    assert anonymous.post("/api/presets/ALPHA/install").status_code == 202
    assert DownloadJob.objects.get().requested_by is None


def test_the_refresh_url_comes_from_settings_only(client, admin_user, settings, catalogue_server):
    catalogue_server.body = b"presets: {}\n"
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    client.force_login(admin_user)
    client.post("/api/presets/refresh?url=http://127.0.0.1:9/evil", {"url": "http://127.0.0.1:9/evil"})
    assert len(catalogue_server.requests) == 1


def test_refresh_through_the_api_needs_the_admins_permission_to_change_presets(client, settings, catalogue_server):
    catalogue_server.body = b"presets: {}\n"
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    staff = User.objects.create_user("staff", is_staff=True)
    client.force_login(staff)
    refused = client.post("/api/presets/refresh")
    assert refused.status_code == 403 and "permission to change presets" in refused.json()["error"]
    assert catalogue_server.requests == []

    staff.user_permissions.add(Permission.objects.get(codename="change_preset"))
    client.force_login(User.objects.get(pk=staff.pk))  # permissions are cached per user object
    assert client.post("/api/presets/refresh").status_code == 200
    assert len(catalogue_server.requests) == 1


def logged_in(user):
    browser = Client()
    browser.force_login(user)
    return browser


def test_only_staff_can_force_a_reinstall(server):
    served_preset(server, paths=[MODEL])
    alice = logged_in(User.objects.create_user("alice"))
    refused = alice.post("/api/presets/ALPHA/install?force=true")
    assert refused.status_code == 403 and "only staff" in refused.json()["error"]
    assert not DownloadJob.objects.exists()
    staff = logged_in(User.objects.create_user("ops", is_staff=True))
    assert staff.post("/api/presets/ALPHA/install?force=true").status_code == 202
    assert DownloadJob.objects.get().force


def test_only_the_owner_or_staff_can_delete_a_downloads_partial_files(server, settings):
    preset = served_preset(server, paths=[MODEL])
    part = settings.MODEL_BASE_PATH / "checkpoints" / "model.safetensors.part"
    part.parent.mkdir()
    part.write_bytes(b"x" * 100)
    alice = User.objects.create_user("alice")
    bob = logged_in(User.objects.create_user("bob"))
    staff = logged_in(User.objects.create_user("ops", is_staff=True))

    for owner in (alice, None):
        queue.install(preset, user=owner)
        refused = bob.post("/api/presets/ALPHA/cancel?keep_partial=false")
        assert refused.status_code == 403 and "only staff or the user who asked" in refused.json()["error"]
        assert part.exists() and queue.active_job(preset).state == State.QUEUED
        assert bob.post("/api/presets/ALPHA/cancel").json()["status"] == "cancelled"  # keeping it is fine
        assert part.exists()

    queue.install(preset, user=alice)
    assert logged_in(alice).post("/api/presets/ALPHA/cancel?keep_partial=false").status_code == 200
    assert not part.exists()
    part.write_bytes(b"x" * 100)
    queue.install(preset, user=alice)
    assert staff.post("/api/presets/ALPHA/cancel?keep_partial=false").status_code == 200
    assert not part.exists()


def test_pages_and_answers_carry_the_content_security_policy(admin_client, settings):
    for url in ("/", "/login/", "/templates/", "/admin/", "/api/presets/"):
        policy = admin_client.get(url)["Content-Security-Policy"]
        assert "script-src 'self' 'unsafe-eval';" in policy and "frame-ancestors 'none'" in policy
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in admin_client.get("/")
