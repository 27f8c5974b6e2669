"""The morning review in a real browser (Debian's headless Chromium, driven by Playwright).

From the demo run on the simulator: two takes circled with the keyboard (arrows move, ``s``
circles, space plays), kept across a reload (localStorage under the run's id), saved by "download
selects", fed to ``previz select --from``, exported and read back with OpenTimelineIO; then a fresh
browser shows the journal's selects circled, and at 420 px the page is one column that never
scrolls sideways, each shot's plate above its takes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest

from runner.cli.main import main
from runner.store.sqlite import Journal

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium package)")


def _circled(page: Any) -> list[str]:
    items: list[str] = page.eval_on_selector_all("article.take.circled", "cs => cs.map(c => c.dataset.item)")
    return items


def _focused(page: Any) -> str:
    item: str = page.evaluate("document.activeElement.dataset.item || ''")
    return item


def test_circle_download_select_and_export_from_the_page(tmp_path: Path) -> None:
    executable = _browser()
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    demo = ROOT / "manifests" / "demo.yaml"
    assert main(["run", str(demo), "--output", str(tmp_path), "--sim-time-scale", "0.01"]) == 0
    run_dir = tmp_path / "demo"
    report = (run_dir / "report.html").as_uri()
    picks = tmp_path / "picks.txt"
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_context(
                accept_downloads=True, viewport={"width": 1400, "height": 1000}
            ).new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report)
            plates = page.eval_on_selector_all(".plate img", "is => is.map(i => i.naturalWidth)")
            spend = page.eval_on_selector_all(".shot-head .spend", "ss => ss.map(s => s.textContent)")
            page.focus("article.take")
            start = _focused(page)
            page.keyboard.press("ArrowRight")
            first = _focused(page)
            page.keyboard.press("s")
            page.keyboard.press("ArrowDown")
            second = _focused(page)
            page.keyboard.press("s")
            page.keyboard.press(" ")
            page.wait_for_function("!document.activeElement.querySelector('video').paused", timeout=5000)
            circled = _circled(page)
            count = page.text_content("#count")
            with page.expect_download() as info:
                page.click("#download")
            info.value.save_as(picks)
            page.reload()
            kept = _circled(page)
        finally:
            browser.close()
    assert errors == [], errors
    assert len(plates) == 5 and all(w > 0 for w in plates), "every shot's plate, inline"
    assert len(spend) == 5 and all(s.startswith("spent $") for s in spend)
    assert (start, first) == ("harbor-dawn:1", "harbor-dawn:2"), "ArrowRight: the next take"
    assert second.startswith("dragon-approach:"), "ArrowDown: the row below, the next shot"
    assert circled == [first, second] and count == "2 circled"
    assert kept == circled, "kept in the browser across a reload"
    lines = [line for line in picks.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert lines == circled, "the downloaded file lists the circled takes"

    assert main(["select", str(run_dir), "--from", str(picks)]) == 0
    journal = Journal.open(run_dir, readonly=True)
    try:
        chosen = sorted(journal.get(key).label for key in journal.selects())
    finally:
        journal.close()
    assert chosen == sorted(f"{i.split(':')[0]}#t{int(i.split(':')[1]):02d}" for i in circled)

    timeline_path = run_dir / "selects.otio"
    assert main(["export", str(run_dir), "--otio", str(timeline_path)]) == 0
    clips = list(otio.adapters.read_from_file(str(timeline_path)).find_clips())
    assert [c.name for c in clips] == ["harbor-dawn#t02", second.replace(":", "#t0")], "manifest order"
    assert all((timeline_path.parent / c.media_reference.target_url).is_file() for c in clips)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            fresh = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
            fresh.goto(report)
            from_journal = _circled(fresh)
            marked = fresh.eval_on_selector_all(".journal", "js => js.length")
            wide = fresh.evaluate("document.documentElement.scrollWidth")
            plate_bottom = fresh.eval_on_selector(".plate", "p => p.getBoundingClientRect().bottom")
            card_top = fresh.eval_on_selector("article.take", "c => c.getBoundingClientRect().top")
            columns = fresh.eval_on_selector(
                ".grid", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length"
            )
        finally:
            browser.close()
    assert from_journal == circled and marked == 2, "a fresh browser shows the journal's selects circled"
    assert wide <= 420 and columns == 1, "one column, no sideways scrolling at 420 px"
    assert plate_bottom <= card_top, "the plate sits above its takes"
