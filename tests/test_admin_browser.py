"""The admin's preset list in a real browser (Debian's Chromium) at a common laptop width."""

import pytest
from playwright.sync_api import expect

from tests.conftest import UPSTREAM
from tests.liveapp import App
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture
def app(tmp_path, catalogue_server):
    catalogue_server.body = (UPSTREAM / "presets.yaml").read_bytes()
    app = App(tmp_path, PRESETS_REFRESH_URL=catalogue_server.url)
    app.manage("refresh_presets")
    app.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('curator', password='a-long-password')",
    )
    app.start_web()
    yield app
    app.stop()


@pytest.fixture
def admin_page(browser, app):  # noqa: F811 - the fixture imported above
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{app.base}/admin/login/?next=/admin/presets/preset/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "a-long-password")
    page.click("input[type=submit]")
    expect(page.get_by_text("Catalogue version 1.5.0")).to_be_visible()
    yield page
    context.close()


def box(locator):
    found = locator.bounding_box()
    assert found, "not rendered"
    return found


def overlap(a, b):
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_the_refresh_and_export_buttons_leave_the_catalogue_version_readable(admin_page):
    version = box(admin_page.get_by_text("Catalogue version 1.5.0"))
    for button in (
        admin_page.get_by_role("button", name="Refresh from upstream"),
        admin_page.get_by_role("link", name="Export presets.yaml"),
    ):
        assert not overlap(box(button), version)


def test_the_preset_list_fits_a_1366_pixel_wide_window(admin_page):
    assert admin_page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    results = admin_page.locator(".results")  # the admin scrolls a list wider than this sideways
    assert results.evaluate("element => element.scrollWidth <= element.clientWidth")
    last_column = box(admin_page.locator("#result_list thead th").last)
    assert last_column["x"] + last_column["width"] <= box(results)["x"] + box(results)["width"]


def test_a_presets_page_with_its_file_rows_fits_a_1366_pixel_wide_window(admin_page):
    admin_page.get_by_role("link", name="LTX_VIDEO_T2V").click()
    expect(admin_page.get_by_text("Preset files")).to_be_visible()
    assert admin_page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
