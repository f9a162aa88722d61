"""Verify: a job of the download queue that re-hashes the installed files against their sha256;
a mismatch marks the file corrupt (the preset is then not installed) until a download replaces it."""

import pytest
from django.core.management import call_command
from django.test import Client

from disk.models import StorageAction
from downloads import queue
from downloads.models import DownloadJob, Kind, State
from downloads.worker import run_queue
from presets.models import CorruptFile, Preset, PresetFile
from realtime.events import DOWNLOAD_PROGRESS, STORAGE_CHANGED
from realtime.models import Event
from tests.conftest import make_preset, served_preset
from tests.test_queue import run_worker_in_background, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def installed(server, settings, preset_id="ALPHA", sizes=(50_000,)):
    """A preset whose files are on disk as its source serves them, with their sha256 known."""
    preset = served_preset(server, preset_id, sizes)
    for position, file in enumerate(preset.files.all()):
        path = settings.MODEL_BASE_PATH / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(server.files[f"/{preset_id}/{position}.safetensors"].bytes())
    return preset


def flip_a_byte(path, at=1000):
    with open(path, "r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0xFF]))


def events(kind):
    return [e.payload for e in Event.objects.order_by("id") if e.payload["type"] == kind]


def test_verify_catches_a_flipped_byte_and_the_preset_is_no_longer_installed(server, settings, user_client):
    settings.EVENTS_VIA_CHANNEL_LAYER = False  # events land in the outbox table, whatever the configuration
    preset = installed(server, settings, sizes=(300_000, 50_000))
    bad = preset.files.all()[0]
    flip_a_byte(settings.MODEL_BASE_PATH / bad.path)

    answer = user_client.post("/api/presets/ALPHA/verify")
    assert answer.status_code == 202 and answer.json()["kind"] == "verify"
    run_queue()

    job = DownloadJob.objects.get()
    assert job.kind == Kind.VERIFY and job.state == State.COMPLETED
    assert job.bytes_done == job.bytes_total == 350_000
    mark = CorruptFile.objects.get()
    assert (mark.path, mark.expected_sha256, mark.size) == (bad.path, bad.sha256, 300_000)
    shown = user_client.get("/api/presets/ALPHA").json()
    assert shown["installed"] is False and shown["status"] == "corrupt"
    assert [f["corrupt"] for f in shown["files"]] == [True, False]
    assert not user_client.get("/api/presets/?installed=true").json()["presets"]
    audit = StorageAction.objects.get()
    assert (audit.kind, audit.preset_id, audit.bytes, audit.user.username) == ("verify", "ALPHA", 350_000, "alice")
    assert audit.result == f"ok: 1 files; corrupt: ['{bad.path}']; not checkable: []"
    assert events(STORAGE_CHANGED)[-1] | {"at": 0} == {
        "type": STORAGE_CHANGED,
        "at": 0,
        "reason": "verify",
        "preset_id": "ALPHA",
        "job_id": job.pk,
        "result": audit.result,
    }
    progress = events(DOWNLOAD_PROGRESS)
    assert progress[-1]["progress"] == 100.0 and {p["connections"] for p in progress} == {1}
    assert not server.requests_for("/ALPHA/0.safetensors")  # nothing downloaded to check


def test_the_preset_page_shows_the_corrupt_file_and_offers_re_download_and_verify(server, settings, user_client):
    preset = installed(server, settings)
    flip_a_byte(settings.MODEL_BASE_PATH / preset.files.get().path)
    queue.verify(preset)
    run_queue()
    page = user_client.get("/presets/ALPHA/").content.decode()
    assert 'data-testid="preset-status">corrupt<' in page
    assert "corrupt (does not match its sha256)" in page
    assert 'data-testid="redownload"' in page and 'data-testid="verify"' in page
    assert "<td>verified</td>" in page


def test_a_good_preset_verifies_ok_and_stays_installed(server, settings, client):
    installed(server, settings)
    job, created = queue.verify(Preset.objects.get())
    run_queue()
    assert created and not CorruptFile.objects.exists()
    assert StorageAction.objects.get().result == "ok: 1 files; corrupt: []; not checkable: []"
    assert StorageAction.objects.get().user is None  # queued from the command line
    assert client.get("/api/presets/ALPHA").json()["status"] == "installed"


def test_a_redownload_through_install_fixes_a_corrupt_file_and_clears_the_mark(server, settings, user_client):
    preset = installed(server, settings)
    path = settings.MODEL_BASE_PATH / preset.files.get().path
    flip_a_byte(path)
    queue.verify(preset)
    run_queue()
    assert CorruptFile.objects.exists()

    answer = user_client.post("/api/presets/ALPHA/install")
    assert answer.status_code == 202
    job = DownloadJob.objects.get(kind=Kind.INSTALL)
    assert not job.files.get().skipped  # the corrupt file is not taken as installed
    run_queue()

    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert len(server.requests_for("/ALPHA/0.safetensors")) == 1  # already_in_place refused it
    assert path.read_bytes() == server.files["/ALPHA/0.safetensors"].bytes()
    assert not CorruptFile.objects.exists()
    assert user_client.get("/api/presets/ALPHA").json()["status"] == "installed"


def test_a_later_verify_that_matches_clears_the_mark(server, settings):
    preset = installed(server, settings)
    path = settings.MODEL_BASE_PATH / preset.files.get().path
    flip_a_byte(path)
    queue.verify(preset)
    run_queue()
    flip_a_byte(path)  # put right by hand
    queue.verify(preset)
    run_queue()
    assert not CorruptFile.objects.exists() and preset.is_installed()


def test_files_without_a_known_sha256_are_reported_not_checkable(server, settings):
    preset = installed(server, settings, sizes=(20_000, 30_000))
    unknown = preset.files.all()[1]
    PresetFile.objects.filter(pk=unknown.pk).update(sha256="")
    flip_a_byte(settings.MODEL_BASE_PATH / unknown.path)

    job, _ = queue.verify(preset)
    assert job.bytes_total == 20_000
    run_queue()

    assert StorageAction.objects.get().result == f"ok: 1 files; corrupt: []; not checkable: ['{unknown.path}']"
    assert StorageAction.objects.get().bytes == 20_000
    assert not CorruptFile.objects.exists() and preset.is_installed()


def slow_to_hash(settings, size=512 << 20):
    """A preset whose one file takes about a second to hash: a sparse file of `size` bytes."""
    preset = make_preset("BIG", [{"path": "checkpoints/big.safetensors", "sha256": "0" * 64}])
    path = settings.MODEL_BASE_PATH / "checkpoints" / "big.safetensors"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    settings.DOWNLOAD_PROGRESS_INTERVAL = 0.01
    return preset, path


def test_a_verify_job_pauses_resumes_and_checks_from_the_first_byte_again(settings, user_client):
    preset, path = slow_to_hash(settings)
    queue.verify(preset)
    worker = run_worker_in_background()
    wait_for(lambda: DownloadJob.objects.get().bytes_done > 0)

    assert user_client.post("/api/presets/BIG/pause").json()["status"] == "paused"
    worker.join(timeout=5)
    job = DownloadJob.objects.get()
    assert not worker.is_alive() and job.state == State.PAUSED and job.bytes_done < job.bytes_total
    assert job.files.get().state == State.QUEUED
    assert not StorageAction.objects.exists()

    with open(path, "r+b") as fh:
        fh.truncate(1 << 20)  # quick to hash now
    user_client.post("/api/presets/BIG/resume")
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED and job.files.get().bytes_done == 1 << 20
    assert CorruptFile.objects.get().size == 1 << 20


def test_cancelling_a_verify_job_stops_it_and_leaves_the_files_and_any_part_alone(settings, admin_client):
    preset, path = slow_to_hash(settings)
    part = path.with_name(path.name + ".part")
    part.write_bytes(b"x" * 100)  # an install's, kept for a resume
    queue.verify(preset)
    worker = run_worker_in_background()
    wait_for(lambda: DownloadJob.objects.get().bytes_done > 0)

    assert admin_client.post("/api/presets/BIG/cancel?keep_partial=false").json()["status"] == "cancelled"
    worker.join(timeout=5)
    assert not worker.is_alive() and DownloadJob.objects.get().state == State.CANCELLED
    assert path.exists() and part.exists()
    assert not CorruptFile.objects.exists() and not StorageAction.objects.exists()


def test_verify_is_refused_while_a_download_of_the_preset_is_active_and_install_while_verifying(
    server, settings, user_client
):
    installed(server, settings)
    (settings.MODEL_BASE_PATH / "checkpoints" / "alpha_0.safetensors").unlink()
    assert user_client.post("/api/presets/ALPHA/install").status_code == 202

    refused = user_client.post("/api/presets/ALPHA/verify")
    assert refused.status_code == 409
    assert refused.json() == {"error": "its download is queued; verify it once that is done"}

    run_queue()
    first = user_client.post("/api/presets/ALPHA/verify")
    again = user_client.post("/api/presets/ALPHA/verify")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["job_id"] == again.json()["job_id"]
    install = user_client.post("/api/presets/ALPHA/install")
    assert install.status_code == 409
    assert install.json()["error"] == "ALPHA is being verified; install it once that is done"


def test_the_verify_api_needs_a_login_and_a_known_preset_with_files_on_disk(server, settings, user_client):
    installed(server, settings)
    assert Client().post("/api/presets/ALPHA/verify").status_code == 401
    assert user_client.post("/api/presets/NOPE/verify").status_code == 404
    make_preset("EMPTY")
    nothing = user_client.post("/api/presets/EMPTY/verify")
    assert nothing.status_code == 409 and nothing.json() == {"error": "no file of EMPTY is on disk to verify"}


def test_verify_presets_command_queues_the_given_or_every_installed_preset(server, settings, capsys):
    installed(server, settings, "ALPHA")
    installed(server, settings, "BETA")
    make_preset("NOT_HERE")

    call_command("verify_presets")
    out = capsys.readouterr().out
    jobs = {job.preset_id: job.pk for job in DownloadJob.objects.all()}
    assert out == (
        f"Queued verify of ALPHA (job {jobs['ALPHA']}, 1 of 1 checkable)\n"
        f"Queued verify of BETA (job {jobs['BETA']}, 1 of 1 checkable)\n"
    )
    run_queue()
    call_command("verify_presets", "BETA")
    assert capsys.readouterr().out.startswith("Queued verify of BETA")
    assert DownloadJob.objects.filter(kind=Kind.VERIFY).count() == 3
