"""The template library: folders scanned incrementally, missing models matched to presets, the API,
installing what is missing, the one-off check and the templates page."""

import json
import os
import shutil
import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from downloads.models import DownloadJob
from presets.models import Preset, mark_corrupt
from presets.refresh import refresh_from_file
from presets.sizes import human_size
from templates_scan import library
from templates_scan.models import Template
from tests.conftest import FIXTURES, UPSTREAM

pytestmark = pytest.mark.django_db

WORKFLOWS = FIXTURES / "workflows"


@pytest.fixture
def template_dir(settings, tmp_path):
    folder = tmp_path / "workflows"
    (folder / "video").mkdir(parents=True)
    for name in ("ui_sdxl_basic.json", "ui_flux_subgraph.json", "api_misc_loaders.json", "broken_truncated.json"):
        shutil.copy(WORKFLOWS / name, folder / name)
    shutil.copy(WORKFLOWS / "api_wan_video.json", folder / "video" / "api_wan_video.json")
    settings.COMFYUI_TEMPLATE_DIRS = [folder]
    return folder


@pytest.fixture
def scanned(template_dir):
    """The template folder as the scheduled rescan leaves it: requests only read what it found."""
    library.scan_directories()
    return template_dir


@pytest.fixture
def catalogue():
    refresh_from_file(UPSTREAM / "presets.yaml")


def test_scan_records_every_workflow_and_broken_files_with_their_error(template_dir):
    counts = library.scan_directories()
    assert counts == {"files": 5, "parsed": 5, "errors": 1, "removed": 0}
    broken = Template.objects.get(name="broken_truncated")
    assert "invalid JSON" in broken.error and broken.models.count() == 0
    wan = Template.objects.get(name="api_wan_video")
    assert wan.format == "api" and wan.models.count() == 5


def test_rescan_parses_only_changed_files_and_drops_vanished_ones(template_dir):
    library.scan_directories()
    assert library.scan_directories() == {"files": 5, "parsed": 0, "errors": 1, "removed": 0}
    changed = template_dir / "ui_sdxl_basic.json"
    data = json.loads(changed.read_text())
    data["nodes"] = [n for n in data["nodes"] if n["type"] != "LoraLoader"]
    changed.write_text(json.dumps(data))
    os.utime(changed, ns=(1, 1))
    (template_dir / "broken_truncated.json").unlink()
    assert library.scan_directories() == {"files": 4, "parsed": 1, "errors": 0, "removed": 1}
    assert not Template.objects.get(name="ui_sdxl_basic").models.filter(directory="loras").exists()


