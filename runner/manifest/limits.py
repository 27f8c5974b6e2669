"""What each provider accepts for Gen-4 Turbo, as data: used offline by ``validate`` and by adapters.

A neutral fact, like :mod:`runner.manifest.takes`: the manifest side and the adapters both import it, so it
lives in the core rather than under ``providers/`` (where it would make planning lean on them).

Source: ``shared/providers.md`` (marks [H]/[M]/[L] there). Where a limit is undocumented the
value here is a stated assumption, named in ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PROVIDERS = ("aimlapi", "runware", "runway")
RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")

#: Neutral ratio → pixel shape used by Runware (width/height) and Runway (``ratio: "W:H"``).
RATIO_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "4:3": (1104, 832),
        "3:4": (832, 1104),
        "1:1": (960, 960),
        "21:9": (1584, 672),
    }
)

MB = 1024 * 1024


@dataclass(frozen=True)
class ProviderLimits:
    name: str
    models: Mapping[str, str]  # neutral model name → the provider's model id
    durations: tuple[int, ...]
    last_image: bool
    max_prompt: int = 1000
    prompt_utf16: bool = False  # Runway counts UTF-16 code units
    max_data_uri_bytes: int | None = None  # length of the whole data: URI string
    max_url_image_bytes: int = 16 * MB
    notes: tuple[str, ...] = field(default_factory=tuple)

    def prompt_length(self, prompt: str) -> int:
        if self.prompt_utf16:
            return len(prompt.encode("utf-16-le")) // 2
        return len(prompt)


LIMITS: Mapping[str, ProviderLimits] = MappingProxyType(
    {
        "aimlapi": ProviderLimits(
            name="aimlapi",
            models=MappingProxyType({"gen4_turbo": "runway/gen4_turbo"}),
            durations=(5, 10),
            last_image=True,
            max_data_uri_bytes=5 * MB,
            notes=("data URI limit assumed equal to Runway's upstream < 5 MB (AIML documents none)",),
        ),
        "runware": ProviderLimits(
            name="runware",
            models=MappingProxyType({"gen4_turbo": "runway:1@1"}),
            durations=tuple(range(2, 11)),
            last_image=False,
            max_data_uri_bytes=5 * MB,
            notes=("image size limit undocumented; Runway's upstream < 5 MB data URI assumed",),
        ),
        "runway": ProviderLimits(
            name="runway",
            models=MappingProxyType({"gen4_turbo": "gen4_turbo"}),
            durations=tuple(range(2, 11)),
            last_image=False,
            prompt_utf16=True,
            max_data_uri_bytes=5 * MB,
        ),
    }
)
