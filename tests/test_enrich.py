"""Curation from the source: enrich and link health, through the command, the real admin and the
models page JSON, against the local server answering like Hugging Face (no network mocks)."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from downloads import links, sources
from downloads.sources import Source
from presets.models import Preset, PresetFile
from tests.conftest import make_preset
from tests.faultserver import Fault

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

CHANGELIST = "/admin/presets/preset/"
TOKEN = "hf_enr1ch_t0ken"


@pytest.fixture
def hub(server, settings, monkeypatch):
    """localhost plays huggingface.co: it declares X-Linked-*, and HF_TOKEN is its token."""
    settings.HUGGINGFACE_HOSTS = ["localhost"]
    settings.DOWNLOAD_TOKENS = {}
    monkeypatch.setattr(sources, "KNOWN_SOURCES", (Source("hub", ("localhost",), "HF_TOKEN"),))
    return server


@pytest.fixture
def staff(client):
    user = User.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="presets"))
    client.force_login(user)
    return client


def hub_file(server, name, size, **hub):
    served = server.add_hf_file(f"/org/repo/resolve/main/{name}", f"/cdn/{name}", size, **hub)
    return served, server.url(f"/org/repo/resolve/main/{name}", host="localhost")


@pytest.fixture
def catalogue(hub):
    """One preset of each kind of file: on the hub, gated, gone, and on a server that declares
    only a length; plus a locally curated preset with a hand-typed sha256."""
    open_file, open_url = hub_file(hub, "open.safetensors", 70_001)
    _, gated_url = hub_file(hub, "gated.safetensors", 5_000, token=TOKEN)
    hub.add_file("/plain/vae.pt", 12_345)
    make_preset("OPEN", [{"path": "checkpoints/open.safetensors", "url": open_url, "size": "70KB"}], source="upstream")
    make_preset("GATED", [{"path": "checkpoints/gated.safetensors", "url": gated_url}], source="upstream")
    make_preset(
        "GONE",
        [
            {
                "path": "loras/gone.safetensors",
                "url": hub.url("/org/repo/resolve/main/gone.safetensors", host="localhost"),
            }
        ],
        source="upstream",
    )
    make_preset(
        "LOCAL",
        [{"path": "vae/vae.pt", "url": hub.url("/plain/vae.pt"), "sha256": "b" * 64, "size": "12KB"}],
        source="local",
    )
    return open_file


def file_of(preset_id):
    return PresetFile.objects.get(preset_id=preset_id)


def test_enrich_command_fills_what_the_sources_declare_and_reports_what_failed(catalogue, capsys):
    call_command("enrich_presets")

    out = capsys.readouterr().out
    assert out.splitlines()[0] == "2 filled, 0 the source could not tell, 2 failed"
    assert (file_of("OPEN").exact_bytes, file_of("OPEN").sha256) == (70_001, catalogue.sha256)
    assert "GATED: checkpoints/gated.safetensors — needs HF_TOKEN" in out
    assert "GONE: loras/gone.safetensors — not found on localhost (HTTP 404)" in out
    assert (file_of("GATED").exact_bytes, file_of("GATED").sha256) == (None, "")


def test_a_locally_curated_file_gets_only_the_exact_size_and_stays_curated(catalogue):
    before = Preset.objects.get(pk="LOCAL").updated_at

    call_command("enrich_presets", "LOCAL")

    local = file_of("LOCAL")
    assert (local.exact_bytes, local.sha256, local.size) == (12_345, "b" * 64, "12KB")
    assert Preset.objects.get(pk="LOCAL").source == Preset.LOCAL
    assert Preset.objects.get(pk="LOCAL").updated_at == before
    assert file_of("OPEN").exact_bytes is None  # only the presets named


def test_a_token_opens_a_gated_file_to_enrich(catalogue, settings):
    settings.DOWNLOAD_TOKENS = {"HF_TOKEN": TOKEN}

    call_command("enrich_presets", "GATED")

    assert (file_of("GATED").exact_bytes, file_of("GATED").link_status) == (5_000, "ok")


def test_a_file_already_exact_is_not_asked_again(catalogue, hub):
    call_command("enrich_presets", "OPEN")
    asked = len(hub.requests)

    call_command("enrich_presets", "OPEN")

    assert len(hub.requests) == asked


def test_a_slow_source_is_reported_as_timed_out(catalogue, hub, monkeypatch, capsys):
    monkeypatch.setattr(links, "DEADLINE", 0.5)
    hub.always("/plain/vae.pt", Fault(delay=5))

    call_command("enrich_presets", "LOCAL")

    assert "LOCAL: vae/vae.pt — 127.0.0.1 did not answer" in capsys.readouterr().out
    assert file_of("LOCAL").link_status == "timeout"


def test_enrich_command_refuses_an_unknown_preset(catalogue):
    with pytest.raises(CommandError, match="no such preset: NOPE"):
        call_command("enrich_presets", "OPEN", "NOPE")


def test_admin_action_enriches_the_selected_presets_and_says_what_happened(catalogue, staff):
    response = staff.post(CHANGELIST, {"action": "enrich_selected", "_selected_action": ["OPEN", "GONE"]}, follow=True)

    shown = [str(m) for m in response.context["messages"]]
    assert shown[0] == "Enriched from the sources: 1 filled, 0 the source could not tell, 1 failed."
    assert "GONE: loras/gone.safetensors — not found on localhost (HTTP 404)" in shown
    assert file_of("OPEN").exact_bytes == 70_001
    assert file_of("GATED").link_status == ""  # not selected, not asked


def test_admin_button_enriches_every_preset(catalogue, staff):
    page = staff.get(CHANGELIST).content.decode()
    assert "Fill in sizes and sha256" in page and "Check all links" in page

    response = staff.post(CHANGELIST + "enrich/", follow=True)

    assert "2 filled" in str(list(response.context["messages"])[0])
    assert file_of("LOCAL").exact_bytes == 12_345


def test_admin_button_needs_change_permission(catalogue, client):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_preset"))
    client.force_login(viewer)

    assert client.post(CHANGELIST + "enrich/").status_code == 403
    assert file_of("OPEN").exact_bytes is None


def test_link_check_marks_gone_and_gated_presets_on_the_models_page(catalogue, user_client):
    assert links.check_batch(started=links.timezone.now()) == 0

    presets = {p["id"]: p for p in user_client.get("/api/presets/").json()["presets"]}
    assert presets["GONE"]["link_problem"] == "gone.safetensors: not found on localhost (HTTP 404)"
    assert presets["GATED"]["link_problem"] == "gated.safetensors: needs HF_TOKEN"
    assert presets["OPEN"]["link_problem"] is None
    assert presets["OPEN"]["files"][0]["link_status"] == "ok"
    assert file_of("GONE").link_checked_at is not None


def test_an_installed_file_is_no_link_problem(catalogue, user_client, model_file):
    links.check_batch(started=links.timezone.now())
    model_file("loras/gone.safetensors", 10)

    assert user_client.get("/api/presets/GONE").json()["link_problem"] is None


def test_link_check_goes_in_bounded_batches_until_every_file_is_checked(catalogue, hub):
    started = links.timezone.now()

    assert links.check_batch(started, size=3) == 1
    assert links.check_batch(started, size=3) == 0
    assert PresetFile.objects.filter(link_checked_at__lt=started).count() == 0


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ({"links": "not_found"}, ">GONE<", ">OPEN<"),
        ({"links": "needs_token"}, ">GATED<", ">GONE<"),
        ({"links": "problem"}, ">GATED<", ">OPEN<"),
        ({"links": "ok"}, ">LOCAL<", ">GONE<"),
    ],
)
def test_admin_filters_presets_by_link_health(catalogue, staff, query, present, absent):
    staff.post(CHANGELIST, {"action": "check_links_selected", "_selected_action": ["OPEN", "GATED", "GONE", "LOCAL"]})

    page = staff.get(CHANGELIST, query).content.decode()

    assert present in page and absent not in page


def test_the_daily_link_check_is_scheduled_once(django_db_setup):
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    schedule = Schedule.objects.get(func="downloads.links.check_links")
    assert schedule.schedule_type == Schedule.DAILY


def test_a_url_shared_by_several_files_is_asked_once(hub):
    _, url = hub_file(hub, "t5xxl.safetensors", 9_999)
    for preset_id in ("ONE", "TWO", "THREE"):
        make_preset(preset_id, [{"path": "text_encoders/t5xxl.safetensors", "url": url}])

    call_command("enrich_presets")

    assert [f.exact_bytes for f in PresetFile.objects.all()] == [9_999] * 3
    assert len(hub.requests_for("/org/repo/resolve/main/t5xxl.safetensors")) == 1


def test_a_scheduled_check_queues_the_next_batch_behind_what_is_queued(catalogue, monkeypatch):
    from django_q.brokers import get_broker

    monkeypatch.setattr(links, "BATCH", 3)
    broker = get_broker()
    broker.purge_queue()

    assert links.check_links() == 1
    assert broker.queue_size() == 1
    assert PresetFile.objects.exclude(link_status="").count() == 3
