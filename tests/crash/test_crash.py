"""The crash campaign (issue 7): SIGKILL ``previz run`` at random moments, rerun, and audit the bill.

A hostile standalone simulator (5xx, 429, resets, slow answers, truncated and expired downloads,
moderation, submits whose answer is lost) and 66 takes over the three providers. The runner is
killed 12 times, each after a seeded random number of new submits, polls or downloads
seen by the provider (by progress, not wall time) — then rerun until it ends by itself.
Then the provider's bill (``/_sim/stats``) and the disk are held against the ledger:

* every take that can succeed has exactly one verified clip, and no stray or partial file;
* Runware registered each taskUUID once; AIML/Runway duplicates ≤ the takes flagged uncertain;
* Runware's ledger equals its bill to 1e-6; for AIML/Runway, ``ledger − U ≤ bill ≤ ledger``, where
  U is what the ledger charged for uncertain submits (each may or may not have been billed);
* a budget set for the run is never exceeded, across kills.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.crash import standalone
from tests.crash.standalone import by_provider, ledger, stats
from tests.engine.helpers import shot, write_manifest

pytestmark = pytest.mark.slow

SCALE = 0.02  # a 60 s generation lasts 1.2 s; Runway's 5 s between polls, 0.1 s
PROVIDERS = ("aimlapi", "runware", "runway")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _manifest(tmp_path: Path, takes_per_provider: int, **top: Any) -> Path:
    shots = [shot(f"{p}-shot", p, takes=takes_per_provider, duration=5) for p in PROVIDERS]
    return write_manifest(tmp_path, shots, name="night", concurrency=4, **top)


#: What a kill waits for: this many new events of one kind on the provider's side, so a kill lands
#: inside submits, polls or downloads by progress, never by wall time (a busy machine cannot make
#: the campaign prove less).
PHASES = ("submissions", "polls", "downloads")


def _activity(url: str) -> dict[str, int]:
    bill = stats(url)
    providers = bill["providers"].values()
    return {
        "submissions": sum(p["submissions"] for p in providers),
        "polls": sum(p["polls"] for p in providers),
        "downloads": bill["downloads"],
    }


def _wait_for_progress(proc: Any, url: str, phase: str, events: int, timeout: float = 60) -> None:
    """Until the provider saw ``events`` more of ``phase`` (or the run ended, or ``timeout``)."""
    start = _activity(url)[phase]
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if _activity(url)[phase] - start >= events:
            return
        time.sleep(0.01)


def _kill_campaign(manifest: Path, url: str, kills: int, rng: random.Random) -> int:
    """Start and SIGKILL the run ``kills`` times; return how many kills landed before it ended."""
    landed = 0
    for _ in range(kills):
        phase, events = rng.choice(PHASES), rng.randint(1, 6)
        with standalone.started(manifest, url, clock_scale=SCALE) as proc:
            _wait_for_progress(proc, url, phase, events)
            time.sleep(rng.uniform(0.0, 0.05))  # not always on the event's heels
            if proc.poll() is None:
                proc.kill()
                landed += 1
    return landed


def _rerun_until_settled(manifest: Path, url: str) -> tuple[int, str]:
    """Rerun until a run ends by itself and changes nothing: what is left, a rerun cannot fix."""
    run_dir = manifest.parent / "out" / "night"
    for _ in range(8):
        before = len(ledger(run_dir))
        code, out, err = standalone.run(manifest, url, clock_scale=SCALE)
        assert "Traceback" not in err, err
        assert code in (0, 1, 3), (code, out, err)
        if code == 0 or len(ledger(run_dir)) == before:
            return code, out
    raise AssertionError(f"no settled run after 8 reruns:\n{out}\n{err}")


def _verified_clips(run_dir: Path) -> None:
    rows = ledger(run_dir)
    done = {r["key"]: r for r in rows if r["status"] == "done"}
    for row in done.values():
        clip = run_dir / row["output"]
        data = clip.read_bytes()
        assert data[4:8] == b"ftyp", f"{clip} is not an MP4"
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
    on_disk = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.mp4")}
    assert on_disk == {r["output"] for r in done.values()}, "one clip per done take, nothing else"
    assert not list(run_dir.rglob("*.part")), "no partial download is left behind"


def _audit_bill(run_dir: Path, url: str) -> dict[str, Any]:
    """Held against /_sim/stats; its submissions_by_take counts Runware by taskUUID, the others by body."""
    bill = stats(url)
    rows = ledger(run_dir)
    figures: dict[str, Any] = {}
    for name in PROVIDERS:
        mine = by_provider(rows, name)
        charged = sum(r["cost_usd"] or 0.0 for r in mine)
        uncertain = [r for r in mine if r["failure_kind"] == "uncertain"]
        written_off = sum(r["cost_usd"] for r in uncertain)
        billed = bill["providers"][name]["billed_usd"]
        figures[name] = {"billed": billed, "ledger": round(charged, 6), "uncertain": len(uncertain)}
        assert charged - written_off - 1e-6 <= billed <= charged + 1e-6, (name, figures[name])
    counts = bill["submissions_by_take"]
    runware = [n for key, n in counts.items() if UUID.fullmatch(key)]
    others = [n for key, n in counts.items() if not UUID.fullmatch(key)]
    figures["runware"]["dup"] = sum(n - 1 for n in runware)
    figures["aiml+runway dup"] = sum(n - 1 for n in others)
    assert figures["runware"]["dup"] == 0 and figures["runware"]["uncertain"] == 0
    assert figures["runware"]["billed"] == pytest.approx(figures["runware"]["ledger"], abs=1e-6)
    assert figures["aiml+runway dup"] <= figures["aimlapi"]["uncertain"] + figures["runway"]["uncertain"]
    return figures


@pytest.mark.timeout(
    900
)  # 12 runs started and killed by progress, then reruns: 28 s idle, >120 s beside two busy loops
def test_sigkill_campaign_never_pays_twice_and_the_ledger_is_the_bill(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, takes_per_provider=22)
    rng = random.Random(7)
    with standalone.simulator("hostile", time_scale=SCALE, seed=11) as url:
        landed = _kill_campaign(manifest, url, kills=12, rng=rng)
        code, _ = _rerun_until_settled(manifest, url)
        run_dir = tmp_path / "out" / "night"
        figures = _audit_bill(run_dir, url)
    assert landed >= 10, f"only {landed} kills landed before a run finished: the campaign proved little"
    assert code in (0, 1)
    _verified_clips(run_dir)
    rows = ledger(run_dir)
    last = {r["key"]: r for r in rows}
    assert len(last) == 66, "every take reached an end"
    assert all(r["status"] == "done" or r["failure_kind"] == "moderation" for r in last.values())
    print(f"crash campaign: {landed} kills, 66 takes, {figures}")  # noqa: T201 - figures for the README


def test_budget_holds_across_kills(tmp_path: Path) -> None:
    """$2.00 over AIML and Runway (0.25 a take): the bill never passes it, whatever is killed."""
    shots = [shot(f"{p}-shot", p, takes=8, duration=5) for p in ("aimlapi", "runway")]
    manifest = write_manifest(tmp_path, shots, name="night", concurrency=4, budget_usd=2.0)
    rng = random.Random(3)
    with standalone.simulator("hostile", time_scale=SCALE, seed=5) as url:
        _kill_campaign(manifest, url, kills=6, rng=rng)
        code, out = _rerun_until_settled(manifest, url)
        billed = sum(p["billed_usd"] for p in stats(url)["providers"].values())
    rows = ledger(tmp_path / "out" / "night")
    assert billed <= 2.0 + 1e-9, f"billed {billed} over a budget of 2.00"
    assert sum(r["cost_usd"] for r in rows) <= 2.0 + 1e-9
    assert code == 3 and "stopped by the budget" in out, out


def test_cut_downloads_resume_in_place_and_every_paid_clip_is_saved(tmp_path: Path) -> None:
    """Most downloads cut about halfway (seeded): each cut is resumed with one Range request that
    writes at the right offset, so no take refetches from scratch or ends paid but not saved."""
    manifest = write_manifest(tmp_path, [shot("a", "aimlapi", takes=8)], name="night", concurrency=4)
    run_dir = tmp_path / "out" / "night"
    with standalone.simulator("clean", time_scale=0.02, seed=1, truncate=0.8, clip_bytes=4_000_000) as url:
        code, out, err = standalone.run(manifest, url, clock_scale=0.02)
        bill = stats(url)
    rows = ledger(run_dir)
    assert code == 0, out + err
    assert [r["status"] for r in rows] == ["done"] * 8
    assert len(list(run_dir.rglob("*.mp4"))) == 8
    assert bill["faults"]["truncate"] > 8, "the seed cuts most downloads"
    assert bill["downloads"] - bill["faults"]["truncate"] == 8, "each clip's last request completed it"
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(bill["billed_usd"])
