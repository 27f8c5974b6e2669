"""runner/netloc.py: the one loopback test, the one fetchability rule, the one URL redactor."""

from __future__ import annotations

import pytest

from runner.manifest import images
from runner.netloc import fetch_problem, is_loopback, safe_url
from runner.providers import registry
from runner.simulator import inputs


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_there_is_one_is_loopback() -> None:
    """One for the runner; the simulator keeps its own (DESIGN §6: it imports nothing from runner/)."""
    assert vars(registry)["is_loopback"] is is_loopback
    assert vars(images)["_is_loopback"] is is_loopback
    assert vars(inputs)["is_loopback"] is not is_loopback
    assert not any(
        name.startswith("runner.") and not name.startswith("runner.simulator") for name in _imports(inputs)
    )


def _imports(module: object) -> set[str]:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://cdn.example/x.mp4", None),
        ("HTTPS://cdn.example/x.mp4", None),
        ("http://127.0.0.1:8080/x.mp4", None),
        ("http://LOCALHOST./x.mp4", None),
        ("http://[::1]/x.mp4", None),
        ("http://cdn.example/x.mp4", "plain http"),
        ("http://127.0.0.1.nip.io/x.mp4", "plain http"),
        ("file:///etc/passwd", "scheme file:"),
        ("ftp://cdn.example/x.mp4", "scheme ftp:"),
        ("javascript:alert(1)", "scheme javascript:"),
        ("data:video/mp4;base64,AAAA", "scheme data:"),
        ("garbage", "scheme (none)"),
        ("https:///x.mp4", "no host"),
        ("http://[zz/", "not a valid URL"),
    ],
)
def test_fetch_problem(url: str, reason: str | None) -> None:
    problem = fetch_problem(url)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://cdn.example/x.mp4?_jwt=abc&w=1", "https://cdn.example/x.mp4?w=1"),
        ("https://user:pw@api.example/v1#frag", "https://api.example/v1"),
        ("ftp://alice:hunter2@cdn.example/x?Signature=zz&Key-Pair-Id=k&Policy=p", "ftp://cdn.example/x"),
        (
            "https://s3.example/x?X-Amz-Credential=c&X-Amz-Security-Token=t&X-Amz-Date=d",
            "https://s3.example/x?X-Amz-Date=d",
        ),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("http://[zz/", "(unparseable URL)"),
    ],
)
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_a_long_url_is_cut_for_messages() -> None:
    shown = safe_url("https://cdn.example/" + "a" * 5000)
    assert shown.startswith("https://cdn.example/aaa") and shown.endswith("…") and len(shown) < 300
