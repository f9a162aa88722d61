"""The storage API and clean-up: what the model disk holds, checked against files the tests wrote,
and what clean-up may and may not delete."""

import os
from datetime import UTC, datetime

import pytest

from disk.models import StorageAction
from downloads import queue
from downloads.models import DownloadJob, JobFile, State
from presets.models import model_roots
from realtime.events import STORAGE_CHANGED
from realtime.models import Event
from storage import write_ranges
from tests.conftest import make_preset

pytestmark = pytest.mark.django_db

SHA = "ab" * 32


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("root", password="pw", is_staff=True))
    return client


def storage(client):
    response = client.get("/api/storage/")
    assert response.status_code == 200, response.content
    return response.json()


def cleanup(client, paths, confirm=False):
    return client.post("/api/storage/cleanup", {"paths": paths, "confirm": confirm}, content_type="application/json")


def by_id(presets):
    return {p["id"]: p for p in presets}


def test_the_figures_are_those_of_the_files_on_disk(staff_client, model_file, settings):
    make_preset(
        "ALPHA",
        [
            {"path": "checkpoints/alpha.safetensors", "exact_bytes": 100},
            {"path": "loras/shared.safetensors"},
            {"path": "text_encoders/t5.safetensors"},
        ],
    )
    make_preset(
        "BETA",
        [
            {"path": "loras/shared.safetensors"},
            {"path": "checkpoints/beta.safetensors", "exact_bytes": 300},
            {"path": "vae/beta.safetensors"},
        ],
    )
    make_preset("GAMMA", [{"path": "vae/gamma.safetensors"}])  # nothing on disk: not listed
    model_file("checkpoints/alpha.safetensors", 100)
    model_file("loras/shared.safetensors", 50)
    model_file("clip/t5.safetensors", 30)  # the legacy folder of text_encoders
    model_file("checkpoints/beta.safetensors", 200)  # short of its exact size
    model_file("loras/stray.safetensors", 70)
    model_file("top-level.txt", 5)
    model_file("checkpoints/gamma.safetensors.part", 40)
    model_file("checkpoints/.gamma.safetensors.if-range", 12)  # the .part's bookkeeping

    report = storage(staff_client)

    assert report["folders"] == [
        {"name": "", "files": 1, "bytes": 5},
        {"name": "checkpoints", "files": 2, "bytes": 300},
        {"name": "loras", "files": 2, "bytes": 120},
        {"name": "text_encoders", "files": 1, "bytes": 30},
    ]
    presets = by_id(report["presets"])
    assert set(presets) == {"ALPHA", "BETA"}
    assert presets["ALPHA"] == {
        "id": "ALPHA",
        "name": "ALPHA",
        "installed": True,
        "bytes_on_disk": 180,
        "files_present": 3,
        "files_incomplete": 0,
        "files_missing": 0,
        "shared": ["loras/shared.safetensors"],
    }
    beta = presets["BETA"]
    assert (beta["installed"], beta["bytes_on_disk"]) == (False, 250)
    assert (beta["files_present"], beta["files_incomplete"], beta["files_missing"]) == (1, 1, 1)
    assert beta["shared"] == ["loras/shared.safetensors"]
    assert [(u["path"], u["bytes"], u["link"]) for u in report["unmanaged"]] == [
        ("loras/stray.safetensors", 70, None),
        ("top-level.txt", 5, None),
    ]
    stray = os.stat(settings.MODEL_BASE_PATH / "loras/stray.safetensors").st_mtime
    assert report["unmanaged"][0]["modified"] == f"{datetime.fromtimestamp(stray, UTC):%Y-%m-%dT%H:%M:%S}Z"
    assert [(p["path"], p["bytes"], p["job"]) for p in report["partials"]] == [
        ("checkpoints/gamma.safetensors.part", 40, None)
    ]
    assert report["duplicates"] == []
    [disk] = report["disk"]
    assert disk["path"] == str(settings.MODEL_BASE_PATH)
    assert disk["total"] >= disk["used"] > 0 and 0 <= disk["free"] <= disk["total"]


