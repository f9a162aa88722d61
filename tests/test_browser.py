"""The models page in a real browser (Debian's Chromium driven by Playwright) against the real
app: daphne, a qcluster worker, and model files served by a local HTTP server."""

import re
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import FIXTURES
from tests.faultserver import Fault
from tests.liveapp import App

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    # What the page shows follows a real worker, which may take seconds to pick a job up when
    # the machine is busy (CI runs both configurations side by side): wait up to 15 s, not 5.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def app(tmp_path, server):
    app = App(tmp_path)
    app.load_catalogue(tmp_path, server, {"SLOW_MODEL": 4_000_000, "BROKEN_MODEL": 200_000})
    app.create_user("alice", "a-long-password")
    app.start_web()
    app.start_cluster()
    yield app
    app.stop()


def logged_in(context, app, username, password):
    page = context.new_page()
    page.goto(f"{app.base}/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=counts]")).to_contain_text("2 presets")
    return page


@pytest.fixture
def page(browser, app):
    context = browser.new_context()
    yield logged_in(context, app, "alice", "a-long-password")
    context.close()


def card(page, preset_id):
    return page.locator(f"article.card[data-preset={preset_id}]")


def test_install_shows_progress_completion_and_the_installed_card(page, server):
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(100_000, 0.1)))
    slow = card(page, "SLOW_MODEL")
    expect(slow).to_have_attribute("data-status", "available")
    slow.get_by_role("button", name="Install").click()
    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL queued")

    current = page.locator("[data-testid=current-download]")
    expect(current).to_contain_text("SLOW_MODEL")
    expect(page.locator("[data-testid=current-connections]")).to_be_hidden()  # a small file: one stream
    fill = page.locator("[data-testid=progress-fill]")
    expect(fill).to_have_attribute("style", re.compile(r"width: (?!0%)\d"))
    expect(page.locator("[data-testid=progress-text]")).to_have_text(re.compile(r"^\d+\.\d% · "))
    first = float(re.search(r"width: ([\d.]+)%", fill.get_attribute("style")).group(1))
    expect(page.locator("[data-testid=progress-text]")).not_to_contain_text(f"{first}%", timeout=10_000)
    server.always("/SLOW_MODEL.safetensors", None)

    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL is installed", timeout=30_000)
    expect(slow).to_have_attribute("data-status", "installed")
    expect(slow.get_by_text("Installed", exact=True)).to_be_visible()
    expect(page.locator("[data-testid=queue]")).to_contain_text("Nothing is downloading")


def test_a_file_over_several_connections_shows_how_many_next_to_it(page, app, server, tmp_path):
    app.load_catalogue(tmp_path, server, {"BIG_MODEL": 40 << 20})  # over the engine's single-stream threshold
    server.always("/BIG_MODEL.safetensors", Fault(trickle=(100_000, 0.1)))
    page.reload()
    card(page, "BIG_MODEL").get_by_role("button", name="Install").click()
    connections = page.locator("[data-testid=current-connections]")
    expect(connections).to_have_text(re.compile(r"^· [2-8] connections$"))
    expect(page.locator("[data-testid=current-download]")).to_contain_text("checkpoints/big_model.safetensors")


def test_pause_and_resume_from_the_page(page, server):
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(25_000, 0.1)))
    slow = card(page, "SLOW_MODEL")
    slow.get_by_role("button", name="Install").click()
    expect(slow).to_have_attribute("data-status", "downloading")
    expect(page.locator("[data-testid=progress-fill]")).to_have_attribute("style", re.compile(r"width: (?!0%)\d"))
    slow.get_by_role("button", name="Pause").click()
    expect(slow).to_have_attribute("data-status", "paused")
    expect(page.locator("[data-testid=queue]")).to_contain_text("paused")

    server.always("/SLOW_MODEL.safetensors", None)
    slow.get_by_role("button", name="Resume").click()
    expect(slow).to_have_attribute("data-status", "installed", timeout=30_000)
    resumed = server.requests_for("/SLOW_MODEL.safetensors")[-1]
    assert resumed.range and resumed.range != "bytes=0-"


def test_a_failing_download_offers_retry_and_retry_works(page, server):
    server.always("/BROKEN_MODEL.safetensors", Fault(status=503))
    broken = card(page, "BROKEN_MODEL")
    broken.get_by_role("button", name="Install").click()
    expect(page.locator("#toasts")).to_contain_text("retrying")
    expect(broken).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(page.locator("#toasts")).to_contain_text("BROKEN_MODEL failed")
    expect(broken).to_contain_text("503")

    server.always("/BROKEN_MODEL.safetensors", None)
    broken.get_by_role("button", name="Retry").click()
    expect(broken).to_have_attribute("data-status", "installed", timeout=30_000)


