"""Pre-flight: prove each key and read the account's limits in seconds, before anything is submitted.

Why: a wrong key used to show up as the first takes failing at 3 a.m., and a Runway tier that
runs 2 tasks at once quietly queued the other 6 as THROTTLED — accepted, and billed later. So
before ``plan`` prints and before ``run`` submits, every provider the takes use gets one request
that bills nothing:

* Runway ``GET /v1/organization`` — the tier's ``maxConcurrentGenerations`` and
  ``maxDailyGenerations``, today's usage and the credit balance;
* AIML ``GET /v1/billing/balance`` (docs.aimlapi.com, "Account Balance");
* Runware a lone ``authentication`` task (runware.ai/docs/platform/authentication).

A key the provider refuses (401/403) is a :class:`~runner.errors.ConfigError` (exit 2) naming the
variable it came from. A provider that cannot be asked (no connection, 5xx, a slow answer) is a
finding, not an error: the run's own retries deal with it. Everything else is data — findings
with the figure to act on; only the CLI prints them.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

import aiohttp

from runner.errors import ConfigError, FailureKind, ProviderError, TerminalError
from runner.manifest.document import Manifest
from runner.manifest.limits import LIMITS
from runner.manifest.prices import estimate_usd
from runner.manifest.takes import Take
from runner.providers.aimlapi import AimlApiProvider
from runner.providers.base import Account, ProviderConfig
from runner.providers.registry import KEY_VARS, provider_config_from_env, simulated_config
from runner.providers.runware import RunwareProvider
from runner.providers.runway import RunwayProvider

#: Short on purpose: the check must answer in seconds or step aside.
CONNECT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 3.0
_LABELS: Mapping[str, str] = {"aimlapi": "AIML API", "runware": "Runware", "runway": "Runway"}


class FindingKind(StrEnum):
    CONCURRENCY = "concurrency"  # concurrency above the tier's: use ``limit`` slots
    DAILY_LIMIT = "daily_limit"  # more takes than today's generations left: submit ``limit``
    CREDITS = "credits"  # the estimate exceeds the credit left
    UNCHECKED = "unchecked"  # the provider could not be asked; the run will find out


@dataclass(frozen=True)
class Finding:
    """One warning, with the figure to act on (slots to use, takes that may be submitted)."""

    provider: str
    kind: FindingKind
    message: str
    limit: int | None = None


@dataclass(frozen=True)
class ProviderCheck:
    """What was asked of one provider and what it said (``account`` None: it could not be asked)."""

    provider: str
    takes: int
    estimated_usd: float
    account: Account | None


@dataclass(frozen=True)
class Skipped:
    """A provider ``plan`` could not check because no key is set: the variables ``run`` will need."""

    provider: str
    takes: int
    needs: tuple[str, ...]


@dataclass(frozen=True)
class PreflightReport:
    checks: tuple[ProviderCheck, ...]
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...] = ()

    def _limit(self, provider: str, kind: FindingKind) -> int | None:
        found = [f.limit for f in self.findings if f.provider == provider and f.kind is kind]
        return min((n for n in found if n is not None), default=None)

    def slots(self, provider: str, wanted: int) -> int:
        """Tasks to keep in flight at ``provider``: ``wanted``, capped by the tier's figure."""
        cap = self._limit(provider, FindingKind.CONCURRENCY)
        return wanted if cap is None else max(1, min(wanted, cap))

    def submit_cap(self, provider: str) -> int | None:
        """How many takes may be submitted to ``provider`` today; None when no cap is known."""
        return self._limit(provider, FindingKind.DAILY_LIMIT)

    def to_json(self) -> dict[str, Any]:
        return {
            "checks": [asdict(c) for c in self.checks],
            "findings": [asdict(f) for f in self.findings],
            "skipped": [asdict(s) for s in self.skipped],
        }


