"""Refreshing the catalogue into the database: all or nothing, careful with what users depend on."""

import pytest
import yaml
from django.core.management import CommandError, call_command

from downloads.models import DownloadJob, JobFile, State
from presets.catalogue import CatalogueError, parse_catalogue
from presets.models import CatalogueSource, Category, Preset, PresetFile
from presets.refresh import RefreshError, refresh_from_file, refresh_from_url
from tests.conftest import UPSTREAM, make_preset

pytestmark = pytest.mark.django_db

NEW = UPSTREAM / "presets.yaml"
OLD = UPSTREAM / "presets-8e4c5f3.yaml"


def install_on_disk(settings, preset_id):
    for file in Preset.objects.get(pk=preset_id).files.all():
        target = settings.MODEL_BASE_PATH / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")


def snapshot():
    return (
        sorted(Preset.objects.values_list("id", "name", "source", "retired_at")),
        sorted(PresetFile.objects.values_list("preset_id", "path", "url", "size")),
        sorted(Category.objects.values_list("name", "type")),
    )


def test_refresh_from_file_loads_the_whole_catalogue(settings):
    result = refresh_from_file(NEW)
    assert len(result.added) == 56
    assert Preset.objects.count() == 56
    assert PresetFile.objects.count() == 183
    assert Category.objects.count() == 3
    assert CatalogueSource.current().version == "1.5.0"
    assert settings.PRESETS_FILE.read_bytes() == NEW.read_bytes()
    ltx = Preset.objects.get(pk="LTX_VIDEO_T2V")
    assert ltx.approx_download_bytes == int(14.5 * 1024**3)
    assert ltx.source == Preset.UPSTREAM
    assert [f.path for f in ltx.files.all()][0] == "checkpoints/ltx-video-2b-v0.9.5.safetensors"


def test_refreshing_to_the_newer_upstream_reports_the_diff():
    refresh_from_file(OLD)
    result = refresh_from_file(NEW)
    old, new = parse_catalogue(OLD.read_bytes())["presets"], parse_catalogue(NEW.read_bytes())["presets"]
    assert sorted(result.added) == sorted(set(new) - set(old))
    assert sorted(result.removed) == sorted(set(old) - set(new))
    assert sorted(result.changed) == sorted(k for k in set(old) & set(new) if old[k] != new[k])
    assert sorted(result.unchanged) == sorted(k for k in set(old) & set(new) if old[k] == new[k])
    assert result.added and result.changed and result.unchanged
    assert Preset.objects.count() == 56 and PresetFile.objects.count() == 183


def test_refreshing_the_same_file_again_changes_nothing():
    refresh_from_file(NEW)
    result = refresh_from_file(NEW)
    assert len(result.unchanged) == 56
    assert not (result.added or result.changed or result.removed)


def test_invalid_catalogue_changes_nothing_and_keeps_the_previous_file(settings, tmp_path):
    refresh_from_file(OLD)
    before = snapshot()
    bad = tmp_path / "bad.yaml"
    bad.write_text(NEW.read_text().replace("url: https://huggingface.co/Lightricks", "url: file:///Lightricks", 1))
    with pytest.raises(CatalogueError) as error:
        refresh_from_file(bad)
    assert "preset 'LTX_VIDEO_T2V': files[0]: url" in error.value.errors[0]
    assert snapshot() == before
    assert settings.PRESETS_FILE.read_bytes() == OLD.read_bytes()


def test_refresh_keeps_a_backup_of_the_previous_file(settings):
    refresh_from_file(OLD)
    refresh_from_file(NEW)
    assert settings.PRESETS_FILE.read_bytes() == NEW.read_bytes()
    assert (settings.PRESETS_FILE.parent / "presets.yaml.bak").read_bytes() == OLD.read_bytes()


def test_locally_curated_presets_are_not_overwritten():
    refresh_from_file(OLD)
    Preset.objects.filter(pk="LTX_VIDEO_T2V").update(source=Preset.LOCAL, name="Our LTX")
    result = refresh_from_file(NEW)
    assert "LTX_VIDEO_T2V" in result.kept_local
    assert Preset.objects.get(pk="LTX_VIDEO_T2V").name == "Our LTX"


