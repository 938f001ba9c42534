"""Copy a GGUF model without some key-values (e.g. its chat template), for tests.

Read with the ``gguf`` package's GGUFReader; kept key-values and tensor data are copied byte for
byte, tensor data padded to the alignment as llama.cpp writes it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

from gguf import GGUFReader

_VIRTUAL_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


def _pad(size: int, alignment: int) -> int:
    return -(-size // alignment) * alignment


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def copy_without_keys(source: Path, dest: Path, drop: Iterable[str]) -> Path:
    """Write ``source`` to ``dest`` minus the key-values named in ``drop``; returns ``dest``."""
    dropped = set(drop)
    reader = GGUFReader(source)
    alignment = reader.alignment
    raw = reader.data
    keys = [
        bytes(raw[field.offset : field.offset + sum(part.nbytes for part in field.parts)])
        for name, field in reader.fields.items()
        if name not in _VIRTUAL_FIELDS and name not in dropped
    ]
    tensors = list(reader.tensors)
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
    temporary = dest.with_suffix(".part")
    with temporary.open("wb") as out:
        out.write(header)
        for tensor in tensors:
            start, size = int(tensor.data_offset), int(tensor.n_bytes)
            out.write(raw[start : start + size].tobytes())
            out.write(b"\0" * (_pad(size, alignment) - size))
    os.replace(temporary, dest)
    return dest
