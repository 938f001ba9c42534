"""llama.cpp's split-model conventions: ``name-00001-of-00003.gguf`` and the ``split.*`` keys.

``llama-gguf-split`` writes every part as a complete GGUF file: part 1 holds all the model's
key-values, and each part lists only its own tensors. Every part carries ``split.no``
(0-based), ``split.count`` and ``split.tensors.count`` (the total over all parts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPLIT_NO = "split.no"
SPLIT_COUNT = "split.count"
SPLIT_TENSORS_COUNT = "split.tensors.count"

_SPLIT_NAME = re.compile(r"^(?P<prefix>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True)
class SplitName:
    """The parts of a split file name: ``prefix-{no:05d}-of-{count:05d}.gguf`` (no is 1-based)."""

    prefix: str
    number: int
    count: int

    def part(self, number: int) -> str:
        """The name (or URL, or path) of part ``number`` (1-based)."""
        return split_path(self.prefix, number, self.count)


def split_path(prefix: str, number: int, count: int) -> str:
    """llama.cpp's name for part ``number`` (1-based) of ``count``: ``p-00001-of-00003.gguf``"""
    return f"{prefix}-{number:05d}-of-{count:05d}.gguf"


def parse_split_name(name: str) -> SplitName | None:
    """Recognise a split part's name (a path or a URL works too); None for any other name."""
    match = _SPLIT_NAME.match(name)
    if match is None:
        return None
    number, count = int(match["no"]), int(match["count"])
    if not 1 <= number <= count:
        return None
    return SplitName(match["prefix"], number, count)