def test_local_presets_missing_upstream_are_kept(tmp_path):
    refresh_from_file(NEW)
    make_preset("OUR_OWN", [{"path": "loras/ours.safetensors", "size": "1GB"}], name="Ours")
    result = refresh_from_file(NEW)
    assert "OUR_OWN" not in result.removed
    assert Preset.objects.filter(pk="OUR_OWN", retired_at__isnull=True).exists()


def catalogue_without(tmp_path, preset_ids):
    data = yaml.safe_load(NEW.read_text())
    for preset_id in preset_ids:
        del data["presets"][preset_id]
    trimmed = tmp_path / "trimmed.yaml"
    trimmed.write_text(yaml.safe_dump(data, sort_keys=False))
    return trimmed


DROPPED = ["LTX_VIDEO_T2V", "LTX_VIDEO_I2V", "LTX_VIDEO_MULTI_FRAME", "HUNYUAN_T2V_720P"]


def test_removed_presets_are_retired_while_installed_or_queued(settings, tmp_path):
    refresh_from_file(NEW)
    installed, queued, paused, unused = DROPPED
    install_on_disk(settings, installed)
    DownloadJob.objects.create(preset_id=queued, state=State.QUEUED)
    DownloadJob.objects.create(preset_id=paused, state=State.PAUSED)
    DownloadJob.objects.create(preset_id=unused, state=State.FAILED)
    result = refresh_from_file(catalogue_without(tmp_path, DROPPED))
    assert sorted(result.retired) == sorted([installed, queued, paused])
    assert result.removed == [unused]
    assert all(Preset.objects.get(pk=p).retired for p in (installed, queued, paused))
    assert not Preset.objects.filter(pk=unused).exists()


def test_a_retired_preset_that_comes_back_is_live_again(settings, tmp_path):
    refresh_from_file(NEW)
    install_on_disk(settings, DROPPED[0])
    refresh_from_file(catalogue_without(tmp_path, DROPPED[:1]))
    assert Preset.objects.get(pk=DROPPED[0]).retired
    result = refresh_from_file(NEW)
    assert DROPPED[0] in result.changed
    assert not Preset.objects.get(pk=DROPPED[0]).retired


def test_a_running_download_keeps_the_file_list_it_started_with(tmp_path):
    refresh_from_file(OLD)
    changed = "WAN_2_1_T2V_14B"
    preset = Preset.objects.get(pk=changed)
    job = DownloadJob.objects.create(preset=preset, state=State.DOWNLOADING)
    started_with = [(f.path, f.url) for f in preset.files.all()]
    for position, (path, url) in enumerate(started_with):
        JobFile.objects.create(job=job, position=position, path=path, url=url)
    edited = tmp_path / "edited.yaml"
    data = yaml.safe_load(OLD.read_text())
    data["presets"][changed]["files"] = data["presets"][changed]["files"][:1]
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    result = refresh_from_file(edited)
    assert changed in result.changed
    assert Preset.objects.get(pk=changed).files.count() == 1
    assert [(f.path, f.url) for f in job.files.all()] == started_with


def test_refresh_over_http_uses_the_etag(catalogue_server, settings):
    catalogue_server.body = OLD.read_bytes()
    first = refresh_from_url(catalogue_server.url)
    assert len(first.added) == 55
    assert CatalogueSource.current().etag.startswith('"')
    second = refresh_from_url(catalogue_server.url)
    assert second.not_modified
    assert catalogue_server.requests[1]["If-None-Match"] == CatalogueSource.current().etag
    catalogue_server.body = NEW.read_bytes()
    third = refresh_from_url(catalogue_server.url)
    assert third.added and third.changed and not third.not_modified
    assert CatalogueSource.current().version == "1.5.0"


def test_refresh_uses_the_configured_url(catalogue_server, settings):
    catalogue_server.body = NEW.read_bytes()
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    assert len(refresh_from_url().added) == 56
    assert CatalogueSource.current().url == catalogue_server.url


