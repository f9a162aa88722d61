"""The storage page in a real browser (Debian's Chromium driven by Playwright) against the real
app: what it shows, following the disk live, and clean-up with its preview."""

import re

import pytest
from playwright.sync_api import expect

from tests.liveapp import App
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture


@pytest.fixture
def app(tmp_path, server):
    app = App(tmp_path)
    app.load_catalogue(tmp_path, server, {"ALPHA": 50_000})
    app.create_user("root", "r-long-password", staff=True)
    app.start_web()
    app.start_cluster()
    yield app
    app.stop()


def test_the_storage_page_follows_the_disk_and_cleans_up_after_a_preview(browser, app):  # noqa: F811
    stray = app.models / "loras" / "stray.safetensors"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x" * 3000)
    orphan = app.models / "checkpoints" / "gone.safetensors.part"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x" * 2048)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{app.base}/login/?next=/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "r-long-password")
    page.click("button[type=submit]")
    page.get_by_test_id("storage-link").click()

    expect(page.get_by_test_id("disks")).to_contain_text("free of")
    expect(page.get_by_test_id("folders")).to_contain_text("loras")
    unmanaged = page.get_by_test_id("unmanaged")
    expect(unmanaged.locator("tr[data-path='loras/stray.safetensors']")).to_contain_text("2.9 KB")
    expect(unmanaged.locator("tr[data-path='checkpoints/gone.safetensors.part']")).to_contain_text("orphaned")
    expect(page.get_by_test_id("presets")).to_be_hidden()

    assert app.api("POST", "/api/presets/ALPHA/install", app.token("root")).status_code == 202
    row = page.locator("[data-testid=presets] tr[data-preset=ALPHA]")
    expect(row).to_contain_text("48.8 KB")  # download_complete: the page fetched the disk again
    expect(row).to_contain_text("1 installed")
    row.get_by_role("button", name="Uninstall").click()
    expect(page.get_by_test_id("uninstall-dialog")).to_contain_text("Uninstall ALPHA?")
    page.get_by_role("button", name="Keep it").click()
    expect(page.get_by_test_id("uninstall-dialog")).to_have_count(0)

    other = browser.new_context()
    watcher = other.new_page()  # another staff member's storage page, open meanwhile
    watcher.goto(f"{app.base}/login/?next=/storage/")
    watcher.fill("input[name=username]", "root")
    watcher.fill("input[name=password]", "r-long-password")
    watcher.click("button[type=submit]")
    expect(watcher.get_by_test_id("unmanaged")).to_contain_text("loras/stray.safetensors")
    expect(watcher.locator("h1 .dot")).to_have_class("dot on")

    page.get_by_label("select loras/stray.safetensors").check()
    page.get_by_label("select checkpoints/gone.safetensors.part").check()
    page.get_by_test_id("clean-up").click()
    dialog = page.get_by_test_id("cleanup-dialog")
    expect(dialog).to_contain_text("Delete 2 files and free 4.9 KB?")
    assert stray.exists() and orphan.exists()  # only a preview so far
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#toasts")).to_contain_text(re.compile(r"Deleted 2 files, 4\.9 KB freed"))
    expect(unmanaged).to_be_hidden()
    assert not stray.exists() and not orphan.exists()
    expect(watcher.get_by_test_id("unmanaged")).to_be_hidden()  # told by storage_changed
    context.close()
    other.close()
