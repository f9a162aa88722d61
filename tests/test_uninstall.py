"""Uninstalling a preset (API, command, admin action) and the free-space check before queueing."""

import os
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from disk.models import StorageAction
from downloads import queue
from downloads.models import State
from downloads.worker import claim_next_job, run_queue
from presets.models import Preset
from realtime.events import STORAGE_CHANGED
from realtime.models import Event
from storage import part_path
from tests.conftest import make_preset, served_preset

pytestmark = pytest.mark.django_db

SHARED = "vae/shared_vae.safetensors"


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_user("keeper", password="pw", is_staff=True))
    return client


@pytest.fixture(autouse=True)
def events_in_the_outbox(settings):
    settings.EVENTS_VIA_CHANNEL_LAYER = False  # events land in the outbox table, whatever the configuration


def two_presets_sharing_a_vae(model_file):
    """ALPHA (its checkpoint and the shared vae) and BETA (its own checkpoint and the same vae), all on disk."""
    make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors"}, {"path": SHARED}])
    make_preset("BETA", [{"path": "checkpoints/beta.safetensors"}, {"path": SHARED}])
    return {
        path: model_file(path, size)
        for path, size in [
            ("checkpoints/alpha.safetensors", 1000),
            ("checkpoints/beta.safetensors", 2000),
            (SHARED, 300),
        ]
    }


def storage_events():
    return [e["payload"] for e in Event.objects.filter(type=STORAGE_CHANGED).order_by("pk").values("payload")]


def test_uninstall_keeps_a_file_another_installed_preset_needs(staff, model_file):
    files = two_presets_sharing_a_vae(model_file)

    answer = staff.post("/api/presets/ALPHA/uninstall")

    assert answer.status_code == 200
    assert answer.json() == {
        "deleted": ["checkpoints/alpha.safetensors"],
        "kept_shared": [SHARED],
        "freed_bytes": 1000,
        "refused": [],
    }
    assert not files["checkpoints/alpha.safetensors"].exists() and files[SHARED].exists()
    presets = {p["id"]: p for p in staff.get("/api/presets/").json()["presets"]}
    assert presets["ALPHA"]["installed"] is False and presets["BETA"]["installed"] is True


def test_uninstall_deletes_a_shared_file_whose_other_preset_is_not_installed(staff, model_file):
    files = two_presets_sharing_a_vae(model_file)
    files["checkpoints/beta.safetensors"].unlink()  # BETA is no longer installed: its vae is ALPHA's alone

    answer = staff.post("/api/presets/ALPHA/uninstall").json()

    assert sorted(answer["deleted"]) == ["checkpoints/alpha.safetensors", SHARED]
    assert answer["kept_shared"] == [] and answer["freed_bytes"] == 1300
    assert not files[SHARED].exists()


def test_uninstall_is_refused_while_the_preset_downloads(staff, server, settings):
    preset = served_preset(server, "ALPHA", [5000])
    on_disk = settings.MODEL_BASE_PATH / "checkpoints" / "alpha_0.safetensors"
    queue.install(preset)
    on_disk.parent.mkdir(parents=True)
    on_disk.write_bytes(b"x" * 10)  # an older file the download will replace
    claim_next_job()  # the worker has taken the job up

    answer = staff.post("/api/presets/ALPHA/uninstall")

    assert answer.status_code == 409
    assert answer.json()["error"] == "ALPHA is downloading in the queue; cancel it or let it finish first"
    assert on_disk.exists()
    assert not StorageAction.objects.exists() and storage_events() == []


def test_uninstall_keeps_a_file_another_presets_download_holds(staff, server, model_file):
    make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors"}, {"path": SHARED}])
    vae = model_file(SHARED, 300)
    beta = served_preset(server, "BETA", [5000, 300], paths=["checkpoints/beta.safetensors", SHARED])
    queue.install(beta)  # queued, its vae skipped as already there: deleting it would leave BETA broken

    answer = staff.post("/api/presets/ALPHA/uninstall").json()

    assert answer["kept_shared"] == [SHARED] and vae.exists()


