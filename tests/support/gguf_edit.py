"""Copy a GGUF model without some key-values (e.g. its chat template), for tests.

Read with the ``gguf`` package's GGUFReader; kept key-values and tensor data are copied byte for
byte, tensor data padded to the alignment as llama.cpp writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gguf import GGUFReader

from tests.support.gguf_split import write_gguf

_VIRTUAL_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


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
    write_gguf(dest, keys, tensors, raw, alignment)
    return dest
