"""The catalogue's JSON API, as the models page and scripts use it."""

import pytest
from django.contrib.auth.models import User

from downloads import queue
from downloads.models import DownloadJob
from presets.models import Preset, PresetFile
from presets.refresh import refresh_from_file
from tests.conftest import UPSTREAM

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    refresh_from_file(UPSTREAM / "presets.yaml")


def test_list_returns_every_preset_in_one_response(client, catalogue):
    data = client.get("/api/presets/").json()
    assert data["total"] == 56 == len(data["presets"])
    first = data["presets"][0]
    for field in ("id", "name", "description", "download_size", "category", "type", "installed", "tags", "files"):
        assert field in first
    assert first["id"] == "LTX_VIDEO_T2V"
    assert first["files"][0] == {
        "path": "checkpoints/ltx-video-2b-v0.9.5.safetensors",
        "url": "https://huggingface.co/Lightricks/LTX-Video/resolve/main/ltx-video-2b-v0.9.5.safetensors",
        "size": "4.8GB",
        "size_bytes": int(4.8 * 1024**3),
        "exact_bytes": None,
        "sha256": None,
        "optional": False,
        "installed": False,
        "corrupt": False,
        "link_status": None,  # not checked yet
    }


def test_list_filters_by_category_type_and_search(client, catalogue):
    audio = client.get("/api/presets/", {"category": "Audio Generation"}).json()
    assert audio["total"] > 0 and all(p["category"] == "Audio Generation" for p in audio["presets"])
    video = client.get("/api/presets/", {"type": "video"}).json()
    assert video["total"] > 0 and all(p["type"] == "video" for p in video["presets"])
    ltx = client.get("/api/presets/", {"search": "LTX"}).json()
    assert {p["id"] for p in ltx["presets"]} >= {"LTX_VIDEO_T2V", "LTX_VIDEO_I2V"}
    by_tag = client.get("/api/presets/", {"search": "text-to-video"}).json()
    assert all("text-to-video" in p["tags"] or "text-to-video" in p["description"].lower() for p in by_tag["presets"])
    assert client.get("/api/presets/", {"search": "no such thing anywhere"}).json() == {"presets": [], "total": 0}


def test_installed_means_every_required_file_is_on_disk(model_file, client, settings, catalogue):
    preset = Preset.objects.get(pk="LTX_VIDEO_T2V")
    files = list(preset.files.all())
    for file in files[:-1]:
        model_file(file.path, 10)
    assert client.get("/api/presets/LTX_VIDEO_T2V").json()["installed"] is False
    model_file(files[-1].path, 10)
    data = client.get("/api/presets/LTX_VIDEO_T2V").json()
    assert data["installed"] is True
    assert all(f["installed"] for f in data["files"])
    installed = client.get("/api/presets/", {"installed": "true"}).json()
    assert "LTX_VIDEO_T2V" in {p["id"] for p in installed["presets"]}
    missing = client.get("/api/presets/", {"installed": "false"}).json()
    assert installed["total"] + missing["total"] == 56


def test_optional_files_are_not_needed_to_be_installed(model_file, client, settings, catalogue):
    preset = Preset.objects.get(pk="LTX_VIDEO_T2V")
    files = list(preset.files.all())
    files[-1].optional = True
    files[-1].save()
    for file in files[:-1]:
        model_file(file.path, 10)
    assert client.get("/api/presets/LTX_VIDEO_T2V").json()["installed"] is True


def test_exact_size_decides_when_known_never_the_upstream_estimate(model_file, client, settings, catalogue):
    preset = Preset.objects.get(pk="UPSCALE_MODELS")
    for file in preset.files.all():
        model_file(file.path, 100)
    assert client.get("/api/presets/UPSCALE_MODELS").json()["installed"] is True
    PresetFile.objects.filter(preset=preset).update(exact_bytes=101)
    assert client.get("/api/presets/UPSCALE_MODELS").json()["installed"] is False
    PresetFile.objects.filter(preset=preset).update(exact_bytes=100)
    assert client.get("/api/presets/UPSCALE_MODELS").json()["installed"] is True


