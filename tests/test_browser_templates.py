"""The templates page in a real browser (Debian's Chromium driven by Playwright) against the real
app: daphne, a qcluster worker, and model files served by a local HTTP server."""

import json

import pytest
import yaml
from playwright.sync_api import expect

from tests.conftest import FIXTURES
from tests.faultserver import Fault
from tests.liveapp import App
from tests.test_browser import browser  # noqa: F401 - the module's Chromium, shared

SLOW_SIZE = "4MB"  # the catalogue's download_size of SLOW_MODEL: what "Install missing" adds up


def api_workflow(*checkpoints):
    return json.dumps(
        {
            str(n): {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}}
            for n, name in enumerate(checkpoints, start=1)
        }
    )


@pytest.fixture
def app(tmp_path, server):
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "needs_slow.json").write_text(api_workflow("slow_model.safetensors"))
    (workflows / "needs_nothing_we_have.json").write_text(api_workflow("nobody_has_this.safetensors"))
    app = App(tmp_path, COMFYUI_TEMPLATE_DIRS=str(workflows))
    app.manage("scan_templates")  # what start's scheduled rescan does
    catalogue = app.load_catalogue(tmp_path, server, {"SLOW_MODEL": 4_000_000})
    data = yaml.safe_load(catalogue.read_text())
    data["presets"]["SLOW_MODEL"]["download_size"] = SLOW_SIZE
    catalogue.write_text(yaml.safe_dump(data, sort_keys=False))
    app.manage("refresh_presets", "--file", str(catalogue))
    app.create_user("alice", "a-long-password")
    app.start_web()
    app.start_cluster()
    yield app
    app.stop()


@pytest.fixture
def page(browser, app):  # noqa: F811 - the imported fixture
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{app.base}/templates/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "a-long-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Workflow templates")).to_be_visible()
    yield page
    context.close()


def card(page, name):
    return page.locator("[data-testid=template-card]").filter(has=page.get_by_role("heading", name=name, exact=True))


def test_checking_with_nothing_entered_says_no_workflow_given(page):
    page.get_by_role("button", name="Check").click()
    expect(page.locator("[data-testid=check-result]")).to_contain_text("no workflow given")


def test_a_5_mib_pasted_workflow_is_checked(page):
    workflow = json.loads(api_workflow("slow_model.safetensors"))
    workflow["extra"] = {"notes": "x" * (5 * 1024 * 1024)}
    page.fill("textarea[name=workflow]", json.dumps(workflow))
    page.get_by_role("button", name="Check").click()
    result = page.locator("[data-testid=check-result]")
    expect(result).to_contain_text("1 missing")
    expect(result).to_contain_text("checkpoints/slow_model.safetensors")


def test_install_missing_states_the_size_asks_first_and_the_card_follows_the_download(page, app, server):
    expect(card(page, "needs_nothing_we_have").locator("[data-testid=badge]")).to_have_text("1 missing")
    expect(card(page, "needs_nothing_we_have").get_by_role("button", name="Install missing")).to_have_count(0)

    slow = card(page, "needs_slow")
    expect(slow.locator("[data-testid=badge]")).to_have_text("1 missing")
    install = slow.get_by_role("button", name="Install missing · 4.0 MB")
    install.click()
    confirm = slow.locator("[data-testid=install-confirm]")
    expect(confirm).to_contain_text("Queue SLOW_MODEL (4.0 MB)? 4.0 MB in all.")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert app.job_state("SLOW_MODEL") is None  # asking queued nothing

    server.always("/SLOW_MODEL.safetensors", Fault(trickle=(100_000, 0.1)))
    install.click()
    confirm.get_by_role("button", name="Queue 4.0 MB").click()
    expect(slow).to_contain_text("Queued SLOW_MODEL.")
    expect(slow.locator("[data-testid=badge]")).to_have_text("downloading")  # the queue moves the card on
    expect(slow.get_by_role("button", name="Install missing")).to_have_count(0)

    server.always("/SLOW_MODEL.safetensors", None)
    expect(slow.locator("[data-testid=badge]")).to_have_text("compatible", timeout=30_000)
    assert app.job_state("SLOW_MODEL") == "completed"


def test_the_check_api_takes_a_5_mib_workflow_however_it_is_sent(app, tmp_path):
    token = app.token("alice")
    workflow = json.loads((FIXTURES / "workflows" / "ui_sdxl_basic.json").read_text())
    workflow["extra"] = {"notes": "x" * (5 * 1024 * 1024)}
    body = json.dumps(workflow).encode()
    answers = {
        "JSON body": app.api("POST", "/api/workflows/check", token, data=body),
        "form field": app.api("POST", "/api/workflows/check", token, files={"workflow": (None, body)}),
        "upload": app.api("POST", "/api/workflows/check", token, files={"file": ("big.json", body)}),
    }
    for how, answer in answers.items():
        assert answer.status_code == 200 and answer.json()["missing_count"] == 4, (how, answer.text[:200])
    too_big = app.api("POST", "/api/workflows/check", token, files={"workflow": (None, b" " * (17 * 1024 * 1024))})
    assert too_big.status_code == 413 and "larger than 16.0 MB" in too_big.json()["error"]
