"""The models page in a real browser (Debian's Chromium driven by Playwright) against the real
app: daphne, a qcluster worker, and model files served by a local HTTP server."""

import re

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


@pytest.fixture
def page(browser, app):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{app.base}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "a-long-password")
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=counts]")).to_contain_text("2 presets")
    yield page
    context.close()


def card(page, preset_id):
    return page.locator(f"article.card[data-preset={preset_id}]")


def test_install_shows_progress_completion_and_the_installed_card(page, server):
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(200_000, 0.1)))
    slow = card(page, "SLOW_MODEL")
    expect(slow).to_have_attribute("data-status", "available")
    slow.get_by_role("button", name="Install").click()
    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL queued")

    current = page.locator("[data-testid=current-download]")
    expect(current).to_contain_text("SLOW_MODEL")
    fill = page.locator("[data-testid=progress-fill]")
    expect(fill).to_have_attribute("style", re.compile(r"width: (?!0%)\d"))
    first = float(re.search(r"width: ([\d.]+)%", fill.get_attribute("style")).group(1))
    expect(page.locator("[data-testid=progress-text]")).not_to_contain_text(f"{first}%", timeout=10_000)
    server.always("/SLOW_MODEL.safetensors", None)

    expect(page.locator("#toasts")).to_contain_text("SLOW_MODEL is installed", timeout=30_000)
    expect(slow).to_have_attribute("data-status", "installed")
    expect(slow.get_by_text("Installed", exact=True)).to_be_visible()
    expect(page.locator("[data-testid=queue]")).to_contain_text("Nothing is downloading")


def test_pause_and_resume_from_the_page(page, server):
    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(100_000, 0.1)))
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
