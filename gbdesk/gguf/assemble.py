"""Merge parsed headers (one per split part) into one :class:`GGUFMetadata`; check they agree."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from gbdesk.gguf.model import GGUFError, GGUFMetadata
from gbdesk.gguf.parser import ParsedHeader
from gbdesk.gguf.split import SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT, parse_split_name

# The most parts llama-gguf-split's naming can express.
MAX_SPLIT_PARTS = 99999


def declared_split_count(header: ParsedHeader, source: str) -> int:
    """``split.count`` of a part (1 when the key is absent).

    Raises:
        GGUFError: the value is not a sensible count.
    """
    count = header.kv.get(SPLIT_COUNT, 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SPLIT_PARTS:
        raise GGUFError(f"{source}: {SPLIT_COUNT} is {count!r}, not a part count")
    return count


def assemble(
    source: str, first: ParsedHeader, read_part: Callable[[str, int], ParsedHeader]
) -> GGUFMetadata:
    """Build the metadata of a model from its first part, reading the other parts if it is split.

    ``read_part(name, index)`` parses part ``index`` (0-based) whose path or URL is ``name``.

    Raises:
        GGUFError: a part is missing, unreadable, or disagrees with the first.
    """
    count = declared_split_count(first, source)
    parts = [first]
    names = [source]
    if count > 1:
        split_name = parse_split_name(source)
        if split_name is None or split_name.count != count:
            raise GGUFError(
                f"{source}: the file says it is one of {count} parts, but its name does not end "
                f"in -00001-of-{count:05d}.gguf, so the other parts cannot be found",
                fix="keep the parts' original names (as written by llama-gguf-split)",
            )
        for index in range(1, count):
            name = split_name.part(index + 1)
            parts.append(read_part(name, index))
            names.append(name)
        _check_parts(parts, names, count)
    tensors = tuple(tensor for part in parts for tensor in part.tensors)
    kv: dict[str, Any] = dict(first.kv)
    return GGUFMetadata(
        version=first.version,
        kv=MappingProxyType(kv),
        tensors=tensors,
        source=source,
        split_count=count,
        file_sizes=tuple(part.file_size or 0 for part in parts),
        data_offsets=tuple(part.data_offset for part in parts),
    )


def _check_parts(parts: list[ParsedHeader], names: list[str], count: int) -> None:
    for index, (part, name) in enumerate(zip(parts, names, strict=True)):
        number = part.kv.get(SPLIT_NO)
        if number != index or declared_split_count(part, name) != count:
            raise GGUFError(
                f"{name}: {SPLIT_NO}={number!r} and {SPLIT_COUNT}={part.kv.get(SPLIT_COUNT)!r}, "
                f"but it should be part {index} of {count}",
                fix="the parts come from different models or downloads; download them again",
            )
    expected = parts[0].kv.get(SPLIT_TENSORS_COUNT)
    found = sum(len(part.tensors) for part in parts)
    if expected is not None and expected != found:
        raise GGUFError(
            f"{names[0]}: {SPLIT_TENSORS_COUNT} is {expected!r}, but the {count} parts "
            f"hold {found} tensors",
            fix="the parts come from different models or downloads; download them again",
        )
    seen: set[str] = set()
    for part, name in zip(parts, names, strict=True):
        for tensor in part.tensors:
            if tensor.name in seen:
                raise GGUFError(f"{name}: tensor {tensor.name!r} is also in an earlier part")
            seen.add(tensor.name)