def test_a_file_in_an_extra_model_path_is_shown_by_its_absolute_path(staff_client, model_file, settings, tmp_path):
    elsewhere = tmp_path / "big-disk"
    found = model_file("loras/far.safetensors", 60, root=elsewhere)
    model_file("loras/listed.safetensors", 80, root=elsewhere)
    extra = tmp_path / "extra_model_paths.yaml"
    extra.write_text(f"bigdisk:\n  base_path: {elsewhere}\n  loras: loras/\n")
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(extra)
    make_preset("ALPHA", [{"path": "loras/listed.safetensors"}])

    report = storage(staff_client)

    assert [u["path"] for u in report["unmanaged"]] == [str(found)]
    assert by_id(report["presets"])["ALPHA"]["bytes_on_disk"] == 80
    assert report["folders"] == [{"name": "loras", "files": 2, "bytes": 140}]
    assert len(report["disk"]) == 1  # the same file system as the model root


def test_a_part_fetched_over_several_connections_counts_the_bytes_its_ranges_hold(staff_client, settings):
    dest = settings.MODEL_BASE_PATH / "checkpoints" / "big.safetensors"
    dest.parent.mkdir()
    write_ranges(dest, 1 << 20, [(0, 1000), (4096, 5096)])
    with open(f"{dest}.part", "wb") as part:
        part.truncate(1 << 20)  # full-size and sparse, as the engine makes it

    report = storage(staff_client)

    assert [(p["path"], p["bytes"]) for p in report["partials"]] == [("checkpoints/big.safetensors.part", 2000)]
    assert report["unmanaged"] == []  # its .ranges record is bookkeeping, not a file


def test_duplicates_are_files_of_the_same_size_and_known_sha256_never_of_the_same_name(staff_client, model_file):
    make_preset("ALPHA", [{"path": "checkpoints/model.safetensors", "sha256": SHA, "exact_bytes": 64}])
    make_preset("BETA", [{"path": "diffusion_models/model-copy.safetensors", "sha256": SHA}])
    make_preset("GAMMA", [{"path": "loras/other.safetensors"}])
    model_file("checkpoints/model.safetensors", 64)
    model_file("unet/model-copy.safetensors", 64)
    model_file("loras/other.safetensors", 64)  # same size, no known hash
    model_file("vae/model.safetensors", 64)  # same name and size, no known hash

    assert storage(staff_client)["duplicates"] == [["checkpoints/model.safetensors", "unet/model-copy.safetensors"]]


def test_a_completed_download_s_verified_hash_makes_a_duplicate_known(staff_client, model_file):
    make_preset("ALPHA", [{"path": "checkpoints/a.safetensors", "sha256": SHA}])
    beta = make_preset("BETA", [{"path": "loras/b.safetensors"}])
    model_file("checkpoints/a.safetensors", 64)
    model_file("loras/b.safetensors", 64)
    job = DownloadJob.objects.create(preset=beta, state=State.COMPLETED)
    JobFile.objects.create(
        job=job, position=0, path="loras/b.safetensors", url="https://example.org/b", state=State.COMPLETED,
        verified_sha256=SHA,
    )  # fmt: skip

    assert storage(staff_client)["duplicates"] == [["checkpoints/a.safetensors", "loras/b.safetensors"]]


