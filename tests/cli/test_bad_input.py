"""Every kind of bad input is exit 2 with one line naming it — never a traceback, a hang or a request.

One table (issue 9, DESIGN §1): each case builds its bad input in a fresh folder, runs the real CLI
(in-process through ``runner.cli.main.main``, or as ``python -m runner`` where the input could hang or
crash the interpreter: FIFOs, devices, huge files), and asserts exit 2, one finding on stderr (one
line, or the manifest listing — ``file:line:column: …`` lines, then ``N problems`` for validate),
no ``Traceback``, under 5 s, and that the simulator the keys and base URLs point at saw nothing:
``/_sim/stats`` shows 0 submissions, 0 polls and 0 downloads after every case.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from runner.cli.main import main
from runner.simulator import Simulator
from tests.cli.test_cli_run import threaded_sim
from tests.engine.helpers import KEY_VARS, URL_VARS

#: CPU seconds (this process's threads and its children's) one bad input may cost: CPU, not wall
#: time, so a loaded machine does not fail it (beside two busy loops a refusal took 6–15 s of
#: wall time, well under 5 s of CPU); a hang costs no CPU and meets pytest's timeout instead.
LIMIT_S = 5.0
M = "m.yaml"
_FINDING = re.compile(r"^\S.*:\d+:\d+: ")


@dataclass(frozen=True)
class Setup:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Kit:
    """A folder with a good image and a good manifest; ``manifest(...)`` writes a variant of it."""

    root: Path

    def shot(self, **changes: Any) -> dict[str, Any]:
        return {"id": "harbor", "prompt": "Slow push-in on the harbor", "image": "a.jpg", **changes}

    def manifest(self, shot: dict[str, Any] | None = None, **top: Any) -> str:
        doc = {
            "version": 1,
            "name": "bad",
            "provider": "runware",
            "output_dir": str(self.root / "out"),
            **top,
            "shots": [shot if shot is not None else self.shot()],
        }
        self.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=False))
        return str(self.root / M)

    def write(self, text: str) -> str:
        (self.root / M).write_text(text, encoding="utf-8")
        return str(self.root / M)

    def image(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return name

    def link(self, name: str, target: str) -> str:
        os.symlink(target, self.root / name)
        return name


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _cut_jpeg(kit: Kit) -> str:
    """A JPEG of noise (tens of KB) cut to its first 2000 bytes, as a failed copy leaves it."""
    rng = random.Random(9)
    noise = bytes(rng.getrandbits(8) for _ in range(320 * 180 * 3))
    return kit.image("cut.jpg", _encode(Image.frombytes("RGB", (320, 180), noise), "JPEG")[:2000])


def _cut_png(kit: Kit) -> str:
    whole = _encode(Image.new("RGB", (64, 48)), "PNG")
    return kit.image("cut.png", whole[: len(whole) - 20])


def _png_bomb(kit: Kit) -> str:
    """10000×10000 one-bit pixels: a few KB on disk, 100 megapixels decoded."""
    return kit.image("bomb.png", _encode(Image.new("1", (10000, 10000)), "PNG"))


def _directory(kit: Kit, name: str) -> str:
    (kit.root / name).mkdir()
    return name


def _loop(kit: Kit, name: str, other: str) -> str:
    kit.link(name, other)
    kit.link(other, name)
    return name


def _fifo(kit: Kit, name: str) -> str:
    os.mkfifo(kit.root / name)
    return name


def _sparse(kit: Kit, name: str, size: int, head: bytes = b"") -> str:
    with (kit.root / name).open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return name


def _run(kit: Kit, *extra: str, env: dict[str, str] | None = None, **top: Any) -> Setup:
    return Setup(["run", kit.manifest(**top), *extra], env or {})


def _run_shot(kit: Kit, **changes: Any) -> Setup:
    return Setup(["run", kit.manifest(kit.shot(**changes))])


def _image_case(make: Callable[[Kit], str]) -> Callable[[Kit], Setup]:
    return lambda kit: _run_shot(kit, image=make(kit))


def _deep_flow(kit: Kit) -> Setup:
    text = "version: 1\nname: bad\nprovider: runware\nshots: " + "[" * 100_000 + "]" * 100_000 + "\n"
    return Setup(["validate", kit.write(text)])


def _deep_block(kit: Kit) -> Setup:
    body = "".join("  " * i + f"k{i}:\n" for i in range(1, 200))
    return Setup(["validate", kit.write("version: 1\nname: bad\nextra:\n" + body)])


def _many_nodes(kit: Kit) -> Setup:
    seeds = ", ".join(["1"] * 450_000)
    return Setup(["run", kit.write(f"version: 1\nname: bad\nprovider: runware\nseeds: [{seeds}]\n")])


def _laughs(kit: Kit) -> Setup:
    lines = ["version: 1", "name: bad", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    return Setup(["validate", kit.write("\n".join(lines) + "\n")])


def _big_manifest(size: int) -> Callable[[Kit], Setup]:
    """A good manifest followed by comment lines up to ``size`` bytes."""

    def build(kit: Kit) -> Setup:
        path = Path(kit.manifest())
        line = b"# " + b"x" * 97 + b"\n"
        with path.open("ab") as fh:
            fh.write(line * (size // len(line)))
        return Setup(["run", str(path)])

    return build


def _key(value: str) -> Callable[[Kit], Setup]:
    return lambda kit: _run(kit, env={"RUNWARE_API_KEY": value})


def _output_file(kit: Kit) -> Setup:
    (kit.root / "taken").write_text("a file\n")
    return _run(kit, output_dir=str(kit.root / "taken"))


def _output_under_file(kit: Kit) -> Setup:
    (kit.root / "taken").write_text("a file\n")
    return _run(kit, output_dir=str(kit.root / "taken" / "deeper"))


def _output_arg_file(kit: Kit) -> Setup:
    (kit.root / "taken").write_text("a file\n")
    return Setup(["run", kit.manifest(), "--output", str(kit.root / "taken")])


def _manifest_path(make: Callable[[Kit], str]) -> Callable[[Kit], Setup]:
    return lambda kit: Setup(["validate", str(kit.root / make(kit))])


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Kit], Setup]
    says: str  # a regex the one line must match: names the file:line:column, argument or variable
    spawn: bool = False  # run as `python -m runner`: the input could hang or kill the interpreter
    slow: bool = False


_ESCAPED_KEY: dict[str, Any] = {"\x1b[31mred\nline": 1}
_A_JPG = "a.jpg"
CASES = [
    # -- the manifest file itself --------------------------------------------------------------
    Case("manifest-missing", _manifest_path(lambda k: "nope.yaml"), r"nope\.yaml: cannot read the manifest"),
    Case("manifest-directory", _manifest_path(lambda k: _directory(k, "d.yaml")), "a directory"),
    Case(
        "manifest-fifo", _manifest_path(lambda k: _fifo(k, "f.yaml")), r"f\.yaml is a named pipe", spawn=True
    ),
    Case(
        "manifest-dev-zero",
        _manifest_path(lambda k: k.link("z.yaml", "/dev/zero")),
        "character device",
        spawn=True,
    ),
    Case(
        "manifest-symlink-loop",
        _manifest_path(lambda k: _loop(k, "l1.yaml", "l2.yaml")),
        "symbolic links",
    ),
    Case("manifest-6mb", _big_manifest(6 * 1024 * 1024), r"is 6\.0 MB; at most 5\.0 MB"),
    Case(
        "manifest-50mb",
        _big_manifest(50 * 1024 * 1024),
        r"is 50\.0 MB; at most 5\.0 MB",
        spawn=True,
        slow=True,
    ),
    Case(
        "manifest-not-utf8",
        lambda k: Setup(["run", str(k.root / k.image(M, b"version: 1\nname: \xff\n"))]),
        r":2:7: .*UTF-8",
    ),
    Case(
        "manifest-nul-byte",
        lambda k: Setup(["run", k.write("version: 1\nname: a\x00b\n")]),
        r":2:8: .*U\+0000",
    ),
    Case("manifest-empty", lambda k: Setup(["run", k.write("")]), r":1:1: the file is empty"),
    Case(
        "manifest-two-docs", lambda k: Setup(["run", k.write("version: 1\n---\nversion: 1\n")]), "second one"
    ),
    Case("deep-flow-nesting", _deep_flow, r":4:\d+: lists and mappings are nested more than 20 deep"),
    Case("deep-block-nesting", _deep_block, r":\d+:\d+: lists and mappings are nested more than 20 deep"),
    Case("deep-flow-nesting-spawned", _deep_flow, "nested more than 20 deep", spawn=True),
    Case("too-many-values", _many_nodes, r":4:\d+: the document has more than 200000 values"),
    Case("alias-bomb", _laughs, "more than 200000 values"),
    Case(
        "unknown-key-with-escape",
        lambda k: Setup(["run", k.manifest(**_ESCAPED_KEY)]),
        r"unknown key '\\x1b\[31mred\\nline'",
    ),
    Case(
        "manifest-name-newline",
        _manifest_path(lambda k: "two\nlines.yaml"),
        r"two\\nlines\.yaml: cannot read",
    ),
    # -- fields ----------------------------------------------------------------------------------
    Case("shot-id-300", lambda k: _run_shot(k, id="a" * 300), r"shots\[0\]\.id: is 300 characters long"),
    Case("name-300", lambda k: _run(k, name="a" * 300), r":\d+:\d+: name: is 300 characters long"),
    Case(
        "prompt-nul", lambda k: _run_shot(k, prompt="a\x00b"), r"shots\[0\]\.prompt: holds a control.*U\+0000"
    ),
    Case(
        "prompt-ansi", lambda k: _run_shot(k, prompt="red \x1b[31mALERT"), r"prompt: .*U\+001B at character 5"
    ),
    Case("prompt-del", lambda k: _run_shot(k, prompt="a\x7fb"), r"prompt: .*U\+007F"),
    Case("prompt-cr", lambda k: _run_shot(k, prompt="a\rb"), r"prompt: .*U\+000D"),
    Case("prompt-c1", lambda k: _run_shot(k, prompt="a\x9bb"), r"prompt: .*U\+009B"),
    Case(
        "tag-escape",
        lambda k: _run_shot(k, tags=["ok", "\x1b[2J"]),
        r"shots\[0\]\.tags\[1\]: holds a control",
    ),
    Case("prompt-blank", lambda k: _run_shot(k, prompt="   "), r"prompt: is blank"),
    # -- images ----------------------------------------------------------------------------------
    Case(
        "url-credentials", lambda k: _run_shot(k, image="https://u:p4ss@cdn.example.com/a.jpg"), "user:pass@"
    ),
    Case(
        "url-user-only",
        lambda k: _run_shot(k, image="https://me@cdn.example.com/a.jpg"),
        "user name or password",
    ),
    Case("url-plain-http", lambda k: _run_shot(k, image="http://cdn.example.com/a.jpg"), "plain http"),
    Case("url-ftp", lambda k: _run_shot(k, image="ftp://cdn.example.com/a.jpg"), "unsupported URL scheme"),
    Case("url-control", lambda k: _run_shot(k, image="https://cdn.example.com/a\nb.jpg"), r"U\+000A"),
    Case("image-path-nul", lambda k: _run_shot(k, image="a\x00.jpg"), r"image: .*U\+0000"),
    Case("image-fifo", _image_case(lambda k: _fifo(k, "p.jpg")), r"p\.jpg is a named pipe", spawn=True),
    Case(
        "image-dev-zero", _image_case(lambda k: k.link("z.jpg", "/dev/zero")), "character device", spawn=True
    ),
    Case("image-loop", _image_case(lambda k: _loop(k, "l1.jpg", "l2.jpg")), "symbolic"),
    Case("image-directory", _image_case(lambda k: _directory(k, "d.jpg")), "is a directory"),
    Case("image-missing", _image_case(lambda k: "gone.jpg"), r"gone\.jpg not found"),
    Case(
        "image-truncated-jpeg",
        _image_case(_cut_jpeg),
        "damaged or truncated JPEG",
    ),
    Case(
        "image-truncated-png",
        _image_case(_cut_png),
        "damaged or truncated PNG",
    ),
    Case(
        "image-png-bomb",
        _image_case(_png_bomb),
        r"10000×10000 \(100\.0 megapixels\); at most 40",
    ),
    Case(
        "image-text-as-png",
        _image_case(lambda k: k.image("t.png", b"not a picture\n")),
        "not a JPEG, PNG or WebP",
    ),
    Case("image-huge-sparse", _image_case(lambda k: _sparse(k, "h.jpg", 65 * 1024 * 1024)), "far over every"),
    Case(
        "data-uri-bad-base64", lambda k: _run_shot(k, image="data:image/png;base64,@@@"), "not valid base64"
    ),
    # -- output directory ------------------------------------------------------------------------
    Case(
        "output-dir-is-file", _output_file, r"m\.yaml:4:\d+: output_dir: .*taken is a file, not a directory"
    ),
    Case("output-dir-under-file", _output_under_file, r"taken is a file, not a directory"),
    Case("output-arg-is-file", _output_arg_file, r"--output: .*taken is a file"),
    Case("output-dir-nul", lambda k: _run(k, output_dir="out\x00x"), "NUL"),
    # -- keys and base URLs ----------------------------------------------------------------------
    Case("key-escape", _key("rw-abc\x1b[0mdef"), r"RUNWARE_API_KEY: .*U\+001B"),
    Case("key-newline-inside", _key("rw-abc\ndef"), r"RUNWARE_API_KEY: .*U\+000A"),
    Case("key-non-ascii", _key("rw-abcdéf"), r"RUNWARE_API_KEY: .*U\+00E9"),
    Case("key-escape-spawned", _key("rw-abc\x1bdef"), r"RUNWARE_API_KEY", spawn=True),
    Case("key-missing", _key(""), r"RUNWARE_API_KEY .*--simulate"),
    Case(
        "base-url-control",
        lambda k: _run(k, env={"RUNWARE_BASE_URL": "http://127.0.0.1:9/\tx"}),
        "RUNWARE_BASE_URL",
    ),
    Case(
        "base-url-credentials",
        lambda k: _run(k, env={"RUNWARE_BASE_URL": "https://u:p@h.example"}),
        "credentials",
    ),
    Case(
        "base-url-plain-http", lambda k: _run(k, env={"RUNWARE_BASE_URL": "http://h.example"}), "plain http"
    ),
    # -- arguments -------------------------------------------------------------------------------
    Case(
        "time-scale-zero",
        lambda k: _run(k, "--sim-time-scale", "0"),
        r"--sim-time-scale: must be more than 0",
    ),
    Case(
        "time-scale-negative", lambda k: _run(k, "--sim-time-scale", "-1"), r"--sim-time-scale: must be more"
    ),
    Case(
        "time-scale-nan",
        lambda k: _run(k, "--sim-time-scale", "nan"),
        r"--sim-time-scale: 'nan' is not a finite",
    ),
    Case(
        "time-scale-huge",
        lambda k: _run(k, "--sim-time-scale", "1e300"),
        r"--sim-time-scale: must be at most",
    ),
    Case("budget-zero", lambda k: _run(k, "--budget", "0"), r"--budget: must be more than 0"),
    Case("budget-inf", lambda k: _run(k, "--budget", "inf"), r"--budget: 'inf' is not a finite number"),
    Case("budget-text", lambda k: _run(k, "--budget", "ten"), r"--budget: 'ten' is not a number"),
    Case("concurrency-zero", lambda k: _run(k, "--concurrency", "0"), r"--concurrency: must be at least 1"),
    Case(
        "concurrency-float",
        lambda k: _run(k, "--concurrency", "2.5"),
        r"--concurrency: '2\.5' is not a whole number",
    ),
    Case("deadline-bad", lambda k: _run(k, "--deadline", "25:99"), r"deadline '25:99' is not"),
    Case("simulate-port", lambda k: Setup(["simulate", "--port", "70000"]), r"--port: must be a TCP port"),
    Case(
        "simulate-time-scale",
        lambda k: Setup(["simulate", "--time-scale", "0"]),
        r"--time-scale: must be more",
    ),
    Case("unknown-option", lambda k: Setup(["run", k.manifest(), "--frobnicate"]), "unrecognized arguments"),
    Case("unknown-command", lambda k: Setup(["frobnicate"]), "invalid choice"),
    Case("plan-bad-manifest", lambda k: Setup(["plan", k.manifest(k.shot(prompt="\x1b"))]), r"prompt: holds"),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with threaded_sim() as running:
        yield running


def _traffic(sim: Simulator) -> dict[str, int]:
    with urllib.request.urlopen(f"{sim.base_url}/_sim/stats", timeout=5) as answer:
        stats = json.load(answer)
    counts = {"downloads": stats["downloads"]}
    for name, figures in stats["providers"].items():
        counts |= {f"{name}.submissions": figures["submissions"], f"{name}.polls": figures["poll_requests"]}
    return counts


def _env(sim: Simulator, overrides: dict[str, str]) -> dict[str, str]:
    env = {var: sim.keys[p] for p, var in KEY_VARS.items()} | {var: sim.base_url for var in URL_VARS.values()}
    return env | overrides


def _in_process(
    setup: Setup, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, str]:
    for var in ("AIML_API_KEY", *KEY_VARS.values(), *URL_VARS.values()):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        if value:
            monkeypatch.setenv(var, value)
    code = main(setup.argv)
    return code, capsys.readouterr().err


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def _spawned(setup: Setup, env: dict[str, str]) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if k not in env} | {k: v for k, v in env.items() if v}
    done = subprocess.run(
        [sys.executable, "-m", "runner", *setup.argv],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here, with the command named, rather than at pytest's timeout
        env=full,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode, done.stderr


def assert_one_finding(err: str) -> list[str]:
    """One line; or the manifest listing: ``file:line:col: …`` lines, then (validate) ``N problems``."""
    lines = err.rstrip("\n").split("\n")
    assert "Traceback" not in err and lines != [""], err
    if len(lines) == 1:
        return lines
    *found, last = lines
    if re.search(r": \d+ problems?$", last):
        assert int(last.rsplit(" ", 2)[-2]) == len(found), err
    else:
        found = lines
    assert all(_FINDING.match(line) for line in found), err
    return found


def _params() -> list[Any]:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_exit_2_with_one_line_and_nothing_sent(
    case: Case,
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kit = Kit(tmp_path)
    kit.image(_A_JPG, _encode(Image.new("RGB", (320, 180), (40, 90, 160)), "JPEG"))
    setup = case.build(kit)
    env = _env(sim, setup.env)
    started = _cpu_seconds()
    if case.spawn:
        code, err = _spawned(setup, env)
    else:
        code, err = _in_process(setup, env, monkeypatch, capsys)
    elapsed = _cpu_seconds() - started
    assert code == 2, err
    found = assert_one_finding(err)
    assert any(re.search(case.says, line) for line in found), err
    assert elapsed < LIMIT_S, f"{case.name} took {elapsed:.1f} s of CPU"
    assert not any(_traffic(sim).values()), _traffic(sim)
    assert not (tmp_path / "out").exists(), "bad input must leave no run directory"


def test_the_table_is_at_least_forty_cases() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 40


def test_schema_into_a_closed_pipe_exits_quietly() -> None:
    """`previz schema | head`: the reader went away; no BrokenPipeError, nothing on stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "runner", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # before the child can write a byte: its first write meets a closed pipe
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=30) == 0, err
    assert err == ""
