"""Adding a preset from URLs through the real admin, its sources served by the local fault server."""

import posixpath

import pytest
import yaml
from django.contrib.auth.models import Permission, User

from downloads.curation import guess_folder, hub_parts, resolve_url
from presets.models import Category, Preset
from tests.conftest import UPSTREAM
from tests.faultserver import Fault

PAGE = "/admin/presets/preset/add-from-urls/"
HUB = ("huggingface.co",)


@pytest.mark.parametrize(
    ("name", "repo", "folder", "expected"),
    [
        ("wan2.2_vae.safetensors", "Comfy-Org/Wan_2.2_ComfyUI_Repackaged", "split_files/vae", "vae"),
        ("wan22_lightning.safetensors", "Wailicv/Wan2.2", "loras", "loras"),
        ("model-00001-of-00002.safetensors", "PixArt-alpha/PixArt-XL-2-1024-MS", "text_encoder", "text_encoders"),
        ("model.safetensors", "stabilityai/stable-diffusion-2-1", "image_encoder", "clip_vision"),
        ("ae.safetensors", "black-forest-labs/FLUX.1-dev", "", "vae"),
        ("sdxl_vae_fp16_fix.safetensors", "stabilityai/sdxl-vae-fp16-fix", "", "vae"),
        ("clip_vision_h.safetensors", "", "", "clip_vision"),
        ("llava_llama3_vision.safetensors", "", "", "clip_vision"),
        ("t5xxl_fp16.safetensors", "Comfy-Org/sd3-t5xxlfp16", "", "text_encoders"),
        ("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "", "", "text_encoders"),
        ("clip_l.safetensors", "", "", "text_encoders"),
        ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "", "", "text_encoders"),
        ("character_lora.safetensors", "", "", "loras"),
        ("control_v11p_sd15_canny.pth", "", "", "controlnet"),
        ("4x_NMKD-Siax_xl.pth", "", "", "upscale_models"),
        ("RealESRGAN_x4plus.pth", "", "", "upscale_models"),
        ("wav2vec2_large_english_fp16.safetensors", "", "", "audio_encoders"),
        ("Wan2.2_I2V_14B_Q8_0.gguf", "", "", "diffusion_models"),
        ("flux1-dev.safetensors", "black-forest-labs/FLUX.1-dev", "", "diffusion_models"),
        ("diffusion_pytorch_model.safetensors", "Lightricks/LTXV", "transformers", "diffusion_models"),
        ("realisticVisionV60B1_v51VAE.safetensors", "SG161222/Realistic_Vision_V6.0_B1_noVAE", "", "checkpoints"),
        ("sd_xl_base_1.0.safetensors", "stabilityai/stable-diffusion-xl-base-1.0", "", "checkpoints"),
    ],
)
def test_the_model_folder_is_guessed_from_the_file_name_and_its_repo(name, repo, folder, expected):
    assert guess_folder(name, repo, folder) == expected


def test_the_folder_guess_agrees_with_the_upstream_curators_on_most_files():
    """Upstream's 183 files were placed by people: the guess should rarely need correcting."""
    catalogue = yaml.safe_load((UPSTREAM / "presets.yaml").read_text())
    files = {(f["path"], f["url"]) for preset in catalogue["presets"].values() for f in preset["files"]}
    agree = sum(
        guess_folder(posixpath.basename(path), *hub_parts(resolve_url(url, HUB), HUB)) == path.split("/")[0]
        for path, url in files
    )
    assert agree / len(files) >= 0.8, f"{agree} of {len(files)}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://huggingface.co/Comfy-Org/flux/blob/main/split_files/vae/ae.safetensors",
            "https://huggingface.co/Comfy-Org/flux/resolve/main/split_files/vae/ae.safetensors",
        ),
        (
            "https://huggingface.co/datasets/org/data/blob/v1.0/model%20a.bin?download=true",
            "https://huggingface.co/datasets/org/data/resolve/v1.0/model%20a.bin?download=true",
        ),
        (
            "https://huggingface.co/org/repo/resolve/main/blob/x.safetensors",
            "https://huggingface.co/org/repo/resolve/main/blob/x.safetensors",
        ),
        (
            "https://example.org/org/repo/blob/main/x.safetensors",
            "https://example.org/org/repo/blob/main/x.safetensors",
        ),
        ("https://huggingface.co/org/repo/blob/main", "https://huggingface.co/org/repo/blob/main"),
    ],
)
def test_only_hugging_face_blob_links_become_resolve_links(url, expected):
    assert resolve_url(url, HUB) == expected