def test_filters_search_and_staff_links(page, app):
    page.fill("input[type=search]", "broken")
    expect(page.locator("article.card")).to_have_count(1)
    page.fill("input[type=search]", "")
    expect(page.locator("article.card")).to_have_count(2)
    expect(page.locator("[data-testid=admin-link]")).to_have_count(0)
    expect(page.locator("[data-testid=refresh]")).to_be_hidden()


def test_check_a_pasted_workflow_on_the_templates_page(page, app):
    page.get_by_role("link", name="Workflows").click()
    workflow = (FIXTURES / "workflows" / "api_wan_video.json").read_text()
    page.fill("textarea[name=workflow]", workflow)
    page.get_by_role("button", name="Check").click()
    result = page.locator("[data-testid=check-result]")
    expect(result).to_contain_text("5 missing")
    expect(result).to_contain_text("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    page.fill("textarea[name=workflow]", "{broken")
    page.get_by_role("button", name="Check").click()
    expect(result).to_contain_text("invalid JSON")


def part_of(app, preset_id):
    return app.models / "checkpoints" / f"{preset_id.lower()}.safetensors.part"


def wait_until(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def start_trickling_download(page, app, server):
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(25_000, 0.1)))
    slow = card(page, "SLOW_MODEL")
    slow.get_by_role("button", name="Install").click()
    expect(slow).to_have_attribute("data-status", "downloading")
    wait_until(lambda: part_of(app, "SLOW_MODEL").exists() and part_of(app, "SLOW_MODEL").stat().st_size > 100_000)
    return slow


def test_cancel_asks_whether_to_keep_or_delete_what_was_downloaded(page, app, server):
    slow = start_trickling_download(page, app, server)
    slow.get_by_role("button", name="Cancel").click()
    dialog = page.locator("[data-testid=cancel-dialog]")
    expect(dialog).to_contain_text("Cancel the download of SLOW_MODEL?")
    expect(dialog).to_contain_text("KB has been downloaded so far")
    dialog.get_by_role("button", name=re.compile("^Cancel and keep the")).click()
    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL: download cancelled; the")
    expect(page.locator("#toasts")).to_contain_text("is kept and Install resumes from it")
    expect(slow).to_have_attribute("data-status", "available")
    time.sleep(1.5)  # the worker has stopped (within a second) and left the .part alone
    assert part_of(app, "SLOW_MODEL").stat().st_size > 100_000

    slow.get_by_role("button", name="Install").click()
    expect(slow).to_have_attribute("data-status", "downloading")
    slow.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name=re.compile("^Cancel and delete the")).click()
    expect(page.locator("#toasts")).to_contain_text("downloaded deleted")
    expect(slow).to_have_attribute("data-status", "available")
    wait_until(lambda: not part_of(app, "SLOW_MODEL").exists())


def test_only_the_owner_or_staff_is_offered_to_delete_a_partial_download(page, app, server, browser):
    start_trickling_download(page, app, server)
    app.create_user("bob", "b-long-password")
    context = browser.new_context()
    bob = logged_in(context, app, "bob", "b-long-password")
    card(bob, "SLOW_MODEL").get_by_role("button", name="Cancel").click()
    dialog = bob.locator("[data-testid=cancel-dialog]")
    expect(dialog).to_contain_text("Only the person who asked for this download, or staff, can delete")
    expect(dialog.get_by_role("button", name=re.compile("^Cancel and delete"))).to_be_hidden()
    dialog.get_by_role("button", name="Don't cancel").click()
    expect(dialog).to_have_count(0)
    expect(card(bob, "SLOW_MODEL")).to_have_attribute("data-status", "downloading")
    context.close()


def test_a_failed_card_can_be_dismissed_and_its_partial_download_deleted(page, app, server):
    server.always("/BROKEN_MODEL.safetensors", Fault(reset_after=50_000))
    broken = card(page, "BROKEN_MODEL")
    broken.get_by_role("button", name="Install").click()
    expect(broken).to_have_attribute("data-status", "failed", timeout=30_000)
    assert part_of(app, "BROKEN_MODEL").stat().st_size >= 50_000
    broken.get_by_role("button", name="Dismiss").click()
    dialog = page.locator("[data-testid=cancel-dialog]")
    expect(dialog).to_contain_text("Dismiss the failed download of BROKEN_MODEL?")
    dialog.get_by_role("button", name=re.compile("^Dismiss and delete the")).click()
    expect(page.locator("#toasts")).to_contain_text("BROKEN_MODEL: failed download dismissed and the")
    expect(broken).to_have_attribute("data-status", "available")
    expect(broken.get_by_role("button", name="Install")).to_be_visible()
    assert not part_of(app, "BROKEN_MODEL").exists()


