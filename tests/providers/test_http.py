"""The shared wire helpers: Retry-After, URLs fit to print, error messages from any envelope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.providers._http import parse_retry_after, safe_url
from runner.providers.shapes import mentions_moderation, message_of

NOW = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        (" 30 ", 30.0),
        ("-3", 0.0),
        ("Fri, 01 May 2026 10:00:42 GMT", 42.0),
        ("Fri, 01 May 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://cdn.example/x.mp4?_jwt=abc&w=1", "https://cdn.example/x.mp4?w=1"),
        (
            "https://api.example/v2/video/generations?generation_id=g1",
            "https://api.example/v2/video/generations?generation_id=g1",
        ),
        ("https://api.example/v1?api_key=s3cret&X-Amz-Signature=zz", "https://api.example/v1"),
        ("https://user:pw@api.example/v1#frag", "https://api.example/v1"),
    ],
)
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize(
    ("body", "text", "message"),
    [
        ({"message": "image_url is required", "statusCode": "400"}, "", "image_url is required"),
        (
            {"message": ["duration must be 5 or 10", "seed too big"]},
            "",
            "duration must be 5 or 10; seed too big",
        ),
        ({"error": "Invalid parameter 'ratio'"}, "", "Invalid parameter 'ratio'"),
        ({"errors": [{"code": "invalidWidth", "message": "bad size"}]}, "", "invalidWidth: bad size"),
        ({"error": {"name": "ModerationError", "message": "flagged"}}, "", "ModerationError: flagged"),
        (None, "<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (None, "  ", "(empty body)"),
        ([1, 2], "[1, 2]", "[1, 2]"),
    ],
)
def test_message_of(body: object, text: str, message: str) -> None:
    assert message_of(body, text) == message


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("ModerationError", None), True),
        (("contentModerated", "x"), True),
        (("SAFETY.INPUT.IMAGE",), True),
        (("providerError", "blocked by content policy"), True),
        (("INTERNAL.BAD_OUTPUT.CODE01", "try again"), False),
        ((None, None), False),
    ],
)
def test_mentions_moderation(texts: tuple[str | None, ...], expected: bool) -> None:
    assert mentions_moderation(*texts) is expected