# The admin, against the fault server: localhost answers as the hub, 127.0.0.1 as its CDN.


@pytest.fixture
def curator(client, settings):
    settings.HUGGINGFACE_HOSTS = ["localhost"]
    Category.objects.create(name="Image Generation", type="image")
    user = User.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="presets"))
    client.force_login(user)
    return client


@pytest.fixture
def sources(server):
    """URLs and what the proposal should make of each."""
    vae = server.add_hf_file("/org/flux/resolve/main/split_files/vae/flux_vae.safetensors", "/cdn/1", 12_345)
    lora = server.add_hf_file("/org/loras/resolve/main/style_lora.safetensors", "/cdn/2", 6_789)
    server.add_file("/api/download/42", 321)
    server.always("/api/download/42", Fault(headers={"Content-Disposition": 'attachment; filename="upscaler_4x.pth"'}))
    server.add_hf_file("/org/gated/resolve/main/gated.safetensors", "/cdn/3", 100, token="hf_secret")
    return {
        "resolve": server.url("/org/flux/resolve/main/split_files/vae/flux_vae.safetensors", host="localhost"),
        "blob": server.url("/org/loras/blob/main/style_lora.safetensors", host="localhost"),
        "named": server.url("/api/download/42"),
        "missing": server.url("/gone/model.safetensors"),
        "gated": server.url("/org/gated/resolve/main/gated.safetensors", host="localhost"),
        "vae": vae,
        "lora": lora,
    }


def propose(client, urls, preset_id="MY_FLUX"):
    return client.post(
        PAGE,
        {
            "step": "propose",
            "preset-id": preset_id,
            "preset-name": "My Flux",
            "preset-category": "Image Generation",
            "preset-type": "image",
            "urls": "\n".join(urls),
        },
    )


def confirm(client, proposal, **changes):
    """Post the proposal back as the admin would after reading it, with `changes` by field name."""
    data = {"step": "save"}
    for form in (proposal.context["start"], proposal.context["rows"].management_form, *proposal.context["rows"]):
        for field in form:
            value = field.value()
            if value is not None and value is not False:
                data[field.html_name] = value
    data.update(changes)
    return client.post(PAGE, data)


@pytest.mark.django_db
def test_the_preset_list_has_a_button_to_add_a_preset_from_urls(curator):
    assert PAGE in curator.get("/admin/presets/preset/").content.decode()
    page = curator.get(PAGE).content.decode()
    assert 'name="urls"' in page and 'name="preset-id"' in page and 'value="propose"' in page


@pytest.mark.django_db
def test_the_proposal_names_each_file_with_its_folder_size_and_sha256_and_saves_nothing(curator, sources):
    urls = [sources[k] for k in ("resolve", "blob", "named", "missing", "gated")] + ["ftp://example.org/x"]
    page = propose(curator, urls)
    assert page.status_code == 200
    rows = [form.initial for form in page.context["rows"]]
    assert [row["url"] for row in rows[:2]] == [sources["resolve"], sources["blob"].replace("/blob/", "/resolve/")]
    assert rows[0]["path"] == "vae/flux_vae.safetensors"
    assert (rows[0]["exact_bytes"], rows[0]["sha256"]) == (12_345, sources["vae"].sha256)
    assert rows[1]["path"] == "loras/style_lora.safetensors"
    assert (rows[1]["exact_bytes"], rows[1]["sha256"]) == (6_789, sources["lora"].sha256)
    assert rows[2]["path"] == "upscale_models/upscaler_4x.pth"
    assert (rows[2]["exact_bytes"], rows[2]["sha256"]) == (321, "")
    html = page.content.decode()
    assert "404" in rows[3]["problem"] and rows[3]["problem"] in html
    assert "HTTP 401" in rows[4]["problem"] and rows[4]["problem"] in html
    assert "must be an http:// or https:// URL" in rows[5]["problem"] and rows[5]["problem"] in html
    assert not Preset.objects.exists()