def test_the_detail_page_lists_files_and_install_history(page, app):
    slow = card(page, "SLOW_MODEL")
    expect(slow).to_have_attribute("id", "preset-SLOW_MODEL")
    slow.get_by_role("button", name="Install").click()
    expect(slow).to_have_attribute("data-status", "installed", timeout=30_000)
    expect(slow).to_contain_text("1 file")
    expect(slow).not_to_contain_text("1 files")

    slow.get_by_role("link", name="SLOW_MODEL").click()
    expect(page).to_have_url(f"{app.base}/presets/SLOW_MODEL/")
    files = page.locator("[data-testid=preset-files] tbody tr")
    expect(files).to_have_count(1)
    expect(files.locator("td")).to_have_text(["checkpoints", "slow_model.safetensors", "3.8 MB", "installed"])
    history = page.locator("[data-testid=preset-history] tbody tr")
    expect(history).to_have_count(1)
    expect(history.locator("td").nth(1)).to_have_text("alice")
    expect(history.locator("td").nth(2)).to_have_text("installed")

    page.goto(f"{app.base}/presets/BROKEN_MODEL/")
    expect(page.locator("[data-testid=preset-files] tbody td").nth(3)).to_have_text("not installed")
    expect(page.locator("[data-testid=preset-history]")).to_contain_text("Nobody has installed this preset")
    page.get_by_role("link", name="All models").click()
    expect(card(page, "BROKEN_MODEL")).to_be_in_viewport()


def expect_order(page, *preset_ids):
    cards = page.locator("article.card")
    expect(cards).to_have_count(len(preset_ids))
    for position, preset_id in enumerate(preset_ids):
        expect(cards.nth(position)).to_have_attribute("data-preset", preset_id)


def test_sort_by_size_installed_only_and_no_match(page, app):
    installed = app.models / "checkpoints" / "broken_model.safetensors"
    installed.parent.mkdir(parents=True, exist_ok=True)
    installed.write_bytes(b"x" * 200_000)  # the exact size: installed
    page.reload()
    expect(page.locator("[data-testid=counts]")).to_contain_text("2 presets · 1 installed · 2 shown")

    sort = page.get_by_label("Sort")
    sort.select_option("size-asc")
    expect_order(page, "BROKEN_MODEL", "SLOW_MODEL")
    sort.select_option("size-desc")
    expect_order(page, "SLOW_MODEL", "BROKEN_MODEL")

    page.get_by_label("Installed only").check()
    expect_order(page, "BROKEN_MODEL")
    page.fill("input[type=search]", "slow")
    no_match = page.locator("[data-testid=no-match]")
    expect(no_match).to_contain_text("No presets match")
    no_match.get_by_role("button", name="Clear filters").click()
    expect(page.locator("article.card")).to_have_count(2)
    expect(page.get_by_label("Installed only")).not_to_be_checked()
    expect(page.locator("input[type=search]")).to_have_value("")


def test_a_download_waiting_to_retry_shows_its_countdown(page, server):
    server.always("/BROKEN_MODEL.safetensors", Fault(status=503, headers={"Retry-After": "5"}))
    broken = card(page, "BROKEN_MODEL")
    broken.get_by_role("button", name="Install").click()
    expect(broken).to_have_attribute("data-status", "retrying", timeout=30_000)
    expect(broken.locator(".badge")).to_have_text(re.compile(r"^retrying in [1-5] s$"))
    expect(page.locator("[data-testid=current-status]")).to_have_text(re.compile(r"^retrying in [1-5] s$"))
    expect(page.locator("#toasts")).to_contain_text("BROKEN_MODEL: ")
    # the toast of attempt 2, or of attempt 3 when the machine was slow to look
    expect(page.locator("#toasts")).to_contain_text(re.compile(r"retrying in 5 s \(attempt [23] of 3\)"))


def test_a_preset_downloaded_again_still_counts_as_installed(page, app, server):
    slow = card(page, "SLOW_MODEL")
    slow.get_by_role("button", name="Install").click()
    expect(slow).to_have_attribute("data-status", "installed", timeout=30_000)
    counts = page.locator("[data-testid=counts]")
    expect(counts).to_contain_text("1 installed")

    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(25_000, 0.1)))
    app.create_user("root", "r-long-password", staff=True)
    forced = app.api("POST", "/api/presets/SLOW_MODEL/install?force=true", app.token("root"))
    assert forced.status_code == 202
    expect(slow).to_have_attribute("data-status", "downloading")
    expect(counts).to_contain_text("1 installed")


