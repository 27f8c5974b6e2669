"""Hosts and URLs: which may be fetched, and how one is shown.

Three rules used all over the code base live here once, so they cannot drift apart:

* :func:`is_loopback` — traffic that never leaves the machine (the simulator, a test server, a
  local proxy). It is the only place plain ``http`` is tolerated, for base URLs, image URLs and
  result URLs alike.
* :func:`fetch_problem` — why a URL can never be fetched (a ``file:``/``ftp:``/``javascript:``
  scheme, plain ``http`` to a remote host, no host at all); retrying such a URL is pointless.
* :func:`safe_url` — the one URL redactor: no ``user:pass@``, no fragment, no query parameter
  whose name looks like a credential (signed CDN links carry their token there), and never
  longer than a message line should be.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from yarl import URL

_SECRET_PARAMS = ("key", "token", "secret", "jwt", "sig", "auth", "password", "credential", "policy")
_MAX_SHOWN = 200


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or ``localhost`` in any case, with or without the root dot."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name.rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def fetch_problem(url: str) -> str | None:
    """Why ``url`` can never be fetched (None if it may be): https, or plain http to loopback only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"the URL scheme {scheme + ':' if scheme else '(none)'} is not fetched (https only)"
    if not host:
        return "the URL has no host"
    if scheme == "http" and not is_loopback(host):
        return "plain http is refused except to loopback hosts (https only)"
    return None


def safe_url(url: URL | str) -> str:
    """``url`` fit for a message or a log: credentials, fragment and secret-looking parameters gone."""
    from yarl import URL  # here, not at the top: `previz validate` needs is_loopback, not yarl

    try:
        parsed = URL(url) if isinstance(url, str) else url
        if parsed.is_absolute():
            parsed = parsed.with_user(None)  # drops the password too
        kept = [(k, v) for k, v in parsed.query.items() if not any(s in k.lower() for s in _SECRET_PARAMS)]
        shown = str(parsed.with_query(kept).with_fragment(None))
    except (ValueError, TypeError):
        return "(unparseable URL)"
    return shown if len(shown) <= _MAX_SHOWN else shown[:_MAX_SHOWN] + "…"