def test_a_planted_link_is_listed_as_a_link_never_followed_and_clean_up_removes_only_the_link(
    staff_client, model_file, settings, tmp_path
):
    root = settings.MODEL_BASE_PATH
    model_file("checkpoints/real.safetensors", 500)
    secret = tmp_path / "outside" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(b"s" * 4000)
    (tmp_path / "outside" / "deep.bin").write_bytes(b"d" * 3000)
    (root / "loras").mkdir()
    os.symlink(root / "checkpoints" / "real.safetensors", root / "loras" / "inside.safetensors")
    os.symlink(secret, root / "loras" / "outside.safetensors")
    os.symlink(secret.parent, root / "loras" / "outside-folder")
    os.symlink(tmp_path / "nowhere", root / "loras" / "broken.safetensors")

    report = storage(staff_client)

    assert [(u["path"], u["bytes"], u["link"]) for u in report["unmanaged"]] == [
        ("checkpoints/real.safetensors", 500, None),
        ("loras/broken.safetensors", 0, "broken"),
        ("loras/inside.safetensors", 0, "inside"),
        ("loras/outside-folder", 0, "outside"),
        ("loras/outside.safetensors", 0, "outside"),
    ]
    assert {"name": "loras", "files": 4, "bytes": 0} in report["folders"]  # nothing behind the links counted

    links = ["loras/outside.safetensors", "loras/outside-folder", "loras/inside.safetensors"]
    answer = cleanup(staff_client, links, confirm=True).json()
    assert answer == {"deleted": links, "refused": [], "freed_bytes": 0}
    assert secret.read_bytes() == b"s" * 4000 and (tmp_path / "outside" / "deep.bin").exists()
    assert (root / "checkpoints" / "real.safetensors").stat().st_size == 500
    assert not any(os.path.lexists(root / path) for path in links)


def test_a_preset_found_through_a_link_inside_the_roots_counts_as_installed(staff_client, model_file, settings):
    root = settings.MODEL_BASE_PATH
    model_file("checkpoints/real.safetensors", 500)
    (root / "loras").mkdir()
    os.symlink(root / "checkpoints" / "real.safetensors", root / "loras" / "linked.safetensors")
    make_preset("ALPHA", [{"path": "loras/linked.safetensors", "exact_bytes": 500}])

    report = storage(staff_client)

    assert by_id(report["presets"])["ALPHA"]["installed"] is True
    assert [u["path"] for u in report["unmanaged"]] == ["checkpoints/real.safetensors"]


def test_clean_up_previews_then_deletes_only_unmanaged_files_and_orphaned_parts(staff_client, model_file, settings):
    settings.EVENTS_VIA_CHANNEL_LAYER = False  # events land in the outbox table, whatever the configuration
    root = settings.MODEL_BASE_PATH
    make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors"}])
    model_file("checkpoints/alpha.safetensors", 100)
    model_file("loras/stray.safetensors", 70)
    orphan = root / "checkpoints" / "gone.safetensors"
    write_ranges(orphan, 1 << 20, [(0, 300)])
    model_file("checkpoints/gone.safetensors.part", 1 << 20)
    model_file("checkpoints/.gone.safetensors.if-range", 10)
    asked = ["loras/stray.safetensors", "checkpoints/gone.safetensors.part", "checkpoints/alpha.safetensors", "nope"]

    preview = cleanup(staff_client, asked).json()

    assert preview == {
        "delete": [
            {"path": "loras/stray.safetensors", "bytes": 70},
            {"path": "checkpoints/gone.safetensors.part", "bytes": 300},
        ],
        "refused": [
            {"path": "checkpoints/alpha.safetensors", "reason": "a preset lists it: uninstall the preset instead"},
            {"path": "nope", "reason": "no such file under the model root or an extra model path"},
        ],
        "freed_bytes": 370,
    }
    assert (root / "loras" / "stray.safetensors").exists() and (root / "checkpoints/gone.safetensors.part").exists()
    assert not StorageAction.objects.exists()

    done = cleanup(staff_client, asked, confirm=True).json()

    assert done == {
        "deleted": ["loras/stray.safetensors", "checkpoints/gone.safetensors.part"],
        "refused": preview["refused"],
        "freed_bytes": 370,
    }
    assert sorted(p.name for p in root.rglob("*")) == ["alpha.safetensors", "checkpoints", "loras"]
    action = StorageAction.objects.get()
    assert (action.kind, action.user.username, action.bytes) == ("cleanup", "root", 370)
    assert action.paths == done["deleted"]
    event = Event.objects.filter(type=STORAGE_CHANGED).get()
    assert event.payload["reason"] == "cleanup"
    assert storage(staff_client)["unmanaged"] == []


