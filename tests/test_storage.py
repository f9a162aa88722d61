"""One answer to "is it installed": a preset's files found in an extra_model_paths.yaml folder or
a legacy folder name count everywhere, on every page and in every API that asks."""

import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from downloads.models import DownloadJob
from presets.refresh import refresh_from_file
from templates_scan import library
from tests.conftest import FIXTURES, UPSTREAM

pytestmark = pytest.mark.django_db

PRESET = "WAN_2_1_LIGHTWEIGHT_1_3B"  # diffusion_models, text_encoders and vae files; api_wan_video uses the last two


def only_in_legacy_folders(model_file, settings, tmp_path):
    model_file("unet/wan2.1_t2v_1.3b.safetensors")
    model_file("clip/umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    model_file("vae/wan_2.1_vae.safetensors")


def only_in_an_extra_path(model_file, settings, tmp_path):
    elsewhere = tmp_path / "big-disk"
    model_file("diffusion_models/wan2.1_t2v_1.3b.safetensors", root=elsewhere)
    model_file("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", root=elsewhere)
    model_file("vae/wan_2.1_vae.safetensors", root=elsewhere)
    extra = tmp_path / "extra_model_paths.yaml"
    extra.write_text(
        f"bigdisk:\n  base_path: {elsewhere}\n  diffusion_models: diffusion_models/\n"
        "  text_encoders: text_encoders/\n  vae: vae/\n"
    )
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(extra)


@pytest.mark.parametrize("place", [only_in_legacy_folders, only_in_an_extra_path])
def test_every_page_and_api_agree_a_preset_found_outside_the_model_root_is_installed(
    model_file, place, settings, tmp_path, user_client
):
    refresh_from_file(UPSTREAM / "presets.yaml")
    templates = tmp_path / "workflows"
    templates.mkdir()
    shutil.copy(FIXTURES / "workflows" / "api_wan_video.json", templates)
    settings.COMFYUI_TEMPLATE_DIRS = [templates]
    library.scan_directories()
    place(model_file, settings, tmp_path)

    assert user_client.get("/").status_code == 200  # the models page draws its cards from /api/presets/
    listed = {p["id"]: p for p in user_client.get("/api/presets/").json()["presets"]}
    assert listed[PRESET]["status"] == "installed"
    assert user_client.get(f"/api/presets/{PRESET}").json()["status"] == "installed"
    detail = user_client.get(f"/presets/{PRESET}/").content.decode()
    assert 'data-testid="preset-status">installed<' in detail and "not installed" not in detail

    wan = next(
        t for t in user_client.get("/api/workflows/templates").json()["templates"] if t["name"] == "api_wan_video"
    )
    missing = {m["path"] for m in wan["missing_models"]}
    assert "umt5_xxl_fp8_e4m3fn_scaled.safetensors" not in missing and "wan_2.1_vae.safetensors" not in missing
    page = user_client.get("/templates/").content.decode()
    assert "umt5_xxl_fp8_e4m3fn_scaled.safetensors" not in page and "wan_2.1_vae.safetensors" not in page

    response = user_client.post(f"/api/presets/{PRESET}/install")
    assert response.json()["status"] == "installed" and not DownloadJob.objects.exists()


def test_a_link_leaving_every_model_directory_does_not_count(model_file, settings, tmp_path, user_client):
    refresh_from_file(UPSTREAM / "presets.yaml")
    only_in_legacy_folders(model_file, settings, tmp_path)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x" * 10)
    (settings.MODEL_BASE_PATH / "unet" / "wan2.1_t2v_1.3b.safetensors").unlink()
    (settings.MODEL_BASE_PATH / "unet" / "wan2.1_t2v_1.3b.safetensors").symlink_to(outside)
    assert user_client.get(f"/api/presets/{PRESET}").json()["status"] != "installed"


def test_a_broken_extra_model_paths_file_is_a_clear_503_on_pages_and_api_not_a_crash(settings, tmp_path, user_client):
    broken = tmp_path / "extra_model_paths.yaml"
    broken.write_text("bigdisk: [\n")
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(broken)

    for path in ("/api/presets/", "/api/workflows/templates"):
        answer = user_client.get(path)
        assert answer.status_code == 503
        assert "extra_model_paths.yaml cannot be read" in answer.json()["error"]
        assert str(tmp_path) not in answer.json()["error"]
    answer = user_client.get("/templates/")  # the models page draws its cards from the API above
    assert answer.status_code == 503 and b"extra_model_paths.yaml cannot be read" in answer.content


def test_manage_py_commands_refuse_a_broken_extra_model_paths_file_naming_it(settings, tmp_path):
    broken = tmp_path / "extra_model_paths.yaml"
    broken.write_text("bigdisk: [\n")
    settings.COMFYUI_EXTRA_MODEL_PATHS = str(broken)
    with pytest.raises(SystemCheckError, match=r"presets.E001.*extra_model_paths.yaml: invalid YAML"):
        call_command("check")
