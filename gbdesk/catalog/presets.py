"""Hardware presets: the desktop guide's GPU rows as HardwareProfile JSON plus BRL prices.

They let a person plan a purchase: `gbdesk recommend --hardware rtx-3060-12gb` and
`gbdesk plan MODEL[:QUANT]`. The guide's own prices are kept as ranges (used and new).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gbdesk.errors import UsageError
from gbdesk.hardware.profile import HardwareProfile


@dataclass(frozen=True)
class HardwarePreset:
    """One guide row: a machine profile and what the guide says it costs (R$)."""

    id: str
    name: str
    profile: HardwareProfile
    used_price_brl: tuple[int, int] | None
    new_price_brl: tuple[int | None, int | None] | None
    ram_cost_brl: int | None

    @property
    def cheapest_brl(self) -> int | None:
        """The lowest price the guide quotes for the GPU(s), used or new."""
        prices = [p[0] for p in (self.used_price_brl, self.new_price_brl) if p and p[0]]
        return min(prices) if prices else None

    def price_text(self) -> str:
        def fmt(pair: Any) -> str:
            low, high = pair
            return f"R$ {low:,}".replace(",", ".") + (
                f" - R$ {high:,}".replace(",", ".") if high else "+"
            )

        parts = []
        if self.used_price_brl:
            parts.append(f"used {fmt(self.used_price_brl)}")
        if self.new_price_brl:
            parts.append(f"new {fmt(self.new_price_brl)}")
        return ", ".join(parts) or "price not in the guide"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "profile": self.profile.to_json(),
            "price_brl": {
                "used": list(self.used_price_brl) if self.used_price_brl else None,
                "new": list(self.new_price_brl) if self.new_price_brl else None,
                "ram_cost": self.ram_cost_brl,
            },
        }


def load_presets() -> tuple[HardwarePreset, ...]:
    """Every built-in preset, in the guide's order."""
    text = resources.files("gbdesk.catalog").joinpath("presets.json").read_text(encoding="utf-8")
    presets = []
    for item in json.loads(text)["presets"]:
        price = item["price_brl"]
        presets.append(
            HardwarePreset(
                id=item["id"],
                name=item["name"],
                profile=HardwareProfile.from_json(item["profile"]),
                used_price_brl=tuple(price["used"]) if price["used"] else None,
                new_price_brl=tuple(price["new"]) if price["new"] else None,
                ram_cost_brl=price["ram_cost"],
            )
        )
    return tuple(presets)


def load_hardware(spec: str) -> HardwareProfile:
    """A profile from a preset id or a JSON file written by `gbdesk probe --json`.

    Raises:
        UsageError: neither a preset nor a readable profile file.
    """
    for preset in load_presets():
        if preset.id == spec:
            return preset.profile
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(p.id for p in load_presets())
        raise UsageError(
            f"{spec!r} is neither a hardware preset nor a file",
            fix=f"use a preset ({names}) or a file from `gbdesk probe --json > machine.json`",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "profile" in data:  # a preset entry
            data = data["profile"]
        return HardwareProfile.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"cannot read the hardware profile {path}: {exc}",
            fix="write it with `gbdesk probe --json > FILE` and edit only the values",
        ) from exc
