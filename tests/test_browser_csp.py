"""The Content-Security-Policy in a real browser (Debian's Chromium driven by Playwright): the
pages, the live socket and the admin work under it, and an injected inline script does not run."""

import pytest
from playwright.sync_api import expect

from tests.liveapp import App
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture

PAGES = [
    "/",
    "/templates/",
    "/storage/",
    "/admin/",
    "/admin/presets/preset/",
    "/admin/presets/preset/ONLY_MODEL/change/",
    "/admin/downloads/downloadjob/",
    "/admin/accounts/apitoken/",
]


@pytest.fixture
def app(tmp_path, server):
    app = App(tmp_path)
    app.load_catalogue(tmp_path, server, {"ONLY_MODEL": 100_000})
    app.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; User.objects.create_superuser('ops', password='a-long-password')",
    )
    app.start_web()
    yield app
    app.stop()


def test_pages_work_under_the_policy_and_injected_scripts_do_not_run(browser, app):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    page.goto(f"{app.base}/login/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "a-long-password")
    page.click("button[type=submit]")

    expect(page.locator("[data-testid=counts]")).to_contain_text("1 preset ·")  # Alpine evaluated its bindings
    expect(page.locator("[data-testid=queue] .dot")).to_have_class("dot on")  # the WebSocket is connected
    for path in PAGES:
        answer = page.goto(f"{app.base}{path}")
        assert answer.status == 200 and "script-src 'self' 'unsafe-eval'" in answer.headers["content-security-policy"]
    assert violations == []

    page.goto(f"{app.base}/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; "
        "document.body.append(s); }"
    )
    assert page.evaluate("window.injected") is None
    assert any("inline script" in text for text in violations)
    context.close()
