"""The page at ``/`` in a real browser: Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("SLOWFAST_DEPLOY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
# where to keep the screenshot (docs/serve_page.png when making the docs); default: tmp_path
SCREENSHOT = os.environ.get("SLOWFAST_DEPLOY_SCREENSHOT")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def test_drop_a_video_see_top5_and_timeline(server, browser, video_dir, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('info').textContent.includes('classes')")
    assert "tiny" in page.text_content("#info")
    page.set_input_files("#file", str(video_dir / "short.mp4"))
    page.wait_for_selector("#top5 tbody tr:nth-child(5)", timeout=60_000)
    rows = page.locator("#top5 tbody tr")
    assert rows.count() == 5
    page.wait_for_selector("#plot svg polyline", state="attached", timeout=60_000)
    assert page.locator("#plot svg polyline").count() >= 1
    with server.client() as http:  # a live stream: listed with its current label
        source = str(video_dir / "a" / "land.mp4")
        assert http.post("/v1/streams", json={"source": source, "name": "cam-page"}).is_success
    try:
        page.wait_for_function(
            "[...document.querySelectorAll('#streams tbody tr')].some(r => "
            "r.textContent.includes('cam-page') && /class \\d+ [0-9.]+/.test(r.textContent))",
            timeout=60_000,
        )
    finally:
        with server.client() as http:
            http.delete("/v1/streams/cam-page")
    with server.client() as http:
        [want] = http.post(
            "/v1/predict", files={"video": ("short.mp4", (video_dir / "short.mp4").read_bytes())}
        ).json()
    shown = [int(rows.nth(i).locator("td").nth(1).text_content()) for i in range(5)]
    assert shown == [t["class"] for t in want["topk"]]
    page.screenshot(path=SCREENSHOT or str(tmp_path / "page.png"), full_page=True)
    assert errors == []
    page.close()


def test_page_reports_errors(server, browser, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('info').textContent.includes('classes')")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "not_a_video" in page.text_content("#status")
    page.close()