def test_a_partial_download_or_a_directory_is_not_installed(model_file, client, settings, catalogue):
    file = Preset.objects.get(pk="UPSCALE_MODELS").files.first()
    model_file(file.path + ".part", 100)
    (settings.MODEL_BASE_PATH / file.path).mkdir(parents=True)
    assert client.get("/api/presets/UPSCALE_MODELS").json()["files"][0]["installed"] is False


def test_unknown_preset_is_404(client, catalogue):
    response = client.get("/api/presets/NOPE")
    assert response.status_code == 404
    assert response.json() == {"error": "preset NOPE not found"}


def test_categories_list_with_counts(client, catalogue):
    data = client.get("/api/presets/categories").json()
    assert data["total"] == 3
    assert sum(c["count"] for c in data["categories"]) == 56
    assert {c["type"] for c in data["categories"]} == {"video", "image", "audio"}


def test_refresh_endpoint_is_staff_only(client, settings, tmp_path):
    settings.PRESETS_REFRESH_URL = "http://127.0.0.1:9/unreachable.yaml"
    assert client.post("/api/presets/refresh").status_code == 401
    User.objects.create_user("user", password="pw")
    client.login(username="user", password="pw")
    assert client.post("/api/presets/refresh").status_code == 403
    assert client.get("/api/presets/refresh").status_code == 405


def test_refresh_endpoint_for_staff_reports_the_diff(client, admin_user, settings, catalogue_server):
    catalogue_server.body = (UPSTREAM / "presets.yaml").read_bytes()
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    client.force_login(admin_user)
    data = client.post("/api/presets/refresh", {"url": "http://evil.example/"}).json()
    assert len(data["added"]) == 56 and data["status"] == "ok"
    assert len(catalogue_server.requests) == 1
    catalogue_server.body = b"presets: ["
    response = client.post("/api/presets/refresh")
    assert response.status_code == 422
    assert "invalid YAML" in response.json()["errors"][0]
    catalogue_server.status = 503
    response = client.post("/api/presets/refresh")
    assert response.status_code == 502 and "HTTP 503" in response.json()["error"]
    assert Preset.objects.count() == 56


def install_everything(model_file, preset_id):
    for file in Preset.objects.get(pk=preset_id).files.all():
        model_file(file.path, 10)


def test_installing_an_installed_preset_queues_nothing(model_file, client, settings, catalogue):

    install_everything(model_file, "UPSCALE_MODELS")
    client.force_login(User.objects.create_user("alice", password="pw"))
    response = client.post("/api/presets/UPSCALE_MODELS/install")
    assert response.status_code == 200
    assert response.json() == {"preset_id": "UPSCALE_MODELS", "job_id": None, "status": "installed", "created": False}
    assert not DownloadJob.objects.exists()
    assert client.get("/api/presets/UPSCALE_MODELS").json()["status"] == "installed"


def test_force_installing_an_installed_preset_queues_it(model_file, client, settings, catalogue):
    install_everything(model_file, "UPSCALE_MODELS")
    client.force_login(User.objects.create_user("alice", password="pw", is_staff=True))
    response = client.post("/api/presets/UPSCALE_MODELS/install?force=true")
    assert response.status_code == 202 and response.json()["status"] == "queued"


def test_install_preset_command_says_an_installed_preset_is_installed(model_file, settings, catalogue, capsys):
    from django.core.management import call_command

    install_everything(model_file, "UPSCALE_MODELS")
    call_command("install_preset", "UPSCALE_MODELS", "--wait")
    assert capsys.readouterr().out == (
        "UPSCALE_MODELS is already installed; nothing to download (--force downloads it again)\n"
    )
    assert not DownloadJob.objects.exists()


@pytest.fixture
def alice(client):
    user = User.objects.create_user("alice", password="pw")
    client.force_login(user)
    return user


def failed_job_with_a_part(model_file, preset_id, user, size=3000):
    """A failed download of `preset_id` asked for by `user`, `size` bytes of its first file in a .part."""

    job, _ = queue.install(Preset.objects.get(pk=preset_id), user=user)
    DownloadJob.objects.filter(pk=job.pk).update(state="failed", error="HTTP 503 from example.org")
    return model_file(job.files.first().path + ".part", size)