def test_http_errors_change_nothing(catalogue_server):
    refresh_from_file(OLD)
    before = snapshot()
    catalogue_server.status = 500
    with pytest.raises(RefreshError, match="HTTP 500"):
        refresh_from_url(catalogue_server.url)
    assert snapshot() == before


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(RefreshError, match="could not fetch"):
        refresh_from_url("http://127.0.0.1:9/presets.yaml")


def test_oversized_catalogue_is_refused(catalogue_server, settings):
    settings.PRESETS_MAX_BYTES = 1000
    catalogue_server.body = NEW.read_bytes()
    with pytest.raises(RefreshError, match="larger than the limit"):
        refresh_from_url(catalogue_server.url)
    assert not Preset.objects.exists()


def test_refresh_command_from_file_and_url(catalogue_server, capsys):
    call_command("refresh_presets", file=str(OLD))
    assert "55 added" in capsys.readouterr().out
    catalogue_server.body = NEW.read_bytes()
    call_command("refresh_presets", url=catalogue_server.url)
    out = capsys.readouterr().out
    assert "changed" in out and "added:" in out


def test_refresh_command_reports_invalid_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("presets: [")
    with pytest.raises(CommandError, match="invalid catalogue, nothing changed"):
        call_command("refresh_presets", file=str(bad))


def test_export_command_round_trips(tmp_path):
    refresh_from_file(NEW)
    out = tmp_path / "exported.yaml"
    call_command("export_presets", output=str(out))
    assert parse_catalogue(out.read_bytes()) == parse_catalogue(NEW.read_bytes())


def test_a_refresh_that_removes_a_preset_deletes_its_partial_download(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    refresh_from_file(NEW)
    removed = Preset.objects.get(pk=DROPPED[0])
    part = settings.MODEL_BASE_PATH / (removed.files.first().path + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"partial")
    DownloadJob.objects.create(preset=removed, state=State.CANCELLED)  # kept its .part, now history

    with django_capture_on_commit_callbacks(execute=True):
        result = refresh_from_file(catalogue_without(tmp_path, DROPPED[:1]))

    assert result.removed == [DROPPED[0]]
    assert not part.exists()


def test_a_size_too_large_for_the_database_is_refused_with_422_naming_the_field(
    client, admin_user, settings, catalogue_server
):
    data = yaml.safe_load(NEW.read_text())
    data["presets"]["LTX_VIDEO_T2V"]["files"][0]["size"] = "9999999TB"
    catalogue_server.body = yaml.safe_dump(data, sort_keys=False).encode()
    settings.PRESETS_REFRESH_URL = catalogue_server.url
    client.force_login(admin_user)

    response = client.post("/api/presets/refresh")

    assert response.status_code == 422
    assert response.json()["errors"] == [
        "preset 'LTX_VIDEO_T2V': files[0]: size: '9999999TB' is too large: at most 8388607TB"
    ]
    assert Preset.objects.count() == 0


def test_a_refresh_keeps_what_downloads_learned_of_a_file_while_its_url_stays(tmp_path):
    refresh_from_file(NEW)
    preset_id = "WAN_2_1_T2V_14B"
    first, second = Preset.objects.get(pk=preset_id).files.all()[:2]
    first.learn_from_source(123_456, "a" * 64)
    second.learn_from_source(654_321, "b" * 64)
    assert refresh_from_file(NEW).changed == []

    moved = tmp_path / "moved.yaml"
    data = yaml.safe_load(NEW.read_text())
    data["presets"][preset_id]["description"] = "Edited upstream"
    data["presets"][preset_id]["files"][1]["url"] += "?revision=2"
    moved.write_text(yaml.safe_dump(data, sort_keys=False))
    assert refresh_from_file(moved).changed == [preset_id]
    first, second = Preset.objects.get(pk=preset_id).files.all()[:2]
    assert (first.exact_bytes, first.sha256) == (123_456, "a" * 64)
    assert (second.exact_bytes, second.sha256) == (None, "")