def test_a_refresh_that_changed_nothing_toasts_only_the_staff_who_asked(browser, tmp_path, server, catalogue_server):
    app = App(tmp_path, PRESETS_REFRESH_URL=catalogue_server.url)
    try:
        catalogue = app.load_catalogue(tmp_path, server, {"SLOW_MODEL": 1000, "BROKEN_MODEL": 1000})
        catalogue_server.body = catalogue.read_bytes()
        app.create_user("alice", "a-long-password")
        superuser = "User.objects.create_superuser('root', '', 'r-long-password')"
        app.manage("shell", "-c", f"from django.contrib.auth.models import User; {superuser}")
        app.start_web()
        contexts = [browser.new_context(), browser.new_context()]
        alice = logged_in(contexts[0], app, "alice", "a-long-password")
        root = logged_in(contexts[1], app, "root", "r-long-password")

        root.get_by_test_id("refresh").click()
        expect(root.locator("#toasts")).to_contain_text("The catalogue is up to date")
        assert len(catalogue_server.requests) == 1
        time.sleep(1)  # an event would have reached alice by now
        expect(alice.locator("#toasts")).to_be_empty()

        catalogue_server.body = catalogue.read_bytes().replace(b"name: SLOW_MODEL", b"name: Slow model")
        root.get_by_test_id("refresh").click()
        expect(alice.locator("#toasts")).to_contain_text("Catalogue refreshed: 1 changed")
        expect(card(alice, "SLOW_MODEL")).to_contain_text("Slow model")
        for context in contexts:
            context.close()
    finally:
        app.stop()


def test_an_install_answer_arriving_after_the_worker_started_does_not_set_the_card_back_to_queued(page, server):
    # The socket's "downloading" can overtake the install request's own answer ("queued") on a
    # busy machine; the card then said queued through the whole download.
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(25_000, 0.1)))
    slow = card(page, "SLOW_MODEL")

    def answer_late(route):
        answer = route.fetch()
        # told by the socket first: as long as a busy machine's worker takes to start the job
        expect(slow).to_have_attribute("data-status", "downloading", timeout=60_000)
        route.fulfill(response=answer)

    page.route("**/api/presets/SLOW_MODEL/install", answer_late)
    slow.get_by_role("button", name="Install").click()
    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL queued")
    time.sleep(1)
    expect(slow).to_have_attribute("data-status", "downloading", timeout=1_000)


def test_staff_uninstall_a_preset_from_its_card_after_confirming(page, app, browser):
    installed = app.models / "checkpoints" / "broken_model.safetensors"
    installed.parent.mkdir(parents=True, exist_ok=True)
    installed.write_bytes(b"x" * 200_000)
    page.reload()
    expect(card(page, "BROKEN_MODEL")).to_have_attribute("data-status", "installed")
    expect(card(page, "BROKEN_MODEL").get_by_role("button", name="Uninstall")).to_be_hidden()  # alice is no staff
    app.create_user("keeper", "k-long-password", staff=True)
    context = browser.new_context()
    keeper = logged_in(context, app, "keeper", "k-long-password")
    broken = card(keeper, "BROKEN_MODEL")
    expect(card(keeper, "SLOW_MODEL").get_by_role("button", name="Uninstall")).to_be_hidden()  # nothing on disk

    broken.get_by_role("button", name="Uninstall").click()
    dialog = keeper.locator("[data-testid=uninstall-dialog]")
    expect(dialog).to_contain_text("Uninstall BROKEN_MODEL?")
    expect(dialog).to_contain_text("checkpoints/broken_model.safetensors")
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_have_count(0)
    assert installed.exists()
    broken.get_by_role("button", name="Uninstall").click()
    dialog.get_by_role("button", name="Uninstall").click()

    expect(keeper.locator("#toasts")).to_contain_text("BROKEN_MODEL uninstalled: 1 file deleted, 195.3 KB freed")
    expect(broken).to_have_attribute("data-status", "available")
    expect(card(page, "BROKEN_MODEL")).to_have_attribute("data-status", "available")  # alice's page heard of it
    assert not installed.exists()
    context.close()


def test_verify_from_the_page_finds_a_corrupt_file_and_re_download_fixes_it(page, app, server):
    file = app.models / "checkpoints" / "broken_model.safetensors"
    file.parent.mkdir(parents=True, exist_ok=True)
    good = server.files["/BROKEN_MODEL.safetensors"].bytes()
    file.write_bytes(good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:])
    page.reload()
    broken = card(page, "BROKEN_MODEL")
    expect(broken).to_have_attribute("data-status", "installed")  # the right size: it looks installed

    broken.get_by_role("button", name="Verify").click()
    expect(broken).to_have_attribute("data-status", "corrupt")
    expect(page.locator("#toasts")).to_contain_text("BROKEN_MODEL verified: ok: 0 files; corrupt: ['checkpoints/")
    expect(broken).to_contain_text("Corrupt: checkpoints/broken_model.safetensors does not match its sha256")

    broken.get_by_role("button", name="Re-download").click()
    expect(broken).to_have_attribute("data-status", "installed")
    assert file.read_bytes() == good
