"""ISO 3166-1 alpha-3 country codes, the ``region_code`` of ``shard_config``.

The list ships as package data (``iso3166_alpha3.json``, taken from Debian's iso-codes).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from gbdesk.shard.errors import InvalidShardOptionError

DEFAULT_REGION = "USA"


@cache
def countries() -> dict[str, str]:
    """Alpha-3 code → English country name, for all 249 ISO 3166-1 entries."""
    text = resources.files("gbdesk.shard").joinpath("iso3166_alpha3.json").read_text("utf-8")
    return dict(json.loads(text)["countries"])


def validate_region(code: str) -> str:
    """The upper-case alpha-3 code.

    Raises:
        InvalidShardOptionError: not an ISO 3166-1 alpha-3 code.
    """
    normalised = code.strip().upper()
    if normalised not in countries():
        hint = ""
        if len(normalised) == 2:
            hint = " (that looks like an alpha-2 code; the registry uses three letters)"
        raise InvalidShardOptionError(
            f"region {code!r} is not an ISO 3166-1 alpha-3 country code{hint}",
            fix="use a code such as USA, BRA, DEU, GBR, JPN (`gbdesk shard regions` lists all)",
        )
    return normalised