@pytest.mark.django_db
def test_a_blob_link_and_its_resolve_link_make_one_row(curator, sources):
    page = propose(curator, [sources["blob"], sources["blob"].replace("/blob/", "/resolve/")])
    assert len(page.context["rows"].forms) == 1


@pytest.mark.django_db
def test_a_source_that_does_not_answer_in_time_gets_its_error_and_the_others_stay(curator, sources, server, settings):
    settings.DOWNLOAD_READ_TIMEOUT = 0.5
    server.add_file("/slow/model.safetensors", 100)
    server.always("/slow/model.safetensors", Fault(delay=5))
    page = propose(curator, [server.url("/slow/model.safetensors"), sources["named"]])
    slow, named = (form.initial for form in page.context["rows"])
    assert "did not answer" in slow["problem"] and slow["problem"] in page.content.decode()
    assert named["path"] == "upscale_models/upscaler_4x.pth" and not named.get("problem")


@pytest.mark.django_db
def test_confirming_saves_the_preset_as_curated_locally_without_the_failed_urls(curator, sources):
    proposal = propose(curator, [sources[k] for k in ("resolve", "blob", "named", "missing")])
    saved = confirm(curator, proposal, **{"files-2-path": "upscale_models/4x_upscaler.pth"})
    assert saved.status_code == 302 and saved.url.endswith("/admin/presets/preset/MY_FLUX/change/")
    preset = Preset.objects.get(pk="MY_FLUX")
    assert (preset.name, preset.source, preset.category_id, preset.type) == (
        "My Flux",
        Preset.LOCAL,
        "Image Generation",
        "image",
    )
    files = [(f.path, f.url, f.exact_bytes, f.sha256) for f in preset.files.all()]
    assert files == [
        ("vae/flux_vae.safetensors", sources["resolve"], 12_345, sources["vae"].sha256),
        ("loras/style_lora.safetensors", sources["blob"].replace("/blob/", "/resolve/"), 6_789, sources["lora"].sha256),
        ("upscale_models/4x_upscaler.pth", sources["named"], 321, ""),
    ]
    assert preset.download_size == "19.0KB"  # 19,455 bytes


@pytest.mark.django_db
def test_a_proposed_row_is_checked_by_the_admins_rules_before_anything_is_saved(curator, sources):
    proposal = propose(curator, [sources["resolve"], sources["named"]])
    page = confirm(curator, proposal, **{"files-0-path": "../escape.safetensors", "files-1-sha256": "not hex"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "must not contain &#x27;..&#x27;" in html and "64 lowercase hex digits" in html
    assert not Preset.objects.exists()


@pytest.mark.django_db
def test_a_failed_url_cannot_be_saved_by_unticking_skip(curator, sources):
    proposal = propose(curator, [sources["resolve"], sources["missing"]])
    data = {"files-1-DELETE": ""}
    page = confirm(curator, proposal, **data)
    assert "This URL failed" in page.content.decode()
    assert not Preset.objects.exists()


@pytest.mark.django_db
def test_a_taken_preset_id_is_refused_before_any_url_is_asked(curator, sources, server):
    Preset.objects.create(id="MY_FLUX", name="Taken", category_id="Image Generation", type="image")
    page = propose(curator, [sources["resolve"]])
    assert "Preset with this Id already exists." in page.content.decode()
    assert page.context["step"] == "start" and not server.requests


@pytest.mark.django_db
def test_staff_without_the_right_to_add_presets_are_refused(client):
    client.force_login(User.objects.create_user("viewer", password="pw", is_staff=True))
    assert client.get(PAGE).status_code == 403
