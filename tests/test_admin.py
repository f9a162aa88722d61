"""Catalogue curation through the real Django admin, as a staff user."""

import pytest
from django.contrib.auth.models import Permission, User

from downloads import queue
from downloads.models import DownloadJob, JobFile, State
from presets.catalogue import parse_catalogue
from presets.models import Preset
from presets.refresh import refresh_from_file
from storage import part_path
from tests.conftest import UPSTREAM

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/presets/preset/"


@pytest.fixture
def catalogue():
    refresh_from_file(UPSTREAM / "presets.yaml")


@pytest.fixture
def staff(client):
    user = User.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="presets"))
    client.force_login(user)
    return client


def test_changelist_lists_presets_with_refresh_and_export_buttons(staff, catalogue):
    page = staff.get(CHANGELIST).content.decode()
    assert "LTX_VIDEO_T2V" in page
    assert "Refresh from upstream" in page and "Export presets.yaml" in page
    assert "Catalogue version 1.5.0" in page


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ({"q": "hunyuan"}, "HUNYUAN_T2V_720P", "LTX_VIDEO_T2V"),
        ({"category__name__exact": "Audio Generation"}, "Audio", "LTX_VIDEO_T2V"),
        ({"type": "video"}, "LTX_VIDEO_T2V", "SD1_5_TEXT_TO_IMAGE_BASIC"),
        ({"source": "local"}, "0 presets", "LTX_VIDEO_T2V"),
        ({"installed": "yes"}, "UPSCALE_MODELS", "LTX_VIDEO_T2V"),
        ({"installed": "no"}, "LTX_VIDEO_T2V", ">UPSCALE_MODELS<"),
        ({"retired": "yes"}, "0 presets", "LTX_VIDEO_T2V"),
    ],
)
def test_changelist_search_and_filters(staff, settings, catalogue, query, present, absent):
    for file in Preset.objects.get(pk="UPSCALE_MODELS").files.all():
        (settings.MODEL_BASE_PATH / file.path).parent.mkdir(parents=True, exist_ok=True)
        (settings.MODEL_BASE_PATH / file.path).write_bytes(b"x")
    page = staff.get(CHANGELIST, query).content.decode()
    assert present in page
    assert absent not in page


def test_editing_a_preset_makes_it_locally_curated_and_survives_refresh(staff, catalogue):
    page = staff.get(f"{CHANGELIST}LTX_VIDEO_T2V/change/")
    assert page.status_code == 200
    assert "ltx-video-2b-v0.9.5.safetensors" in page.content.decode()
    preset = Preset.objects.get(pk="LTX_VIDEO_T2V")
    files = list(preset.files.all())
    form = {
        "name": "LTX tuned by us",
        "category": preset.category_id,
        "type": preset.type,
        "description": preset.description,
        "use_case": preset.use_case,
        "tags": "ltx, tuned by us",
        "download_size": preset.download_size,
        "source": "upstream",
        "position": preset.position,
        "files-TOTAL_FORMS": len(files),
        "files-INITIAL_FORMS": len(files),
        "files-MIN_NUM_FORMS": 0,
        "files-MAX_NUM_FORMS": 1000,
    }
    for index, file in enumerate(files):
        form.update(
            {
                f"files-{index}-id": file.pk,
                f"files-{index}-preset": preset.pk,
                f"files-{index}-position": file.position,
                f"files-{index}-path": file.path,
                f"files-{index}-url": file.url,
                f"files-{index}-size": file.size,
                f"files-{index}-exact_bytes": "",
                f"files-{index}-sha256": "",
            }
        )
    response = staff.post(f"{CHANGELIST}LTX_VIDEO_T2V/change/", form)
    assert response.status_code == 302, [
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset],
    ]
    preset.refresh_from_db()
    assert preset.name == "LTX tuned by us" and preset.source == Preset.LOCAL
    assert preset.tags == ["ltx", "tuned by us"]
    assert 'value="ltx, tuned by us"' in staff.get(f"{CHANGELIST}LTX_VIDEO_T2V/change/").content.decode()
    result = refresh_from_file(UPSTREAM / "presets.yaml")
    assert "LTX_VIDEO_T2V" in result.kept_local
    assert Preset.objects.get(pk="LTX_VIDEO_T2V").name == "LTX tuned by us"