async def preflight(
    configs: Mapping[str, ProviderConfig],
    session: aiohttp.ClientSession,
    *,
    takes: Sequence[Take],
    concurrency: int,
) -> PreflightReport:
    """Check every provider ``takes`` use (those to be submitted), side by side, in seconds.

    Raises ConfigError naming each variable whose key was refused; nothing is submitted anywhere.
    """
    names = sorted({t.provider for t in takes})
    missing = [n for n in names if n not in configs]
    if missing:
        raise ConfigError(f"pre-flight: no configuration for {', '.join(missing)}")
    results = await asyncio.gather(
        *(_check(configs[n], session, [t for t in takes if t.provider == n]) for n in names),
        return_exceptions=True,
    )
    refused = [str(r) for r in results if isinstance(r, ConfigError)]
    if refused:
        raise ConfigError("; ".join(refused))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    checks = tuple(r[0] for r in results if not isinstance(r, BaseException))
    findings = [f for r in results if not isinstance(r, BaseException) for f in r[1]]
    findings += [f for c in checks for f in _account_findings(c, concurrency)]
    return PreflightReport(checks, tuple(findings))


async def _check(
    config: ProviderConfig, session: aiohttp.ClientSession, takes: list[Take]
) -> tuple[ProviderCheck, list[Finding]]:
    name = config.name
    estimate = round(math.fsum(estimate_usd(t.provider, t.model, t.duration) for t in takes), 6)
    try:
        account = await _ask(config, session, takes[0].model)
    except TerminalError as exc:
        if exc.kind is FailureKind.AUTH:
            raise ConfigError(_refused_message(config, exc)) from None
        finding = _unchecked(name, exc, FindingKind.CREDITS if exc.kind is FailureKind.CREDITS else None)
        return ProviderCheck(name, len(takes), estimate, None), [finding]
    except (ProviderError, TimeoutError) as exc:
        return ProviderCheck(name, len(takes), estimate, None), [_unchecked(name, exc, None)]
    return ProviderCheck(name, len(takes), estimate, account), []


async def _ask(config: ProviderConfig, session: aiohttp.ClientSession, model: str) -> Account:
    """The provider's no-cost check, with short timeouts whatever the run's own are."""
    quick = replace(
        config,
        connect_timeout=min(config.connect_timeout, CONNECT_TIMEOUT),
        request_timeout=min(config.request_timeout, REQUEST_TIMEOUT),
    )
    if config.name == "runway":
        return await RunwayProvider(quick, session).account(LIMITS["runway"].models[model])
    if config.name == "aimlapi":
        return await AimlApiProvider(quick, session).account()
    return await RunwareProvider(quick, session).account()


def _refused_message(config: ProviderConfig, exc: ProviderError) -> str:
    source = config.key_source or " or ".join(KEY_VARS[config.name])
    status = f"HTTP {exc.status}" if exc.status is not None else "refused"
    return (
        f"{_LABELS[config.name]} rejected the key in {source} ({status}: {exc.detail}); "
        f"nothing was submitted — set a valid key in {source}"
    )


def _unchecked(provider: str, exc: BaseException, kind: FindingKind | None) -> Finding:
    why = exc.detail if isinstance(exc, ProviderError) else type(exc).__name__
    status = f" (HTTP {exc.status})" if isinstance(exc, ProviderError) and exc.status else ""
    return Finding(
        provider,
        kind or FindingKind.UNCHECKED,
        f"{_LABELS[provider]}: could not check the account{status}: {why}",
    )


