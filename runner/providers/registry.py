"""Providers from the environment (DESIGN §1): which variable holds which key, where each API lives.

This is the edge where a key enters the program: it is wrapped in a :class:`Secret` at once and
never appears in a message. Base URLs are checked here, once, so an adapter can trust its
``config.base_url``: plain ``http://`` would send the key in clear text, so it is refused except to
a loopback host (the simulator, a local proxy).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp

from runner.errors import ConfigError
from runner.netloc import is_loopback
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.base import Provider, ProviderConfig, Secret
from runner.providers.guard import GuardedProvider, ProviderText
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider
from runner.textcheck import first_control, strip_controls

#: Variables holding each provider's key, in order of preference.
KEY_VARS: Mapping[str, tuple[str, ...]] = {
    "aimlapi": ("AIMLAPI_API_KEY", "AIML_API_KEY"),
    "runware": ("RUNWARE_API_KEY",),
    "runway": ("RUNWAYML_API_SECRET",),
}
URL_VARS: Mapping[str, str] = {
    "aimlapi": "AIMLAPI_BASE_URL",
    "runware": "RUNWARE_BASE_URL",
    "runway": "RUNWAYML_BASE_URL",
}
#: Further base-URL variables, read when ``URL_VARS`` is unset: the AIML SDK's own
#: (aimlapi-sdk-python ``_client.py``, ``_BASE_URL_ENV_VARS``). Their value may carry the SDK's
#: ``/v1`` path; like the SDK's video calls, only scheme, host and port are kept.
SDK_URL_VARS: Mapping[str, tuple[str, ...]] = {
    "aimlapi": ("AIML_API_BASE", "AIMLAPI_API_BASE"),
}
#: Public base URLs; each adapter appends its own paths (``/v2/…``, ``/v1``, ``/v1/…``).
DEFAULT_URLS: Mapping[str, str] = {
    "aimlapi": "https://api.aimlapi.com",
    "runware": "https://api.runware.ai",
    "runway": "https://api.dev.runwayml.com",
}
#: the shortest and longest key accepted (real ones: 32 to about 130 characters)
MIN_KEY = 8
MAX_KEY = 4096
_LABELS: Mapping[str, str] = {"aimlapi": "AIML API", "runware": "Runware", "runway": "Runway"}
_CLASSES: Mapping[str, type[AimlApiProvider | RunwareProvider | RunwayProvider]] = {
    "aimlapi": AimlApiProvider,
    "runware": RunwareProvider,
    "runway": RunwayProvider,
}


def _known(name: str) -> str:
    if name not in _CLASSES:
        raise ConfigError(f"unknown provider {name!r} (known: {', '.join(_CLASSES)})")
    return name


def check_base_url(url: str, source: str) -> str:
    """``url`` normalised (no trailing slash), or ConfigError naming ``source`` and the rule broken."""
    try:
        parts = urlsplit(url.strip())
        host, _port = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError:  # the value is never echoed: a mistyped URL may hold a key
        raise ConfigError(f"{source}: not a valid URL (the value is not shown; check it)") from None
    problem: str | None = None
    if first_control(url) is not None:
        problem = "must not hold control characters"
    elif parts.scheme not in ("https", "http") or not host:
        problem = "must be an https:// URL with a host"
    elif parts.username is not None or parts.password is not None:
        problem = "must not carry credentials; keys come from their own variables"
    elif parts.query or parts.fragment:
        problem = "must not have a query or fragment"
    elif parts.scheme == "http" and not is_loopback(host):
        problem = "plain http:// is refused (the key would travel in clear text) except to loopback hosts"
    if problem:
        shown = strip_controls(f"{parts.scheme}://{host}") if host else "the given value"
        raise ConfigError(f"{source}: {shown}: {problem}")
    return url.strip().rstrip("/")


def check_key(key: str, var: str) -> str:
    """``key`` if it is printable ASCII without spaces, of a key's length; else ConfigError naming
    ``var`` (never the key).

    A key copied with a line break, an escape sequence or a smart quote would fail in the HTTP
    header at the first request (a ValueError deep in aiohttp); refused here, before anything is sent.
    A key under :data:`MIN_KEY` characters is a placeholder or a slip, and too short to be found
    again in a provider's words (so it could not be redacted); one over :data:`MAX_KEY` is a file
    pasted in the wrong place, and would not fit in a header.
    """
    if len(key) < MIN_KEY:
        raise ConfigError(f"{var}: the key is shorter than {MIN_KEY} characters: set the whole key")
    if len(key) > MAX_KEY:
        raise ConfigError(f"{var}: the key is longer than {MAX_KEY} characters: set the key alone")
    bad = next((i for i, ch in enumerate(key) if not "!" <= ch <= "~"), None)
    if bad is not None:
        what = f"U+{ord(key[bad]):04X} at character {bad + 1}"
        raise ConfigError(
            f"{var}: the key holds a character a key cannot have ({what}; a key is printable ASCII "
            "without spaces): copy it again"
        )
    return key


def missing_key_message(name: str) -> str:
    """Why the run cannot start, and the two ways forward: set the key, or simulate."""
    names = " or ".join(KEY_VARS[name])
    return (
        f"no {_LABELS[name]} key: set {names} in the environment, "
        f"or run with --simulate to use the built-in simulator (no key needed)"
    )


def provider_config_from_env(
    name: str,
    environ: Mapping[str, str] | None = None,
    *,
    connect_timeout: float = 10.0,
    request_timeout: float = 60.0,
) -> ProviderConfig:
    """The config for ``name`` from ``environ`` (default ``os.environ``); ConfigError if unusable."""
    env = os.environ if environ is None else environ
    _known(name)
    key_var = next((var for var in KEY_VARS[name] if env.get(var, "").strip()), None)
    if key_var is None:
        raise ConfigError(missing_key_message(name))
    key = check_key(env[key_var].strip(), key_var)
    return ProviderConfig(
        name=name,
        base_url=_base_url_from_env(name, env),
        api_key=Secret(key),
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        key_source=key_var,
    )


def _base_url_from_env(name: str, env: Mapping[str, str]) -> str:
    """``URL_VARS[name]`` as given; else an SDK variable reduced to its origin; else the default."""
    url_var = URL_VARS[name]
    raw_url = env.get(url_var, "").strip()
    if raw_url:
        return check_base_url(raw_url, url_var)
    for sdk_var in SDK_URL_VARS.get(name, ()):
        raw_url = env.get(sdk_var, "").strip()
        if raw_url:
            parts = urlsplit(check_base_url(raw_url, sdk_var))
            return f"{parts.scheme}://{parts.netloc}"
    return DEFAULT_URLS[name]


def simulated_config(
    name: str,
    base_url: str,
    key: str,
    *,
    connect_timeout: float = 10.0,
    request_timeout: float = 60.0,
    public_key: bool = False,
) -> ProviderConfig:
    """The config for ``name`` pointed at a running simulator; ``public_key`` for the built-in
    one's own keys, which are no secret (tests hand in keys they want redacted)."""
    return ProviderConfig(
        name=_known(name),
        base_url=check_base_url(base_url, "simulator URL"),
        api_key=Secret(key),
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        public_key=public_key,
    )


def build_provider(config: ProviderConfig, session: aiohttp.ClientSession) -> Provider:
    """The adapter for ``config.name``, speaking through ``session`` (which the caller closes),
    behind the guard every provider-chosen string crosses (:mod:`runner.providers.guard`)."""
    adapter = _CLASSES[_known(config.name)](config, session)
    return GuardedProvider(adapter, ProviderText(config.secrets))