def test_admin_refuses_an_unsafe_file_path(staff, catalogue):
    form = add_form(**{"files-0-path": "../../etc/passwd", "files-0-url": "file:///etc/shadow"})
    page = staff.post(f"{CHANGELIST}add/", form).content.decode()
    assert "Path must not contain &#x27;..&#x27;" in page
    assert "URL must be an http:// or https:// URL" in page
    assert not Preset.objects.filter(pk="MINE").exists()


def test_refresh_button_refreshes_from_the_configured_url(staff, settings, catalogue_server):
    catalogue_server.body = (UPSTREAM / "presets-8e4c5f3.yaml").read_bytes()
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    response = staff.post(f"{CHANGELIST}refresh/", follow=True)
    assert "Catalogue refreshed: version 1.2.0: 55 added" in response.content.decode()
    assert staff.get(f"{CHANGELIST}refresh/").status_code == 405


def test_refresh_button_reports_an_invalid_catalogue(staff, settings, catalogue, catalogue_server):
    catalogue_server.body = b"presets: {X: 1}"
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    page = staff.post(f"{CHANGELIST}refresh/", follow=True).content.decode()
    assert "The new catalogue is invalid; nothing changed" in page
    assert "preset &#x27;X&#x27;: must be a mapping" in page
    assert Preset.objects.count() == 56


def test_export_view_and_action_write_upstream_yaml(staff, catalogue):
    exported = staff.get(f"{CHANGELIST}export/")
    assert exported["Content-Disposition"] == 'attachment; filename="presets.yaml"'
    assert parse_catalogue(exported.content) == parse_catalogue((UPSTREAM / "presets.yaml").read_bytes())
    selected = staff.post(
        CHANGELIST, {"action": "export_selected", "_selected_action": ["LTX_VIDEO_T2V", "UPSCALE_MODELS"]}
    )
    assert set(parse_catalogue(selected.content)["presets"]) == {"LTX_VIDEO_T2V", "UPSCALE_MODELS"}


def test_hand_back_to_upstream_action(staff, catalogue):
    Preset.objects.filter(pk="LTX_VIDEO_T2V").update(source=Preset.LOCAL, name="ours")
    staff.post(CHANGELIST, {"action": "hand_back_to_upstream", "_selected_action": ["LTX_VIDEO_T2V"]})
    result = refresh_from_file(UPSTREAM / "presets.yaml")
    assert "LTX_VIDEO_T2V" in result.changed
    assert Preset.objects.get(pk="LTX_VIDEO_T2V").name == "LTX-Video Text to Video"


def test_non_staff_cannot_reach_the_admin(client, catalogue):
    User.objects.create_user("user", password="pw")
    client.login(username="user", password="pw")
    assert client.get(CHANGELIST).status_code == 302
    assert client.post(f"{CHANGELIST}refresh/").status_code == 302


def add_form(**overrides):
    """The admin's add form for a one-file preset, as a browser posts it."""
    form = {
        "id": "MINE",
        "name": "Mine",
        "category": "Image Generation",
        "type": "image",
        "tags": "",
        "download_size": "1GB",
        "source": "local",
        "position": 0,
        "files-TOTAL_FORMS": 1,
        "files-INITIAL_FORMS": 0,
        "files-MIN_NUM_FORMS": 0,
        "files-MAX_NUM_FORMS": 1000,
        "files-0-position": 0,
        "files-0-path": "checkpoints/mine.safetensors",
        "files-0-url": "https://example.org/mine.safetensors",
        "files-0-size": "1GB",
    }
    form.update(overrides)
    return form


def form_errors(response):
    """Every error of the admin form and its file rows, as {field: [messages]}."""
    errors = {name: list(messages) for name, messages in response.context["adminform"].form.errors.items()}
    for formset in response.context["inline_admin_formsets"]:
        for form in formset.formset:
            for name, messages in form.errors.items():
                errors.setdefault(f"files-{name}", []).extend(messages)
    return errors


def test_admin_refuses_a_file_name_longer_than_the_file_system_allows(staff, catalogue):
    response = staff.post(
        f"{CHANGELIST}add/", add_form(**{"files-0-path": "checkpoints/" + "é" * 130 + ".safetensors"})
    )
    assert response.status_code == 200
    assert form_errors(response) == {
        "files-path": [
            "Path has a file name of 272 bytes in UTF-8; at most 250 bytes are allowed "
            "(the file system's 255, less the '.part' of a download under way)."
        ]
    }
    assert not Preset.objects.filter(pk="MINE").exists()


