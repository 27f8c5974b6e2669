"""report.html in a real browser (headless Chromium, from Debian's package, driven by Playwright).

From the file system, offline: no console errors, every done take's <video> loads its clip
(readyState ≥ 1), failed takes show their reason, and a prompt holding <script> is text.
Skips — saying why — only where no browser can be had.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.cli.main import main
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCRIPT_PROMPT = 'A harbor at dawn <script>document.title="pwned"</script> & gulls'


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium package)")


def test_report_html_in_a_real_browser(tmp_path: Path) -> None:
    executable = _browser()
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    shots = [
        shot("harbor", "runware", takes=2, prompt=SCRIPT_PROMPT, tags=["act1"]),
        shot("crowd", "runway", prompt="[sim:moderate] a crowd", tags=["act2"]),
    ]
    manifest = write_manifest(tmp_path, shots, simulate=True)
    assert main(["run", str(manifest), "--sim-time-scale", "0.01"]) == 1
    report = tmp_path / "out" / "t" / "report.html"
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri())
            page.wait_for_function(
                "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1)", timeout=15000
            )
            videos = page.eval_on_selector_all("video", "vs => vs.map(v => [v.readyState, v.duration])")
            title = page.title()
            prompts = page.eval_on_selector_all(".prompt", "ps => ps.map(p => p.textContent)")
            reasons = page.eval_on_selector_all(".reason", "rs => rs.map(r => r.textContent)")
            page.click('#filters button[data-value="failed"]')
            visible = page.eval_on_selector_all("article.take:not(.hidden)", "cs => cs.length")
        finally:
            browser.close()
    assert errors == [], errors
    assert len(videos) == 2 and all(state >= 1 and duration > 0 for state, duration in videos), videos
    assert title.startswith("t ") and "pwned" not in title, "the prompt's script never ran"
    assert prompts.count(SCRIPT_PROMPT) == 2, "the prompt is shown as text, tags and all"
    assert any("moderation" in r for r in reasons), reasons
    assert visible == 1, "the failed filter shows the failed take alone"