def _account_findings(check: ProviderCheck, concurrency: int) -> list[Finding]:
    """Runway's limits against the plan: slots, today's generations left, credit."""
    account, label = check.account, _LABELS[check.provider]
    if account is None:
        return []
    findings: list[Finding] = []
    tier = account.max_concurrent
    if tier is not None and concurrency > tier:
        message = (
            f"{label}: concurrency {concurrency} is above the tier's {tier} concurrent generations; "
            f"using {tier} slots (the rest would wait THROTTLED, committed and billed later)"
        )
        findings.append(Finding(check.provider, FindingKind.CONCURRENCY, message, tier))
    if account.max_daily is not None:
        left = max(0, account.max_daily - (account.used_today or 0))
        if check.takes > left:
            message = (
                f"{label}: {check.takes} takes planned but only {left} of today's "
                f"{account.max_daily} generations are left; {left} may be submitted, "
                f"the other {check.takes - left} wait for a later run"
            )
            findings.append(Finding(check.provider, FindingKind.DAILY_LIMIT, message, left))
    if (
        account.balance_usd is not None
        and check.provider == "runway"
        and check.estimated_usd > account.balance_usd
    ):
        message = (
            f"{label}: the plan's estimate {check.estimated_usd:.2f} USD exceeds the credit left "
            f"({account.balance_usd:.2f} USD)"
        )
        findings.append(Finding(check.provider, FindingKind.CREDITS, message))
    return findings


async def check_manifest(
    manifest: Manifest, takes: Sequence[Take], *, environ: Mapping[str, str] | None = None
) -> PreflightReport:
    """``previz plan``'s check: keys from the environment, or — ``simulate: true`` — the
    embedded simulator, started here the way ``previz run`` starts it.

    A provider with no key set is skipped, not an error: a plan is what a user runs before getting
    keys, to see the cost. A key that is set is checked (a refused or malformed one still raises).
    """
    names = sorted({t.provider for t in takes})
    if not names:
        return PreflightReport((), ())
    env = os.environ if environ is None else environ
    skipped: tuple[Skipped, ...] = () if manifest.simulate else _without_key(names, takes, env)
    names = [n for n in names if n not in {s.provider for s in skipped}]
    if not names:
        return PreflightReport((), (), skipped)
    async with aiohttp.ClientSession() as session:
        if not manifest.simulate:
            configs = {n: provider_config_from_env(n, env) for n in names}
            todo = [t for t in takes if t.provider in configs]
            report = await preflight(configs, session, takes=todo, concurrency=manifest.concurrency)
            return replace(report, skipped=skipped)
        from runner.simulator import SimConfig, running_simulator

        async with running_simulator(SimConfig.from_profile("clean")) as sim:
            configs = {n: simulated_config(n, sim.base_url, sim.keys[n]) for n in names}
            return await preflight(configs, session, takes=takes, concurrency=manifest.concurrency)


def _without_key(names: Sequence[str], takes: Sequence[Take], env: Mapping[str, str]) -> tuple[Skipped, ...]:
    """The providers among ``names`` none of whose key variables is set (blank counts as unset)."""
    return tuple(
        Skipped(n, sum(1 for t in takes if t.provider == n), KEY_VARS[n])
        for n in names
        if not any(env.get(var, "").strip() for var in KEY_VARS[n])
    )


def render_preflight(report: PreflightReport) -> str:
    """One line per provider asked or skipped, then one ``warning:`` line per finding (no colours)."""
    lines = ["pre-flight:"]
    for check in report.checks:
        lines.append(f"  {check.provider}: {_describe(check.account)}")
    for skip in report.skipped:
        lines.append(
            f"  {skip.provider}: key check skipped (no key set); `previz run` will need "
            f"{' or '.join(skip.needs)} (or --simulate)"
        )
    lines += [f"warning: {f.message}" for f in report.findings]
    if not report.findings and report.checks:
        lines.append("  no findings")
    if not report.checks and not report.skipped:
        lines.append("  nothing to check: every take is done")
    return "\n".join(lines)


def _describe(account: Account | None) -> str:
    if account is None:
        return "not checked"
    facts = [f"key accepted ({account.checked_with})"]
    if account.max_concurrent is not None:
        facts.append(f"tier {account.max_concurrent} concurrent")
    if account.max_daily is not None:
        facts.append(f"{account.used_today or 0} of {account.max_daily} generations used today")
    if account.balance_usd is not None:
        facts.append(f"credit {account.balance_usd:.2f} USD")
    return "; ".join(facts)