def test_admin_refuses_a_folder_named_like_a_partial_download(staff, catalogue):
    response = staff.post(f"{CHANGELIST}add/", add_form(**{"files-0-path": "checkpoints/x.part/y.bin"}))
    assert "name ending in '.part'" in form_errors(response)["files-path"][0]


@pytest.mark.parametrize("field", ["download_size", "files-0-size"])
def test_a_size_too_large_for_the_database_is_a_form_error_on_its_field(staff, catalogue, field):
    response = staff.post(f"{CHANGELIST}add/", add_form(**{field: "9999999TB"}))
    assert response.status_code == 200
    errors = form_errors(response)
    assert list(errors) == [field.replace("-0", "")]
    assert "'9999999TB' is too large: at most 8388607TB" in errors[field.replace("-0", "")][0]


@pytest.mark.parametrize("preset_id", ["ID/slash", "..", "ID?q#h", "-dash"])
def test_admin_refuses_the_ids_the_catalogue_format_refuses(staff, catalogue, preset_id):
    response = staff.post(f"{CHANGELIST}add/", add_form(id=preset_id))
    assert response.status_code == 200
    assert "The id must start with a letter or digit" in form_errors(response)["id"][0]
    assert not Preset.objects.filter(pk=preset_id).exists()


def test_what_the_admin_accepts_its_own_export_loads(staff, catalogue):
    response = staff.post(f"{CHANGELIST}add/", add_form(id="MINE.v2_b-1", tags="lora, team"))
    assert response.status_code == 302
    exported = parse_catalogue(staff.get(f"{CHANGELIST}export/").content)
    assert exported["presets"]["MINE.v2_b-1"]["tags"] == ["lora", "team"]


def test_a_files_optional_flag_is_a_plain_checkbox(staff, catalogue):
    page = staff.get(f"{CHANGELIST}add/").content.decode()
    assert 'type="checkbox" name="files-__prefix__-optional"' in page
    staff.post(f"{CHANGELIST}add/", add_form(**{"files-0-optional": "on"}))
    assert Preset.objects.get(pk="MINE").files.get().optional is True


def test_deleting_a_preset_deletes_its_partial_download_unless_another_job_may_resume_it(
    admin_client, catalogue, settings, django_capture_on_commit_callbacks
):
    doomed, sharing = Preset.objects.get(pk="LTX_VIDEO_T2V"), Preset.objects.get(pk="UPSCALE_MODELS")
    shared = sharing.files.first()
    doomed.files.create(position=99, path=shared.path, url=shared.url, size=shared.size)
    parts = [part_path(settings.MODEL_BASE_PATH / f.path) for f in doomed.files.all()]
    for part in parts:
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"partial")
    job, _ = queue.install(doomed)
    DownloadJob.objects.filter(pk=job.pk).update(state=State.FAILED)  # its history goes with it
    queue.install(sharing)  # queued: it will resume the shared file's .part

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{CHANGELIST}LTX_VIDEO_T2V/delete/", {"post": "yes"})

    assert response.status_code == 302 and not Preset.objects.filter(pk="LTX_VIDEO_T2V").exists()
    assert [part.exists() for part in parts] == [False] * (len(parts) - 1) + [True]


@pytest.mark.django_db(transaction=True)
def test_presets_deleted_from_the_list_take_their_partial_downloads_with_them(admin_client, catalogue, settings):
    """The list's bulk delete runs outside any transaction of the admin's: the .part files must
    still wait until the presets and their job history are gone, or that history would keep them."""
    doomed = Preset.objects.get(pk="LTX_VIDEO_T2V")
    job = DownloadJob.objects.create(preset=doomed, state=State.FAILED)
    parts = []
    for position, file in enumerate(doomed.files.all()):
        JobFile.objects.create(job=job, position=position, path=file.path, url=file.url, state=State.FAILED)
        parts.append(part_path(settings.MODEL_BASE_PATH / file.path))
        parts[-1].parent.mkdir(parents=True, exist_ok=True)
        parts[-1].write_bytes(b"partial")

    admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ["LTX_VIDEO_T2V"], "post": "yes"})

    assert not Preset.objects.filter(pk="LTX_VIDEO_T2V").exists()
    assert parts and not any(part.exists() for part in parts)
