"""A store's URL as it may be shown: its password is a secret, like a provider's key (DESIGN §7).

Apart from :mod:`runner.store.postgres` so the command line can name a store — in a refusal, in
``status`` — without importing the PostgreSQL driver.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def shown(url: str) -> str:
    """The URL as it may be printed: the password replaced by ``***``; one that does not parse, unnamed."""
    try:
        parts = urlsplit(url)
        password, host, port = parts.password, parts.hostname or "", parts.port
    except ValueError:
        return "(a store URL that does not parse)"
    if password is None:
        return url
    netloc = f"{parts.username}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(text: str, url: str) -> str:
    """``text`` (a driver's words, say) on one line, with the URL's password never among them."""
    one = " ".join(text.split())
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return one.replace(password, "***") if password else one
