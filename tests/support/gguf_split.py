"""Split a GGUF model into parts the way ``llama-gguf-split --split`` does, for tests.

Each part is a complete GGUF v3 file named ``<stem>-0000K-of-0000N.gguf``. Part 1 carries every
key-value of the source plus ``split.no`` (u16, 0-based), ``split.count`` (u16) and
``split.tensors.count`` (i32); the other parts carry only those three keys. Tensors are dealt out
in their original order, about the same number per part, and each tensor's data is padded to the
alignment, as llama.cpp writes it. The source is read with the ``gguf`` package's GGUFReader, so
this helper does not depend on gbdesk's own reader; key-values are copied byte for byte.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from gguf import GGUFReader, GGUFValueType

_SPLIT_NO = "split.no"
_SPLIT_COUNT = "split.count"
_SPLIT_TENSORS_COUNT = "split.tensors.count"
_VIRTUAL_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


def _pad(size: int, alignment: int) -> int:
    return -(-size // alignment) * alignment


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _split_keys(number: int, count: int, n_tensors: int) -> list[bytes]:
    return [
        _string(_SPLIT_NO) + struct.pack("<IH", GGUFValueType.UINT16, number),
        _string(_SPLIT_COUNT) + struct.pack("<IH", GGUFValueType.UINT16, count),
        _string(_SPLIT_TENSORS_COUNT) + struct.pack("<Ii", GGUFValueType.INT32, n_tensors),
    ]


def split_gguf(source: Path, dest_dir: Path, parts: int = 2) -> list[Path]:
    """Write ``source`` as ``parts`` split files in ``dest_dir``; returns their paths in order.

    Raises:
        ValueError: ``parts`` is less than 2 or more than the source has tensors.
    """
    reader = GGUFReader(source)
    tensors = list(reader.tensors)
    if not 2 <= parts <= len(tensors):
        raise ValueError(f"cannot split {len(tensors)} tensors into {parts} parts")
    alignment = reader.alignment
    raw = reader.data  # memory-mapped: only the bytes copied are read
    kv_blobs = [
        bytes(raw[field.offset : field.offset + sum(part.nbytes for part in field.parts)])
        for name, field in reader.fields.items()
        if name not in _VIRTUAL_FIELDS and not name.startswith("split.")
    ]
    stem = source.name.removesuffix(".gguf")
    dest_dir.mkdir(parents=True, exist_ok=True)
    per_part = -(-len(tensors) // parts)
    paths = []
    for index in range(parts):
        group = tensors[index * per_part : (index + 1) * per_part]
        keys = _split_keys(index, parts, len(tensors))
        if index == 0:
            keys = kv_blobs + keys
        path = dest_dir / f"{stem}-{index + 1:05d}-of-{parts:05d}.gguf"
        write_gguf(path, keys, group, raw, alignment)
        paths.append(path)
    return paths


def write_gguf(path: Path, keys: list[bytes], tensors: list, raw, alignment: int) -> None:
    """Write a GGUF v3 file of encoded key-values ``keys`` and ``tensors`` (``GGUFReader``
    tensors whose bytes are in ``raw``), through a temporary file moved into place."""
    infos, offset = [], 0
    for tensor in tensors:
        dims = [int(dim) for dim in tensor.shape]
        infos.append(
            _string(tensor.name)
            + struct.pack(f"<I{len(dims)}Q", len(dims), *dims)
            + struct.pack("<IQ", int(tensor.tensor_type), offset)
        )
        offset = _pad(offset + int(tensor.n_bytes), alignment)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(keys))
    header += b"".join(keys) + b"".join(infos)
    header += b"\0" * (_pad(len(header), alignment) - len(header))
    temporary = path.with_name(path.name + ".part")
    with temporary.open("wb") as out:
        out.write(header)
        for tensor in tensors:
            start, size = int(tensor.data_offset), int(tensor.n_bytes)
            out.write(raw[start : start + size].tobytes())
            out.write(b"\0" * (_pad(size, alignment) - size))
    os.replace(temporary, path)