def test_a_planted_symlink_is_unlinked_and_its_target_untouched(staff, settings, tmp_path):
    make_preset("ALPHA")
    target = tmp_path / "precious.bin"
    target.write_bytes(b"y" * 500)
    link = settings.MODEL_BASE_PATH / "checkpoints" / "alpha.safetensors"
    link.parent.mkdir()
    link.symlink_to(target)

    answer = staff.post("/api/presets/ALPHA/uninstall").json()

    assert answer["deleted"] == ["checkpoints/alpha.safetensors"] and answer["freed_bytes"] == 0
    assert not os.path.lexists(link)
    assert target.read_bytes() == b"y" * 500


def test_a_file_outside_the_roots_is_never_deleted(staff, settings, tmp_path):
    """A folder of the model root linked elsewhere takes the preset's path out of every root."""
    make_preset("ALPHA", [{"path": "checkpoints/elsewhere/alpha.safetensors"}])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "alpha.safetensors").write_bytes(b"z" * 100)
    (settings.MODEL_BASE_PATH / "checkpoints").mkdir()
    (settings.MODEL_BASE_PATH / "checkpoints" / "elsewhere").symlink_to(outside)

    answer = staff.post("/api/presets/ALPHA/uninstall").json()

    assert answer["deleted"] == [] and answer["freed_bytes"] == 0
    assert answer["refused"] == [
        {
            "path": "checkpoints/elsewhere/alpha.safetensors",
            "reason": "not inside the model root or an extra model path",
        }
    ]
    assert (outside / "alpha.safetensors").exists()


def test_uninstall_deletes_every_copy_comfyui_would_find(staff, model_file, settings, tmp_path):
    """In a legacy folder and an extra model path (shown absolute) too: one copy left would keep it installed."""
    elsewhere = tmp_path / "big-disk"
    extra = tmp_path / "extra_model_paths.yaml"
    extra.write_text(f"bigdisk:\n  base_path: {elsewhere}\n  text_encoders: text_encoders/\n")
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(extra)
    make_preset("ALPHA", [{"path": "text_encoders/t5.safetensors"}])
    legacy = model_file("clip/t5.safetensors", 10)
    far = model_file("text_encoders/t5.safetensors", 20, root=elsewhere)

    answer = staff.post("/api/presets/ALPHA/uninstall").json()

    assert answer["deleted"] == ["clip/t5.safetensors", str(far)] and answer["freed_bytes"] == 30
    assert not legacy.exists() and not far.exists()


def test_uninstall_is_audited_and_announced(staff, model_file):
    two_presets_sharing_a_vae(model_file)

    staff.post("/api/presets/ALPHA/uninstall")

    action = StorageAction.objects.get()
    assert (action.kind, action.user.username, action.preset_id) == ("uninstall", "keeper", "ALPHA")
    assert (action.paths, action.bytes) == (["checkpoints/alpha.safetensors"], 1000)
    assert action.result == "deleted 1 files (1000 B), kept 1 shared"
    assert [(e["reason"], e["preset_id"]) for e in storage_events()] == [("uninstall", "ALPHA")]


def test_uninstall_is_for_staff_only(staff):
    make_preset("ALPHA")
    user = Client()
    user.force_login(User.objects.create_user("alice", password="pw"))
    assert Client().post("/api/presets/ALPHA/uninstall").status_code == 401
    assert user.post("/api/presets/ALPHA/uninstall").status_code == 403
    assert staff.get("/api/presets/ALPHA/uninstall").status_code == 405
    assert staff.post("/api/presets/NOPE/uninstall").status_code == 404
    assert not StorageAction.objects.exists()


def test_uninstall_preset_command_prints_what_went_and_what_stayed(model_file):
    two_presets_sharing_a_vae(model_file)
    out = StringIO()

    call_command("uninstall_preset", "ALPHA", stdout=out)

    assert out.getvalue().splitlines() == [
        "deleted checkpoints/alpha.safetensors",
        f"kept {SHARED} (another installed preset or a queued job uses it)",
        "ALPHA: 1000 B freed",
    ]
    assert StorageAction.objects.get().user is None


