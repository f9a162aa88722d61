"""Takes the README's screenshots: the models page and the queue panel during a real download.

    .venv/bin/python scripts/screenshots.py      # writes docs/screenshots/*.png

It runs the real app (daphne + qcluster) on a temporary SQLite database with the shipped
catalogue, plus one preset served slowly by a local server so that a download is under way.
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.faultserver import Fault, FaultServer  # noqa: E402
from tests.liveapp import App  # noqa: E402
from tests.test_browser import CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, FaultServer() as server:
        tmp = Path(tmp)
        app = App(tmp)
        try:
            served = {"DEMO_SDXL_CHECKPOINT": 400_000_000, "DEMO_WAITING_LORA": 1_000_000}
            for preset_id in served:
                server.always(f"/{preset_id}.safetensors", Fault(trickle=(2_000_000, 0.1)))
            app.load_catalogue(tmp, server, served, base=ROOT / "config" / "presets.yaml")
            app.create_user("alice", "a-long-password", staff=True)
            app.start_web()
            app.start_cluster()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{app.base}/")
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", "a-long-password")
                page.click("button[type=submit]")
                expect(page.locator("article.card").first).to_be_visible()
                for preset_id in served:
                    page.locator(f"article.card[data-preset={preset_id}]").get_by_role("button", name="Install").click()
                expect(page.locator("[data-testid=current-download]")).to_be_visible()
                time.sleep(3)
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(OUT / "models.png"))
                page.locator("[data-testid=queue]").screenshot(path=str(OUT / "queue.png"))
                browser.close()
        finally:
            app.stop()
    print(f"wrote {OUT / 'models.png'} and {OUT / 'queue.png'}")


if __name__ == "__main__":
    main()
