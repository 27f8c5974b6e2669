"""A provider that hands the key back, and terminal escapes, through a real ``previz run`` (issue 22,
points 2 and 8).

The echo server (:mod:`tests.hostile.echo`) answers in all three wire shapes: failure messages,
result URLs and redirect ``Location`` headers that hold the key in every form, task ids holding the
key or ``\\x1b[2J``/an OSC title/CR-LF. After the run, every byte it left — stdout, stderr, and every
file of the run directory (ledger.csv/jsonl, journal.sqlite, report.html, retry.yaml, run.log,
summary.json) — is searched for each key: any 6-character piece in any case, its URL-encoded
forms, its base64 forms (standard, URL-safe, ``user:key``), and for raw control characters.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from runner.cli.main import main
from tests.engine.helpers import KEY_VARS, URL_VARS, shot, write_manifest
from tests.hostile.echo import MODES, Echo, echo_app
from tests.test_redact import threaded_server

#: one key per provider, shaped like real ones (with the + and / of base64-ish keys)
KEYS = {
    "aimlapi": "sk-live-q7Vd2Lx9Kp4Zr8Tn1Wm6Yb3Hc5Jf0Gs+Ae/Ru",
    "runware": "sk-live-Zt4Pq8Nx2Vb6Lm0Kd9Rc3Wf7Hj1Ys5Ge+Ta/Uo",
    "runway": "sk-live-Mc1Xr5Bv9Qn3Tk7Lp2Wd6Zf0Hs4Jy8Ga+Ue/Ri",
}
#: Runware's task ids are ours (taskUUIDs): a hostile id cannot come from it
HANDLE_MODES = ("handle-key", "handle-escape")
RUN_FILES = (
    "ledger.csv",
    "ledger.jsonl",
    "journal.sqlite",
    "report.html",
    "retry.yaml",
    "run.log",
    "summary.json",
)
#: the escape sequences the echo server sends (a SQLite file holds bytes 0x1b and 0x07 of its own)
SEQUENCES = ("\x1b[2J", "\x1b]0;", "pwned\x07", "\x1b[31m", "\\u001b", "\\x1b")


def _b64_pieces(key: str) -> set[str]:
    """6-character windows of the key's base64 forms, the characters a prefix or suffix cannot change."""
    std, safe = base64.b64encode(key.encode()).decode(), base64.urlsafe_b64encode(key.encode()).decode()
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    forms = (std[:-4], safe[:-4], basic[8:-4])
    return {f[i : i + 6] for f in forms for i in range(len(f) - 5)}


def found_in(text: str, key: str) -> list[str]:
    """How ``key`` shows in ``text``: 'piece' (6+ characters, any case, plain or URL-encoded), 'base64'."""
    low = text.lower()
    plain = {f.lower() for f in (key, quote(key, safe=""), quote(key), quote_plus(key))}
    hits = []
    if any(f[i : i + 6] in low for f in plain for i in range(len(f) - 5)):
        hits.append("piece")
    if any(piece in text for piece in _b64_pieces(key)):
        hits.append("base64")
    return hits


def controls_in(text: str, *, terminal: bool = False) -> list[str]:
    """The echo server's escape sequences in ``text`` (raw or JSON-escaped); on a terminal stream,
    any ESC, BEL or CR at all."""
    found = [repr(s) for s in SEQUENCES if s in text]
    return found + ([repr(c) for c in ("\x1b", "\x07", "\r", "\x9b") if c in text] if terminal else [])


def _shots() -> list[dict[str, object]]:
    return [
        shot(f"{p}-{mode}", p, prompt=f"A slow dolly shot mode={mode}")
        for p in KEYS
        for mode in MODES
        if p != "runware" or mode not in HANDLE_MODES
    ]


