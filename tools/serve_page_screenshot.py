"""Screenshot of the serve page after an upload (docs/serve_page.png), in Debian's Chromium.

    python tools/serve_page_screenshot.py --url http://127.0.0.1:8000 --video demo.mp4 \
        --out docs/serve_page.png

Start the server first (``slowfast-deploy serve --model M``). Never downloads a browser.
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--video", required=True)
    p.add_argument("--out", default="docs/serve_page.png")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--timeout-s", type=float, default=600)
    p.add_argument(
        "--stream", default=None, metavar="SOURCE", help="also register this live stream first"
    )
    p.add_argument("--api-key", default=None)
    args = p.parse_args()
    if args.stream:
        import json
        import urllib.request

        request = urllib.request.Request(
            args.url + "/v1/streams",
            data=json.dumps({"source": args.stream, "name": "cam1"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request).close()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(args.url + "/")
        page.wait_for_function("document.getElementById('info').textContent.includes('classes')")
        page.set_input_files("#file", args.video)
        timeout_ms = args.timeout_s * 1000
        page.wait_for_selector("#top5 tbody tr:nth-child(5)", timeout=timeout_ms)
        page.wait_for_selector("#plot svg polyline", state="attached", timeout=timeout_ms)
        if args.stream:
            page.wait_for_selector("#streams tbody tr", timeout=timeout_ms)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
