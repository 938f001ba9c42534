"""One base for gbdesk's string enums (``enum.StrEnum`` once Python 3.10 support goes)."""

from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    """An enum whose members are their string values: they compare equal to, format as and
    serialise to JSON as that string (a state on a page, OpenAI's ``finish_reason``)."""

    def __str__(self) -> str:
        return str(self.value)