def test_a_failed_card_tells_how_much_was_downloaded_and_who_may_delete_it(
    model_file, client, settings, catalogue, alice
):
    failed_job_with_a_part(model_file, "UPSCALE_MODELS", alice)
    job = client.get("/api/presets/UPSCALE_MODELS").json()["job"]
    assert job["state"] == "failed" and job["partial_bytes"] == 3000 and job["can_delete_partial"] is True
    client.force_login(User.objects.create_user("bob", password="pw"))
    listed = {p["id"]: p for p in client.get("/api/presets/").json()["presets"]}
    assert listed["UPSCALE_MODELS"]["job"]["can_delete_partial"] is False


def test_cancelling_a_failed_job_dismisses_it_and_keeps_its_part(model_file, client, settings, catalogue, alice):
    part = failed_job_with_a_part(model_file, "UPSCALE_MODELS", alice)
    response = client.post("/api/presets/UPSCALE_MODELS/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert part.stat().st_size == 3000
    preset = client.get("/api/presets/UPSCALE_MODELS").json()
    assert preset["status"] == "available" and preset["job"]["partial_bytes"] == 3000
    assert client.post("/api/presets/UPSCALE_MODELS/cancel").status_code == 404


def test_dismissing_a_failed_job_can_delete_its_part(model_file, client, settings, catalogue, alice):
    part = failed_job_with_a_part(model_file, "UPSCALE_MODELS", alice)
    assert client.post("/api/presets/UPSCALE_MODELS/cancel?keep_partial=false").status_code == 200
    assert not part.exists()
    assert client.get("/api/presets/UPSCALE_MODELS").json()["status"] == "available"


def test_a_refused_queue_action_says_why_in_words_naming_the_preset(client, catalogue, alice):
    assert client.post("/api/presets/UPSCALE_MODELS/install").status_code == 202
    assert client.post("/api/presets/UPSCALE_MODELS/pause").status_code == 200
    again = client.post("/api/presets/UPSCALE_MODELS/pause")
    assert again.status_code == 409
    assert again.json()["error"] == "Video Upscale Models is already paused"
    assert client.post("/api/presets/UPSCALE_MODELS/resume").status_code == 200
    resume = client.post("/api/presets/UPSCALE_MODELS/resume")
    assert resume.json()["error"] == "Video Upscale Models is already queued"
    retry = client.post("/api/presets/UPSCALE_MODELS/retry")
    assert retry.json()["error"] == "Video Upscale Models is already in the queue"

    DownloadJob.objects.filter(preset_id="UPSCALE_MODELS").update(state="downloading")
    resume = client.post("/api/presets/UPSCALE_MODELS/resume")
    assert resume.json()["error"] == "Video Upscale Models is downloading; only a paused download can be resumed"


def test_a_refresh_from_the_command_line_prints_its_summary_once(tmp_path):
    """start and refresh_presets print the summary themselves; the refresh must not log it again."""
    import os
    import subprocess
    import sys

    from tests.liveapp import ROOT

    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_BASE_PATH": str(tmp_path / "models"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_LEVEL": "INFO",
    }
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    manage("migrate", "--noinput")
    output = manage("refresh_presets", "--file", str(UPSTREAM / "presets.yaml"))
    assert output.count("56 added") == 1


def test_the_preset_page_lists_each_file_for_logged_in_users(model_file, client, settings, catalogue, alice):
    preset = Preset.objects.get(pk="LTX_VIDEO_T2V")
    first = preset.files.first()
    model_file(first.path, 10)
    page = client.get("/presets/LTX_VIDEO_T2V/").content.decode()
    assert "LTX-Video Text to Video" in page
    folder, name = first.path.rsplit("/", 1)
    assert f"<code>{folder}</code>" in page and f"<code>{name}</code>" in page and first.size in page
    assert page.count(">installed<") == 1 and page.count("<td>not installed</td>") == preset.files.count() - 1
    assert client.get("/presets/NOPE/").status_code == 404
    client.logout()
    assert client.get("/presets/LTX_VIDEO_T2V/").status_code == 302