def test_missing_models_are_matched_to_the_presets_that_provide_them(model_file, scanned, catalogue, settings, client):
    model_file("clip_vision/clip_vision_h.safetensors")
    model_file("diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors")
    model_file("loras/wan/Wan21_CausVid_14B_T2V_lora_rank32.safetensors")
    data = client.get("/api/workflows/templates").json()
    assert data["total"] == 5
    wan = next(t for t in data["templates"] if t["name"] == "api_wan_video")
    assert wan["compatible"] is False and wan["missing_count"] == 2
    missing = {m["path"]: m for m in wan["missing_models"]}
    assert set(missing) == {"umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors"}
    encoder = missing["umt5_xxl_fp8_e4m3fn_scaled.safetensors"]
    assert encoder["directory"] == "text_encoders" and encoder["nodes"] == ["38 CLIPLoader"]
    assert encoder["name"] == "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    assert "WAN_2_1_T2V_14B" in encoder["presets"]

    detail = client.get(f"/api/workflows/templates/{wan['id']}/missing-models").json()
    assert detail["can_generate"] is False and len(detail["missing_models"]) == 2
    model_file("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    model_file("vae/wan_2.1_vae.safetensors")
    assert client.get(f"/api/workflows/templates/{wan['id']}/missing-models").json()["can_generate"] is True


def test_models_in_legacy_and_extra_folders_count_as_installed(model_file, scanned, settings, client, tmp_path):
    model_file("clip/umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    elsewhere = tmp_path / "big-disk"
    (elsewhere / "vae").mkdir(parents=True)
    (elsewhere / "vae" / "wan_2.1_vae.safetensors").write_bytes(b"x")
    extra = tmp_path / "extra_model_paths.yaml"
    extra.write_text(f"bigdisk:\n  base_path: {elsewhere}\n  vae: vae/\n")
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(extra)
    wan = next(t for t in client.get("/api/workflows/templates").json()["templates"] if t["name"] == "api_wan_video")
    missing = {m["path"] for m in wan["missing_models"]}
    assert "umt5_xxl_fp8_e4m3fn_scaled.safetensors" not in missing and "wan_2.1_vae.safetensors" not in missing


def test_a_model_a_verify_found_corrupt_is_missing_for_workflows_too(model_file, scanned, client):
    model_file("clip/umt5_xxl_fp8_e4m3fn_scaled.safetensors")  # its legacy folder: the same file
    mark_corrupt("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "a" * 64, "b" * 64, 10)

    wan = next(t for t in client.get("/api/workflows/templates").json()["templates"] if t["name"] == "api_wan_video")

    assert "umt5_xxl_fp8_e4m3fn_scaled.safetensors" in {m["path"] for m in wan["missing_models"]}


def test_models_no_preset_provides_keep_their_url(scanned, catalogue, client):
    flux = next(
        t for t in client.get("/api/workflows/templates").json()["templates"] if t["name"] == "ui_flux_subgraph"
    )
    unet = next(m for m in flux["missing_models"] if m["directory"] == "diffusion_models")
    assert unet["presets"] == [] and unet["url"].startswith("https://huggingface.co/")
    muted = next(m for m in flux["missing_models"] if m["directory"] == "loras")
    assert muted["inactive"] is True
    assert flux["missing_count"] == len(flux["missing_models"]) - 1


CUSTOM_NODES = {
    "1": {"class_type": "MysteryNode", "inputs": {"weights": "on_disk.safetensors"}},
    "2": {"class_type": "MysteryNode", "inputs": {"weights": "umt5_xxl_fp8_e4m3fn_scaled.safetensors"}},
    "3": {"class_type": "FancyUpscaleThing", "inputs": {"model_name": "guessed.pth"}},
    "4": {"class_type": "MysteryNode", "inputs": {"weights": "nowhere.safetensors"}},
    "5": {"class_type": "MysteryNode", "inputs": {"weights": "in_two_folders.safetensors"}},
    "6": {"class_type": "DWPreprocessor", "inputs": {"bbox_detector": "yolox_l.onnx", "image": ["9", 0]}},
}


def test_a_file_of_unknown_folder_is_looked_for_on_disk_then_in_the_catalogue_then_guessed(
    template_dir, model_file, catalogue, client
):
    (template_dir / "custom.json").write_text(json.dumps(CUSTOM_NODES))
    library.scan_directories()
    model_file("loras/on_disk.safetensors")
    model_file("checkpoints/in_two_folders.safetensors")
    model_file("loras/in_two_folders.safetensors")
    report = next(t for t in client.get("/api/workflows/templates").json()["templates"] if t["name"] == "custom")
    assert report["models_total"] == 6 and report["missing_count"] == 3
    missing = {m["path"]: (m["directory"], m["folder_source"], bool(m["presets"])) for m in report["missing_models"]}
    assert missing == {
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors": ("text_encoders", "catalogue", True),
        "guessed.pth": ("upscale_models", "guess", False),
        "nowhere.safetensors": ("", None, False),
    }
    # on disk in one folder: that folder; in two: the folder left open; installed either way
    template = Template.objects.get(name="custom")
    checked = {m["path"]: m for m in library.Checker().check([library.as_ref(r) for r in template.models.all()])}
    on_disk, in_two = checked["on_disk.safetensors"], checked["in_two_folders.safetensors"]
    assert (on_disk["directory"], on_disk["folder_source"], on_disk["installed"]) == ("loras", "disk", True)
    assert (in_two["directory"], in_two["folder_source"], in_two["installed"]) == ("", None, True)
    detail = client.get(f"/api/workflows/templates/{report['id']}/missing-models").json()
    assert detail["managed_models"][0]["path"] == "yolox_l.onnx" and detail["managed_models"][0]["installed"] is None


def test_a_file_of_unknown_folder_is_matched_to_presets_by_file_name(catalogue):
    checker = library.Checker()
    (checked,) = checker.check([as_open_ref("umt5_xxl_fp8_e4m3fn_scaled.safetensors")])
    assert checked["folder_source"] == "catalogue" and "WAN_2_1_T2V_14B" in checked["presets"]
    providers = checker.index.providers(as_open_ref("umt5_xxl_fp8_e4m3fn_scaled.safetensors"))
    assert providers == checked["presets"]


def as_open_ref(name):
    return library.ModelRef(name=name, directory="", path=name, nodes=("1 MysteryNode",))


def test_files_nodes_download_themselves_never_make_a_workflow_incompatible(template_dir, user_client):
    (template_dir / "custom.json").write_text(json.dumps({"6": CUSTOM_NODES["6"]}))
    library.scan_directories()
    report = next(t for t in user_client.get("/api/workflows/templates").json()["templates"] if t["name"] == "custom")
    assert report["compatible"] is True and report["missing_models"] == []
    card = card_of(user_client.get("/templates/").content.decode(), "custom")
    assert "yolox_l.onnx" in card and "Downloaded by their nodes" in card and "DWPreprocessor #6" in card


def test_the_page_says_when_a_files_folder_is_unknown(template_dir, user_client):
    (template_dir / "custom.json").write_text(json.dumps({"4": CUSTOM_NODES["4"]}))
    library.scan_directories()
    card = card_of(user_client.get("/templates/").content.decode(), "custom")
    assert "<code>nowhere.safetensors</code>" in card and "folder unknown" in card and "1 missing" in card


def test_install_missing_queues_one_job_per_preset_without_duplicates(template_dir, catalogue, user_client):
    library.scan_directories()
    wan = Template.objects.get(name="api_wan_video")
    first = user_client.post(f"/api/workflows/templates/{wan.pk}/install-missing").json()
    assert len(first["queued"]) == 1 and first["already_queued"] == []
    assert {m["directory"] for m in first["not_in_catalogue"]} == {"clip_vision", "diffusion_models", "loras"}
    again = user_client.post(f"/api/workflows/templates/{wan.pk}/install-missing").json()
    assert again["queued"] == [] and again["already_queued"] == first["queued"]
    assert DownloadJob.objects.count() == 1
    queued_preset = DownloadJob.objects.get().preset
    paths = {f.path for f in queued_preset.files.all()}
    assert {"text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "vae/wan_2.1_vae.safetensors"} <= paths


def test_install_missing_says_when_the_providing_preset_is_installed_already(model_file, catalogue, settings):
    """A model matched to a preset by folder and file name can be missing where the workflow
    looks while the preset itself is installed: nothing is queued, and the answer says why."""
    preset = Preset.objects.filter(retired_at__isnull=True).first()
    for file in preset.files.all():
        model_file(file.path)
    missing = [
        {
            "name": "x.safetensors",
            "directory": "checkpoints",
            "path": "x.safetensors",
            "url": None,
            "presets": [preset.pk],
        }
    ]

    outcome = library.install_missing(missing)

    assert outcome["already_installed"] == [preset.pk]
    assert outcome["queued"] == outcome["already_queued"] == [] and not DownloadJob.objects.exists()


def test_install_missing_needs_a_login(template_dir, client):
    library.scan_directories()
    assert client.post(f"/api/workflows/templates/{Template.objects.first().pk}/install-missing").status_code == 401
    assert client.get("/api/workflows/templates/999/missing-models").status_code == 404


def test_check_a_posted_workflow_without_saving_it(user_client, catalogue):
    body = (WORKFLOWS / "api_wan_video.json").read_bytes()
    report = user_client.post("/api/workflows/check", body, content_type="application/json").json()
    assert report["format"] == "api" and report["missing_count"] == 5 and report["can_generate"] is False
    assert not Template.objects.exists()
    bad = user_client.post("/api/workflows/check", b"{not json", content_type="application/json")
    assert bad.status_code == 400 and "invalid JSON" in bad.json()["error"]


def test_templates_page_shows_badges_missing_models_and_the_check_form(scanned, catalogue, user_client):
    page = user_client.get("/templates/").content.decode()
    assert "api_wan_video" in page and "missing" in page and "unreadable" in page
    assert "WAN_2_1_T2V_14B" in page and "Install missing" in page
    with open(WORKFLOWS / "ui_sdxl_basic.json", "rb") as upload:
        fragment = user_client.post("/templates/check", {"file": upload}).content.decode()
    assert "SDXL/sd_xl_base_1.0.safetensors" in fragment and "missing" in fragment
    pasted = user_client.post("/templates/check", {"workflow": "[1, 2]"}).content.decode()
    assert "not a ComfyUI workflow" in pasted


def test_the_page_names_the_nodes_that_use_a_model_by_type_and_id(scanned, catalogue, user_client):
    page = user_client.get("/templates/").content.decode()
    flux = card_of(page, "ui_flux_subgraph")
    assert "LoraLoaderModelOnly #21" in flux and "subgraph #20 › " in flux
    assert "21 LoraLoaderModelOnly" not in flux  # read as a count of 21 loaders


def card_of(page, name):
    return next(card for card in page.split("<article")[1:] if f"<h3>{name}</h3>" in card)


def test_install_missing_on_the_page_states_the_size_asks_first_then_shows_the_queue(scanned, catalogue, user_client):
    wan_preset = Preset.objects.get(pk="WAN_2_1_LIGHTWEIGHT_1_3B")  # the smallest that provides both
    size = human_size(wan_preset.approx_download_bytes)
    page = user_client.get("/templates/").content.decode()
    assert f"Install missing · {size}" in card_of(page, "api_wan_video")
    assert "Install missing" not in card_of(page, "api_misc_loaders")  # no preset provides any of its models
    wan = Template.objects.get(name="api_wan_video")

    confirm = user_client.get(f"/templates/{wan.pk}/install-missing").content.decode()
    assert 'data-testid="install-confirm"' in confirm and wan_preset.name in confirm
    assert f"Queue {size}" in confirm and 'name="presets" value="WAN_2_1_LIGHTWEIGHT_1_3B"' in confirm
    assert not DownloadJob.objects.exists()

    confirmed = {"presets": ["WAN_2_1_LIGHTWEIGHT_1_3B"]}
    card = user_client.post(f"/templates/{wan.pk}/install-missing", confirmed).content.decode()
    assert "Queued WAN_2_1_LIGHTWEIGHT_1_3B" in card and ">queued</span>" in card
    assert "5 missing" not in card and "Install missing" not in card
    assert DownloadJob.objects.get().preset_id == "WAN_2_1_LIGHTWEIGHT_1_3B"
    again = user_client.get(f"/templates/{wan.pk}/card").content.decode()
    assert ">queued</span>" in again and 'data-queue="WAN_2_1_LIGHTWEIGHT_1_3B:queued"' in again


def test_the_page_queues_only_what_was_confirmed(template_dir, catalogue, user_client):
    library.scan_directories()
    wan = Template.objects.get(name="api_wan_video")
    card = user_client.post(f"/templates/{wan.pk}/install-missing").content.decode()
    assert not DownloadJob.objects.exists() and "Install missing" in card


def test_the_api_shows_template_paths_inside_their_folder_never_the_servers(scanned, client):
    answer = client.get("/api/workflows/templates")
    paths = {t["name"]: t["path"] for t in answer.json()["templates"]}
    assert paths["api_wan_video"] == "video/api_wan_video.json" and paths["ui_sdxl_basic"] == "ui_sdxl_basic.json"
    assert str(scanned) not in answer.content.decode()


def test_scan_templates_command(template_dir, capsys):
    call_command("scan_templates")
    out = capsys.readouterr().out
    assert "5 workflow files: 5 parsed, 1 unreadable" in out and "broken_truncated: unreadable" in out


def test_scan_templates_counts_a_file_left_unreadable_since_an_earlier_scan(template_dir, capsys):
    call_command("scan_templates")
    capsys.readouterr()
    call_command("scan_templates")
    out = capsys.readouterr().out
    assert "5 workflow files: 0 parsed, 1 unreadable, 0 removed" in out and "broken_truncated: unreadable" in out


def test_an_unreadable_workflow_is_neither_compatible_nor_missing_nothing(scanned, client):
    broken = next(
        t for t in client.get("/api/workflows/templates").json()["templates"] if t["name"] == "broken_truncated"
    )
    assert broken["compatible"] is None and broken["can_generate"] is None and broken["missing_count"] is None
    assert "invalid JSON" in broken["error"]
    detail = client.get(f"/api/workflows/templates/{broken['id']}/missing-models").json()
    assert detail["can_generate"] is None and detail["missing_count"] is None and detail["missing_models"] == []
    assert "invalid JSON" in detail["error"]


def writes(queries):
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def test_get_requests_only_read_though_the_folder_and_the_disk_changed(
    model_file, scanned, catalogue, settings, user_client
):
    """Whether a workflow runs is checked against the disk at every GET, yet nothing is written:
    a new workflow file waits for the next rescan."""
    before = list(Template.objects.values_list("pk", "scanned_at"))
    shutil.copy(WORKFLOWS / "ui_sdxl_basic.json", scanned / "new_one.json")
    model_file("clip_vision/clip_vision_h.safetensors")
    wan = Template.objects.get(name="api_wan_video")
    with CaptureQueriesContext(connection) as queries:
        listed = user_client.get("/api/workflows/templates").json()
        user_client.get(f"/api/workflows/templates/{wan.pk}/missing-models")
        page = user_client.get("/templates/").content.decode()
        user_client.get(f"/templates/{wan.pk}/card")
        user_client.get(f"/templates/{wan.pk}/install-missing")
    assert writes(queries.captured_queries) == []
    assert list(Template.objects.values_list("pk", "scanned_at")) == before
    assert "new_one" not in page and listed["total"] == 5
    wan_report = next(t for t in listed["templates"] if t["name"] == "api_wan_video")
    assert "clip_vision_h.safetensors" not in {m["path"] for m in wan_report["missing_models"]}


def test_the_rescan_api_is_for_staff(template_dir, client):
    assert client.post("/api/workflows/rescan").status_code == 401
    client.force_login(User.objects.create_user("alice", password="pw"))
    assert client.post("/api/workflows/rescan").status_code == 403
    assert not Template.objects.exists()
    client.force_login(User.objects.create_user("root", password="pw", is_staff=True))
    assert client.post("/api/workflows/rescan").json() == {"files": 5, "parsed": 5, "errors": 1, "removed": 0}
    assert client.get("/api/workflows/rescan").status_code == 405


def test_the_pages_rescan_button_is_for_staff(template_dir, client):
    client.force_login(User.objects.create_user("alice", password="pw"))
    assert 'action="/templates/rescan"' not in client.get("/templates/").content.decode()
    assert client.post("/templates/rescan").status_code == 403
    assert not Template.objects.exists()
    client.force_login(User.objects.create_user("root", password="pw", is_staff=True))
    assert 'action="/templates/rescan"' in client.get("/templates/").content.decode()
    page = client.post("/templates/rescan", follow=True).content.decode()
    assert "Rescanned: 5 workflow files: 5 parsed, 1 unreadable, 0 removed." in page
    assert "api_wan_video" in page


@pytest.mark.django_db(transaction=True)  # it closes the connection between rounds, as a long-lived process must
def test_scan_templates_every_keeps_rescanning_through_a_failed_round_until_stopped(template_dir, monkeypatch):
    scan = library.scan_directories
    rounds = []

    def scan_directories():
        rounds.append(1)
        if len(rounds) == 1:
            raise OperationalError("database is locked")
        return scan()

    def sleep(seconds):
        assert seconds == 0.5
        if len(rounds) == 2:
            raise KeyboardInterrupt  # what `start` sends to stop it

    monkeypatch.setattr(library, "scan_directories", scan_directories)
    monkeypatch.setattr(time, "sleep", sleep)
    call_command("scan_templates", "--every", "0.5")
    assert len(rounds) == 2 and Template.objects.count() == 5