def test_uninstall_preset_command_fails_on_an_unknown_id_or_an_active_job():
    make_preset("ALPHA")
    with pytest.raises(CommandError, match="no preset 'NOPE'"):
        call_command("uninstall_preset", "NOPE")
    queue.install(make_preset("BETA"))
    with pytest.raises(CommandError, match="BETA is queued in the queue"):
        call_command("uninstall_preset", "BETA")


def test_the_admin_action_uninstalls_the_selected_presets(admin_client, model_file):
    files = two_presets_sharing_a_vae(model_file)

    page = admin_client.post(
        "/admin/presets/preset/", {"action": "uninstall_selected", "_selected_action": ["ALPHA", "BETA"]}, follow=True
    ).content.decode()

    # ALPHA first, while BETA is installed and needs the vae; then BETA, whose vae is then its own.
    assert "ALPHA: 1 files deleted, 1000 B freed; 1 shared files kept" in page
    assert "BETA: 2 files deleted, 2.2 KB freed" in page
    assert not any(path.exists() for path in files.values())
    assert sorted(StorageAction.objects.values_list("preset_id", flat=True)) == ["ALPHA", "BETA"]


def test_the_admin_lists_the_audit_read_only_with_filters_and_search(admin_client, staff, model_file):
    two_presets_sharing_a_vae(model_file)
    staff.post("/api/presets/ALPHA/uninstall")
    StorageAction.record("cleanup", None, ["loras/stray.safetensors"], 5, result="deleted 1 files")

    listing = admin_client.get("/admin/disk/storageaction/").content.decode()
    assert "ALPHA" in listing and "deleted 1 files (1000 B), kept 1 shared" in listing and "keeper" in listing
    assert "/admin/disk/storageaction/add/" not in listing
    by_path = admin_client.get("/admin/disk/storageaction/", {"q": "alpha.safetensors"}).content.decode()
    assert "ALPHA" in by_path and "stray" not in by_path
    cleanups = admin_client.get("/admin/disk/storageaction/", {"kind__exact": "cleanup"}).content.decode()
    assert "ALPHA" not in cleanups and "1 storage action" in cleanups
    action = StorageAction.objects.get(kind="uninstall")
    assert admin_client.post(f"/admin/disk/storageaction/{action.pk}/delete/").status_code == 403


def test_install_is_refused_with_507_when_the_preset_does_not_fit(staff, settings):
    make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors", "exact_bytes": 4000}])
    settings.DOWNLOAD_DISK_RESERVE = 1 << 62  # more than any disk has free

    answer = staff.post("/api/presets/ALPHA/install")

    assert answer.status_code == 507
    assert answer.json()["error"].startswith("ALPHA does not fit on the model disk: it needs 3.9 KB, 0 B free")
    assert not queue.active_job(Preset.objects.get(pk="ALPHA"))
    shown = staff.get("/api/presets/ALPHA").json()
    assert (shown["fits"], shown["needs_bytes"]) == (False, 4000)


def test_the_preset_json_says_what_is_left_to_download_and_that_it_fits(staff, settings, model_file):
    """Less what the .part of a download cancelled keeping it holds: the next install resumes it."""
    preset = make_preset(
        "ALPHA",
        [
            {"path": "checkpoints/alpha.safetensors", "exact_bytes": 4000},
            {"path": "vae/alpha.safetensors", "size": "2KB"},  # approximate: 2048 bytes
            {"path": "loras/alpha.safetensors", "exact_bytes": 700},
        ],
    )
    model_file("loras/alpha.safetensors", 700)
    job, _ = queue.install(preset)
    model_file(part_path(Path("checkpoints/alpha.safetensors")), 1000)
    queue.cancel(job, keep_partial=True)

    shown = staff.get("/api/presets/ALPHA").json()

    assert (shown["fits"], shown["needs_bytes"]) == (True, 3000 + 2048)
    listed = staff.get("/api/presets/").json()["presets"][0]
    assert (listed["fits"], listed["needs_bytes"]) == (True, 5048)


def test_a_completed_install_announces_storage_changed(server):
    queue.install(served_preset(server, "ALPHA", [5000]))

    run_queue()

    assert queue.latest_job(Preset.objects.get(pk="ALPHA")).state == State.COMPLETED
    assert [(e["reason"], e["preset_id"]) for e in storage_events()] == [("install", "ALPHA")]