def test_no_key_and_no_escape_reaches_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    shots = _shots()
    manifest = write_manifest(tmp_path, shots, budget_usd=50, concurrency=3)
    echo = Echo()
    with threaded_server(echo_app(echo)) as base_url:
        echo.base_url = base_url
        for provider, key in KEYS.items():
            monkeypatch.setenv(KEY_VARS[provider], key)
            monkeypatch.setenv(URL_VARS[provider], base_url)
        code = main(["run", str(manifest), "--clock-scale", "0.01"])
    out, err = capfd.readouterr()
    run_dir = tmp_path / "out" / "t"

    outputs = {"stdout": out, "stderr": err}
    for name in RUN_FILES:
        outputs[name] = (run_dir / name).read_bytes().decode("utf-8", "replace")
    for path in run_dir.rglob("*"):  # whatever else the run left (journal -wal, notes)
        if path.is_file() and path.name not in RUN_FILES:
            outputs[path.name] = path.read_bytes().decode("utf-8", "replace")
    leaks = {
        f"{where}: {provider}": hits
        for where, text in outputs.items()
        for provider, key in KEYS.items()
        if (hits := found_in(text, key))
    }
    escapes = {
        where: hits
        for where, text in outputs.items()
        if (hits := controls_in(text, terminal=where in ("stdout", "stderr")))
    }
    assert not leaks and not escapes, (leaks, escapes)

    rows = [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text("utf-8").splitlines()]
    by = {r["shot"]: r for r in rows}
    assert code == 1 and len(by) == len(shots), err
    assert all(r["status"] == "failed" for r in rows), "no take of a hostile provider is kept as done"
    for provider in KEYS:
        assert by[f"{provider}-expired"]["failure_kind"] == "download"
        assert by[f"{provider}-location"]["failure_kind"] == "download"
        assert "***" in by[f"{provider}-message"]["failure_message"], "the message is kept, redacted"
    for provider in ("aimlapi", "runway"):
        for mode in HANDLE_MODES:
            row = by[f"{provider}-{mode}"]
            assert (row["failure_kind"], row["task_id"]) == ("uncertain", None), row
            assert row["cost_usd"] > 0, "a task id we refuse may still bill: charged"
    assert echo.seen["cdn"] and echo.seen["hop"] and echo.seen["runware"]


@pytest.mark.parametrize(
    "text",
    [
        f"{KEYS['runway']}",
        f"upper {KEYS['runway'].upper()}",
        f"url {quote(KEYS['runway'], safe='')}",
        f"b64 {base64.b64encode(KEYS['runway'].encode()).decode()}",
        f"basic {base64.b64encode(('me:' + KEYS['runway']).encode()).decode()}",
        f"piece {KEYS['runway'][11:17]}",
    ],
)
def test_the_leak_finder_finds(text: str) -> None:
    """The check above can fail: each form of the key is found by it."""
    assert found_in(text, KEYS["runway"])


def _refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    command: str,
    **env: str,
) -> tuple[int, str, Echo]:
    """``previz <command>`` on a Runway manifest with ``env``, against the echo server (counting)."""
    manifest = write_manifest(tmp_path, [shot("a", "runway")])
    echo = Echo()
    with threaded_server(echo_app(echo)) as base_url:
        monkeypatch.setenv(URL_VARS["runway"], base_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main([command, str(manifest)])
    out, err = capfd.readouterr()
    return code, out + err, echo


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize(
    ("key", "why"),
    [("Ab3$x9Q", "shorter than 8 characters"), ("sk-live-" + "Qx7" * 34_000, "longer than 4096 characters")],
    ids=["7-characters", "100-kB"],
)
def test_a_key_too_short_or_too_long_is_refused_offline(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    command: str,
    key: str,
    why: str,
) -> None:
    code, said, echo = _refused(tmp_path, monkeypatch, capfd, command, RUNWAYML_API_SECRET=key)
    assert code == 2, said
    assert said.strip().count("\n") == 0, f"one line: {said!r}"
    assert "RUNWAYML_API_SECRET" in said and why in said
    assert key[:7] not in said and not found_in(said, key), "the value is never shown"
    assert not echo.seen and not echo.modes, "nothing was sent"


def test_an_unparseable_base_url_is_named_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key = KEYS["runway"]
    code, said, echo = _refused(
        tmp_path, monkeypatch, capfd, "run", RUNWAYML_API_SECRET=key, RUNWAYML_BASE_URL=f"http://u:{key}@[::1"
    )
    assert code == 2, said
    assert said.strip().count("\n") == 0 and "RUNWAYML_BASE_URL" in said and "not a valid URL" in said
    assert not found_in(said, key), said
    assert not echo.seen
