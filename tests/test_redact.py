"""Keys are redacted in every form a server might echo them: whole, in part, upper-cased, URL-encoded,
base64-encoded.

The rule (:mod:`runner.redact`): any run of 6 or more characters of a key, case-insensitively, in
the key's plain, URL-encoded or base64 form, is replaced wherever it appears. The end-to-end test sends a
real run at a loopback server whose 401 echoes the key in all those forms, then reads every byte
the run left behind — stdout, stderr, ledger.csv, ledger.jsonl, run.log.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import anyio
import anyio.to_thread
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.cli.main import main
from runner.providers.base import ProviderConfig, Secret
from runner.redact import MIN_RUN, REDACTED, Redactor, clean, needles, redact
from runner.reports.runlog import RunLog
from tests.engine.helpers import shot, write_manifest

KEY = "key_S3CRET_9d8c7b6a5f4e"
PLUS_KEY = "sk+live/AbC=123xyz789"


def leaks(text: str, key: str) -> list[str]:
    """Every 6-character piece of ``key`` (or of its URL-encoded forms) still in ``text``, any case,
    and of its base64 forms (whole-key alignment, away from the ends a neighbour can change)."""
    low = text.lower()
    forms = {key, quote(key, safe=""), quote(key)}
    plain = [
        f[i : i + MIN_RUN]
        for f in forms
        for i in range(len(f) - MIN_RUN + 1)
        if f[i : i + MIN_RUN].lower() in low
    ]
    encoded = [base64.b64encode(key.encode()).decode(), base64.urlsafe_b64encode(key.encode()).decode()]
    inner = [e[:-4] for e in encoded]
    return plain + [
        f[i : i + MIN_RUN] for f in inner for i in range(len(f) - MIN_RUN + 1) if f[i : i + MIN_RUN] in text
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"invalid key {KEY}.", f"invalid key {REDACTED}."),
        (f"invalid key {KEY[:13]}…{KEY[-2:]}****", f"invalid key {REDACTED}…{KEY[-2:]}****"),
        (f"KEY IS {KEY.upper()}!", f"KEY IS {REDACTED}!"),
        (f"key is {KEY.swapcase()[3:15]} (middle)", f"key is {REDACTED} (middle)"),
        (f"exactly 6: {KEY[4:10]}|", f"exactly 6: {REDACTED}|"),
        (f"only 5: {KEY[4:9]}|", f"only 5: {KEY[4:9]}|"),
        (f"twice {KEY}{KEY} and {KEY[2:10]}", f"twice {REDACTED} and {REDACTED}"),
        ("nothing to see here", "nothing to see here"),
    ],
    ids=[
        "whole",
        "partial-echo",
        "upper",
        "mixed-case-middle",
        "run-of-6",
        "run-of-5-kept",
        "repeats",
        "none",
    ],
)
def test_runs_of_six_or_more_are_redacted(text: str, expected: str) -> None:
    assert redact(text, KEY) == expected
    assert Redactor([KEY])(text) == expected


@pytest.mark.parametrize(
    "shown",
    [
        quote(PLUS_KEY, safe=""),
        quote(PLUS_KEY, safe="").lower(),
        quote(PLUS_KEY),
        quote(PLUS_KEY, safe="")[:14],
    ],
    ids=["encoded", "encoded-lower-hex", "encoded-path", "encoded-partial"],
)
def test_url_encoded_forms_are_redacted(shown: str) -> None:
    text = f"GET https://cdn.example.com/x?token={shown}&size=2"
    out = redact(text, PLUS_KEY)
    assert shown not in out and REDACTED in out
    assert out.startswith("GET https://cdn.example.com/x?token=") and out.endswith("&size=2")


def test_short_secrets_are_matched_whole_and_tiny_ones_ignored() -> None:
    assert redact("token abcdef here", "abcdef") == f"token {REDACTED} here"
    assert redact("token ABCDEF here", "abcdef") == f"token {REDACTED} here"
    assert redact("token abcde here", "abcde") == f"token {REDACTED} here"
    assert redact("abc", "abc") == "abc", "under 4 characters is not a secret worth redacting"


def test_characters_that_lower_case_to_two_keep_positions() -> None:
    """'İ'.lower() is two characters; the rest of the text must still line up with the matches."""
    text = f"İİ {KEY.upper()} İ tail"
    assert redact(text, KEY) == f"İİ {REDACTED} İ tail"


_KEY_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


def _encoded(piece: str, how: int) -> str:
    """``piece`` as a server might write it back: plain, URL-encoded, base64 (standard, URL-safe,
    or of ``user:piece`` as in a Basic-auth header)."""
    raw = piece.encode()
    forms = (
        piece,
        quote(piece, safe=""),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(b"user:" + raw).decode()[8:],  # the part that is the key's, not "user:"'s
    )
    return forms[how]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    key=st.text(_KEY_CHARS, min_size=8, max_size=48),
    pieces=st.lists(
        st.tuples(st.integers(0, 47), st.integers(6, 48), st.booleans(), st.integers(0, 4)), max_size=6
    ),
    filler=st.lists(st.text(max_size=12), min_size=7, max_size=7),
)
def test_no_six_character_run_survives(
    key: str, pieces: list[tuple[int, int, bool, int]], filler: list[str]
) -> None:
    """Slices of the key, some upper-cased, some URL- or base64-encoded, between random text
    (control characters included): no 6-character piece of the key survives, no encoded slice
    survives whole, and no control character is left."""
    parts, inserted = [filler[0]], []
    for n, (start, length, upper, how) in enumerate(pieces):
        piece = key[start : start + length] if start < len(key) else key
        piece = piece.upper() if upper and how < 2 else piece
        shown = _encoded(piece, how)
        parts += [shown, filler[n + 1]]
        if len(piece) >= MIN_RUN and len(shown) >= MIN_RUN:
            inserted.append(shown)
    out = clean("".join(parts), needles([key]), 10**6)
    assert not leaks(out, key)
    assert not [shown for shown in inserted if shown.lower() in out.lower()]
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out)


def test_base64_forms_are_redacted_at_every_alignment() -> None:
    key = "sk-live-q7Vd2Lx9Kp4Zr8Tn1Wm6Yb3Hc5Jf0Gs+Ae/Ru"
    for prefix in ("", "u:", "user:", "Bearer "):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode((prefix + key).encode()).decode()
            out = redact(f"echo {encoded} end", key)
            left = out.replace(REDACTED, "").removeprefix("echo ").removesuffix(" end")
            assert REDACTED in out and len(left) <= len(prefix) * 2 + 4, (prefix, out)


def test_controls_go_first_so_a_split_key_is_still_caught() -> None:
    key = "sk-live-q7Vd2Lx9Kp4Zr8Tn1Wm6Yb3Hc5Jf0Gs+Ae/Ru"
    split = key[:12] + "\x00\x1b\u200b" + key[12:20]
    found = needles([key])
    assert clean(f"key {split} and {key[20:26].swapcase()}!", found, 500) == f"key {REDACTED} and {REDACTED}!"
    assert clean("a\x1b[2Jb\x1b]0;t\x07c\r\nd\u202eq", found, 500) == "a[2Jb]0;tc  dq"
    assert clean("x" * 1000, found, 10) == "x" * 10 + "…"


def test_run_log_writes_no_piece_of_a_key(tmp_path: Path) -> None:
    from runner.engine.events import Event, EventKind
    from tests.providers.helpers import make_take

    log = RunLog(tmp_path / "run.log", Redactor([KEY, PLUS_KEY]))
    take = make_take("runway")
    for message in (f"401: {KEY[:12]}…", f"HINT: {KEY.upper()}", f"url ?k={quote(PLUS_KEY, safe='')}"):
        log(Event(EventKind.WARNING, take, message=message))
    log.close()
    text = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert not leaks(text, KEY) and not leaks(text, PLUS_KEY)
    assert text.count(REDACTED) == 3


def test_wire_scrub_uses_the_same_rule() -> None:
    from runner.providers._http import Wire

    config = ProviderConfig(name="runway", base_url="https://api.example", api_key=Secret(KEY))
    wire = Wire(config, session=None)  # type: ignore[arg-type]  # scrub never touches the session
    assert wire.scrub(f"bad key {KEY[:10].upper()}…") == f"bad key {REDACTED}…"


# -- end to end: a 401 that echoes the key every way, through a real run ----------------------


def _echo_app(key: str) -> web.Application:
    """Answers 401 with the key echoed partially, upper-cased and URL-encoded — except Runway's
    account check, which passes: a key revoked between the pre-flight and the submit."""

    async def account(request: web.Request) -> web.Response:
        return web.json_response({"creditBalance": 1000, "tier": {"models": {}}})

    async def refuse(request: web.Request) -> web.Response:
        message = (
            f"invalid API key {key[:12]}…{key[-2:]}****; did you mean {key.upper()}? "
            f"see https://docs.example.com/keys?key={quote(key, safe='')}"
        )
        return web.json_response({"error": message}, status=401)

    app = web.Application()
    app.router.add_get("/v1/organization", account)
    app.router.add_route("*", "/{tail:.*}", refuse)
    return app


@contextmanager
def threaded_server(app: web.Application) -> Iterator[str]:
    """``app`` on 127.0.0.1 on its own thread and event loop; yields its base URL."""
    box: dict[str, str] = {}
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        http = TestServer(app, host="127.0.0.1")
        await http.start_server()
        box["url"] = str(http.make_url("")).rstrip("/")
        ready.set()
        try:
            await anyio.to_thread.run_sync(stop.wait)
        finally:
            await http.close()

    thread = threading.Thread(target=anyio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10), "server did not start"
    try:
        yield box["url"]
    finally:
        stop.set()
        thread.join(10)


def test_a_401_echoing_the_key_leaves_no_piece_of_it_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key = "key_live_S3cret+Tok/en9d8c7b6a"
    manifest = write_manifest(tmp_path, [shot("a", "runway")])
    with threaded_server(_echo_app(key)) as base_url:
        monkeypatch.setenv("RUNWAYML_API_SECRET", key)
        monkeypatch.setenv("RUNWAYML_BASE_URL", base_url)
        code = main(["run", str(manifest)])
    out, err = capfd.readouterr()
    assert code == 1, err
    run_dir = tmp_path / "out" / "t"
    files = {
        name: (run_dir / name).read_text(encoding="utf-8")
        for name in ("ledger.csv", "ledger.jsonl", "run.log")
    }
    assert "auth" in files["ledger.csv"], "the take failed on its key, and the ledger says so"
    assert REDACTED in files["ledger.jsonl"], "the echoed message reached the ledger, redacted"
    for where, text in {"stdout": out, "stderr": err, **files}.items():
        assert not leaks(text, key), where


def test_the_simulators_keys_are_no_secret(tmp_path: Path) -> None:
    """``sim-runway-key`` holds "runway": redacting it would turn every provider name into ***."""
    manifest = write_manifest(tmp_path, [shot("a", "runway")])
    assert main(["run", str(manifest), "--simulate", "--sim-time-scale", "0.01"]) == 0
    log = (tmp_path / "out" / "t" / "run.log").read_text(encoding="utf-8")
    assert '"provider": "runway"' in log
    assert REDACTED not in log
