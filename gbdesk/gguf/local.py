"""Read the GGUF header of a model on disk (every part of a split model)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gbdesk.gguf.assemble import assemble
from gbdesk.gguf.model import GGUFError, GGUFMetadata
from gbdesk.gguf.parser import ParsedHeader, parse_header
from gbdesk.gguf.split import parse_split_name

# Real headers are a few MB (the vocabulary dominates); this only stops a hostile file.
MAX_LOCAL_HEADER_BYTES = 256 * 1024 * 1024


class _FileSource:
    """Reads byte ranges of an open file; the parser decides how much and when."""

    def __init__(self, name: str, handle: BinaryIO, size: int) -> None:
        self.name = name
        self._handle = handle
        self._size = size

    @property
    def total_size(self) -> int:
        return self._size

    def read_at(self, offset: int, size: int) -> bytes:
        self._handle.seek(offset)
        return self._handle.read(size)


def _read_one(path: Path, *, file_index: int, max_header_bytes: int) -> ParsedHeader:
    name = str(path)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return parse_header(
                _FileSource(name, handle, size),
                max_header_bytes=max_header_bytes,
                file_index=file_index,
            )
    except FileNotFoundError:
        raise GGUFError(
            f"{name}: no such file", fix="check the path; for a split model give part 1"
        ) from None
    except IsADirectoryError:
        raise GGUFError(f"{name}: is a folder, not a GGUF file") from None
    except OSError as exc:
        raise GGUFError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def read_gguf(path: str | Path, *, max_header_bytes: int = MAX_LOCAL_HEADER_BYTES) -> GGUFMetadata:
    """Read a local GGUF file's key-values and tensor infos (not its tensor data).

    Given any part of a split model (``name-0000K-of-0000N.gguf``), reads every part and merges
    their tensors; the key-values come from part 1.

    Raises:
        GGUFError: the file is missing, unreadable, not a valid GGUF v2/v3 file, or a part of a
            split model is missing or inconsistent.
    """
    path = Path(path)
    split_name = parse_split_name(str(path))
    if split_name is not None and split_name.number != 1:
        path = Path(split_name.part(1))
    first = _read_one(path, file_index=0, max_header_bytes=max_header_bytes)

    def read_part(name: str, index: int) -> ParsedHeader:
        return _read_one(Path(name), file_index=index, max_header_bytes=max_header_bytes)

    return assemble(str(path), first, read_part)


class _BytesSource:
    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self._data = data

    @property
    def total_size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]


def read_gguf_bytes(
    data: bytes, *, source: str = "<bytes>", max_header_bytes: int = MAX_LOCAL_HEADER_BYTES
) -> GGUFMetadata:
    """Read a GGUF file held in memory (a whole single file; split parts are not followed).

    ``data`` must hold the whole file, since tensor data is checked to lie inside it.

    Raises:
        GGUFError: the bytes are not a valid GGUF v2/v3 file.
    """
    header = parse_header(_BytesSource(source, data), max_header_bytes=max_header_bytes)
    return assemble(source, header, _no_parts(source))


def _no_parts(source: str) -> Callable[[str, int], ParsedHeader]:
    def refuse(name: str, index: int) -> ParsedHeader:
        raise GGUFError(f"{source}: is part of a split model; read it from disk with read_gguf")

    return refuse