def test_the_part_of_an_active_download_is_shown_with_its_job_and_never_cleaned_up(staff_client, model_file, settings):
    preset = make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors"}])
    job, _ = queue.install(preset)
    model_file("checkpoints/alpha.safetensors.part", 40)

    assert storage(staff_client)["partials"][0]["job"] == job.pk
    answer = cleanup(staff_client, ["checkpoints/alpha.safetensors.part"], confirm=True).json()
    assert answer["refused"] == [
        {"path": "checkpoints/alpha.safetensors.part", "reason": f"download job {job.pk} holds it"}
    ]
    assert (settings.MODEL_BASE_PATH / "checkpoints/alpha.safetensors.part").exists()

    queue.cancel(job)  # cancelled, its .part kept: an orphan now
    assert storage(staff_client)["partials"][0]["job"] is None
    assert cleanup(staff_client, ["checkpoints/alpha.safetensors.part"], confirm=True).json()["freed_bytes"] == 40


def test_the_file_of_an_active_download_that_no_preset_lists_any_more_is_never_cleaned_up(staff_client, model_file):
    preset = make_preset("ALPHA", [{"path": "checkpoints/alpha.safetensors"}])
    job, _ = queue.install(preset)
    preset.files.update(path="checkpoints/renamed.safetensors")  # a refresh under way changed the catalogue
    model_file("checkpoints/alpha.safetensors", 40)

    answer = cleanup(staff_client, ["checkpoints/alpha.safetensors"]).json()
    assert answer["refused"] == [{"path": "checkpoints/alpha.safetensors", "reason": f"download job {job.pk} holds it"}]


@pytest.mark.parametrize("body", ["[1, 2]", '{"paths": "a"}', '{"paths": [], "confirm": "yes"}', "not json"])
def test_clean_up_refuses_a_body_it_cannot_read(staff_client, body):
    response = staff_client.post("/api/storage/cleanup", body, content_type="application/json")
    assert response.status_code == 400
    assert "paths" in response.json()["error"]


def test_storage_is_for_staff_only(client, django_user_model):
    assert client.get("/api/storage/").status_code == 401
    assert cleanup(client, []).status_code == 401
    assert client.get("/storage/").status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("alice", password="pw"))
    assert client.get("/api/storage/").status_code == 403
    assert cleanup(client, []).status_code == 403
    assert client.get("/storage/").status_code == 403
    assert b'data-testid="storage-link"' not in client.get("/").content


def test_staff_get_the_page_and_its_link(staff_client):
    page = staff_client.get("/storage/")
    assert page.status_code == 200
    assert b'data-testid="storage-link"' in page.content
    assert b"presetsite/storage.js" in page.content


def test_the_walk_spares_look_ups_without_changing_what_counts_as_installed(model_file, settings, tmp_path):
    root = settings.MODEL_BASE_PATH
    outside = tmp_path / "outside"
    model_file("checkpoints/plain.safetensors", 10)
    model_file("clip/legacy.safetensors", 11)
    model_file("checkpoints/sub/deep.safetensors", 12)
    model_file("vae/on-another-disk.safetensors", 13, root=tmp_path / "other-disk")
    os.symlink(tmp_path / "other-disk" / "vae", root / "vae")  # a model folder that is a link: ComfyUI looks there
    model_file("linked/far.safetensors", 14, root=outside)
    (root / "loras").mkdir()
    os.symlink(outside / "linked", root / "loras" / "sub")  # a subfolder leaving the roots
    os.symlink(outside / "linked" / "far.safetensors", root / "loras" / "far.safetensors")
    os.symlink(root / "checkpoints" / "plain.safetensors", root / "loras" / "near.safetensors")
    paths = [
        "checkpoints/plain.safetensors",
        "text_encoders/legacy.safetensors",
        "checkpoints/sub/deep.safetensors",
        "vae/on-another-disk.safetensors",
        "loras/sub/far.safetensors",
        "loras/far.safetensors",
        "loras/near.safetensors",
        "loras/missing.safetensors",
    ]
    roots = model_roots()
    walked = {entry.full: entry for entry in roots.walk()}

    assert roots.locate_paths(paths, walked) == roots.locate_paths(paths)
    assert sorted(roots.file_sizes(paths)) == sorted(paths[:4] + ["loras/near.safetensors"])
    assert walked[str(root / "vae" / "on-another-disk.safetensors")].folder == "vae"
