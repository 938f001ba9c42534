"""The GGUF header parser: key-values and tensor infos, read with a bounds check at every step.

It reads from a :class:`ByteSource` (a local file, or a remote file through HTTP Range requests)
into a buffer that only grows when the parser needs the next bytes, geometrically, up to a cap.
A count or length is checked against the bytes the file could still hold *before* anything is
read or allocated for it, so a hostile header ends in a :class:`GGUFError`, never in a giant
allocation, a crash or a hang.

Layout (little-endian; GGUF v2 and v3 share it):
magic "GGUF", version u32, tensor count u64, kv count u64,
kv: key string, value type u32, value,
tensor info: name string, n_dims u32, dims u64 x n_dims, ggml type u32, offset u64,
padding to ``general.alignment`` (default 32), then the tensor data.
A string is a u64 length and UTF-8 bytes; an array is an element type u32, a count u64, elements.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Protocol

from gbdesk.gguf.model import GGUFError, TensorInfo, ggml_type_name, ggml_type_size

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ARRAY_NESTING = 16
INITIAL_READ = 2 * 1024 * 1024
_INT64_MAX = 2**63 - 1

# GGUF value types (gguf.GGUFValueType) -> struct format of one scalar.
_SCALAR_FORMATS: dict[int, str] = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    7: "?",  # bool
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_STRING = 8
_ARRAY = 9
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
# The fewest bytes one item of each kind can take, to reject impossible counts up front.
_MIN_KV_BYTES = 8 + 4 + 1  # empty key, value type, smallest value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # empty name, n_dims (0), type, offset
_MIN_ARRAY_BYTES = 4 + 8
_U64 = struct.Struct("<Q")


class ByteSource(Protocol):
    """Where the header bytes come from."""

    name: str  # path or URL, for messages

    @property
    def total_size(self) -> int | None:
        """The file's size, or None while it is not known (a remote stream without a length)."""

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; fewer only at the end of the file."""


@dataclass(frozen=True)
class ParsedHeader:
    """One file's header, as parsed (split parts are merged by the callers)."""

    version: int
    kv: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int  # absolute offset of the data section
    file_size: int | None


def parse_header(source: ByteSource, *, max_header_bytes: int, file_index: int = 0) -> ParsedHeader:
    """Parse the header of one GGUF file.

    Raises:
        GGUFError: the bytes are not a valid, supported GGUF header, or it exceeds
            ``max_header_bytes``.
    """
    return _HeaderParser(source, max_header_bytes, file_index).parse()


class _HeaderParser:
    def __init__(self, source: ByteSource, max_header_bytes: int, file_index: int) -> None:
        self._source = source
        self._cap = max_header_bytes
        self._file_index = file_index
        self._buf = bytearray()
        self._pos = 0

    # --- errors -----------------------------------------------------------------------------

    def _error(self, what: str, offset: int | None = None, fix: str | None = None) -> GGUFError:
        where = self._source.name
        if offset is not None:
            where += f" at offset {offset}"
        return GGUFError(f"{where}: {what}", fix=fix)

    def _truncated(self, what: str, offset: int) -> GGUFError:
        total = self._source.total_size
        size = f"{total} bytes" if total is not None else "the stream"
        return self._error(
            f"the file ends while reading {what} ({size}): it is truncated",
            offset,
            fix="download the file again; the copy on disk is incomplete or damaged",
        )

    # --- raw reads --------------------------------------------------------------------------

    def _limit(self) -> int:
        """The most bytes a count or length may still claim (file size, or the cap if unknown)."""
        total = self._source.total_size
        return total if total is not None else self._cap

    def _ensure(self, end: int, what: str) -> None:
        """Make sure the buffer holds bytes up to ``end``."""
        have = len(self._buf)
        if end <= have:
            return
        total = self._source.total_size
        if total is not None and end > total:
            raise self._truncated(what, self._pos)
        if end > self._cap:
            raise self._error(
                f"the header is larger than {self._cap} bytes (reading {what} needs {end})",
                self._pos,
                fix="this is not a header gbdesk will read; check that the file is a GGUF model",
            )
        target = max(end, 2 * have, INITIAL_READ)
        target = min(target, self._cap if total is None else min(self._cap, total))
        chunk = self._source.read_at(have, target - have)
        self._buf += chunk
        if len(self._buf) < end:
            raise self._truncated(what, self._pos)

    def _unpack(self, fmt: str, size: int, what: str) -> Any:
        self._ensure(self._pos + size, what)
        (value,) = struct.unpack_from("<" + fmt, self._buf, self._pos)
        self._pos += size
        return value

    def _u32(self, what: str) -> int:
        return int(self._unpack("I", 4, what))

    def _u64(self, what: str) -> int:
        return int(self._unpack("Q", 8, what))

    def _check_fits(self, count: int, item_bytes: int, what: str, at: int) -> None:
        """Reject a count or length that the rest of the file could not possibly hold."""
        remaining = self._limit() - self._pos
        if count * item_bytes > remaining:
            room = (
                "of the file"
                if self._source.total_size is not None
                else f"under the {self._cap}-byte header limit"
            )
            raise self._error(
                f"{what} is {count}, more than the remaining {max(remaining, 0)} bytes {room} "
                "could hold: the file is truncated or damaged",
                at,
                fix="download the file again; if it persists, the file is not a valid GGUF model",
            )

    def _string(self, what: str) -> str:
        at = self._pos
        length = self._u64(f"the length of {what}")
        self._check_fits(length, 1, f"the length of {what}", at)
        end = self._pos + length
        self._ensure(end, what)
        text = self._buf[self._pos : end].decode("utf-8", errors="replace")
        self._pos = end
        return text

    def _strings(self, key: str, count: int) -> tuple[str, ...]:
        """``count`` strings (a vocabulary: often 150 000 of them, so this loop is kept tight).

        A string already in the buffer is decoded in place; anything else (more bytes to fetch,
        a length past the end) goes through :meth:`_string`, which fetches or raises.
        """
        what = f"an element of {key!r}"
        unpack = _U64.unpack_from
        values: list[str] = []
        append = values.append
        buf, pos = self._buf, self._pos
        size = len(buf)
        for _ in range(count):
            if pos + 8 <= size:
                (length,) = unpack(buf, pos)
                start = pos + 8
                end = start + length
                if end <= size:
                    append(buf[start:end].decode("utf-8", "replace"))
                    pos = end
                    continue
            self._pos = pos
            append(self._string(what))
            buf, pos = self._buf, self._pos
            size = len(buf)
        self._pos = pos
        return tuple(values)

    # --- values -----------------------------------------------------------------------------

    def _value(self, value_type: int, key: str, at: int, depth: int = 0) -> Any:
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is not None:
            size = struct.calcsize("<" + fmt)
            value = self._unpack(fmt, size, f"the value of {key!r}")
            return value
        if value_type == _STRING:
            return self._string(f"the value of {key!r}")
        if value_type == _ARRAY:
            return self._array(key, depth)
        raise self._error(f"key {key!r} has an unknown value type {value_type}", at)

    def _array(self, key: str, depth: int) -> tuple[Any, ...]:
        if depth >= MAX_ARRAY_NESTING:
            raise self._error(
                f"key {key!r} nests arrays more than {MAX_ARRAY_NESTING} deep", self._pos
            )
        at = self._pos
        elem_type = self._u32(f"the element type of {key!r}")
        count = self._u64(f"the element count of {key!r}")
        fmt = _SCALAR_FORMATS.get(elem_type)
        if fmt is not None:
            size = struct.calcsize("<" + fmt)
            self._check_fits(count, size, f"the element count of {key!r}", at)
            end = self._pos + count * size
            self._ensure(end, f"the elements of {key!r}")
            values = struct.unpack_from(f"<{count}{fmt}", self._buf, self._pos)
            self._pos = end
            return values
        if elem_type == _STRING:
            self._check_fits(count, 8, f"the element count of {key!r}", at)
            return self._strings(key, count)
        if elem_type == _ARRAY:
            self._check_fits(count, _MIN_ARRAY_BYTES, f"the element count of {key!r}", at)
            return tuple(self._array(key, depth + 1) for _ in range(count))
        raise self._error(f"array {key!r} has an unknown element type {elem_type}", at)

    # --- the header -------------------------------------------------------------------------

    def _version(self) -> int:
        self._ensure(8, "the magic and version")
        magic = bytes(self._buf[:4])
        if magic != GGUF_MAGIC:
            raise self._error(
                f"not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r})",
                0,
                fix="check that this is a .gguf model file and that its download completed",
            )
        self._pos = 4
        version = self._u32("the version")
        if version == 1:
            raise self._error(
                "GGUF version 1 is not supported (it predates the current format)",
                4,
                fix="convert the model again with a recent llama.cpp, or download a newer file",
            )
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        if version not in SUPPORTED_VERSIONS and swapped in SUPPORTED_VERSIONS:
            raise self._error(
                f"this is a big-endian GGUF (version {swapped}); only little-endian is supported",
                4,
                fix="download the little-endian build of the model",
            )
        if version not in SUPPORTED_VERSIONS:
            raise self._error(
                f"unsupported GGUF version {version} (gbdesk reads versions 2 and 3)",
                4,
                fix="update gbdesk, or use a file written by a llama.cpp of the same era",
            )
        return version

    def _kv(self, n_kv: int) -> dict[str, Any]:
        kv: dict[str, Any] = {}
        for _ in range(n_kv):
            at = self._pos
            key = self._string("a key")
            value_type = self._u32(f"the value type of {key!r}")
            if key in kv:
                raise self._error(f"key {key!r} appears twice", at)
            kv[key] = self._value(value_type, key, at)
        return kv

    def _alignment(self, kv: dict[str, Any]) -> int:
        alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            isinstance(alignment, bool)
            or not isinstance(alignment, int)
            or alignment <= 0
            or alignment & (alignment - 1)
        ):
            raise self._error(f"general.alignment is {alignment!r}, not a power of two")
        return alignment

    def _tensor_info(self, alignment: int) -> TensorInfo:
        at = self._pos
        name = self._string("a tensor name")
        n_dims = self._u32(f"the dimension count of tensor {name!r}")
        if n_dims > MAX_DIMS:
            raise self._error(
                f"tensor {name!r} has {n_dims} dimensions; ggml allows at most {MAX_DIMS}", at
            )
        shape = tuple(self._u64(f"the shape of tensor {name!r}") for _ in range(n_dims))
        type_id = self._u32(f"the type of tensor {name!r}")
        offset = self._u64(f"the data offset of tensor {name!r}")
        n_elements = 1
        for dim in shape:
            n_elements *= dim
        if any(dim > _INT64_MAX for dim in shape) or n_elements > _INT64_MAX:
            raise self._error(f"tensor {name!r} has an impossible shape {shape}", at)
        try:
            block_size, block_bytes = ggml_type_size(type_id)
        except GGUFError as exc:
            raise self._error(f"tensor {name!r} has {exc.message}", at, fix=exc.fix) from None
        if shape and shape[0] % block_size:
            raise self._error(
                f"tensor {name!r} of type {ggml_type_name(type_id)} has a first dimension "
                f"{shape[0]} that is not a multiple of its block size {block_size}",
                at,
            )
        if offset % alignment:
            raise self._error(
                f"tensor {name!r} starts at data offset {offset}, "
                f"which is not a multiple of the alignment {alignment}",
                at,
            )
        return TensorInfo(
            name=name,
            shape=shape,
            ggml_type=type_id,
            type_name=ggml_type_name(type_id),
            offset=offset,
            n_bytes=n_elements // block_size * block_bytes,
            file_index=self._file_index,
        )

    def parse(self) -> ParsedHeader:
        version = self._version()
        n_tensors_at = self._pos
        n_tensors = self._u64("the tensor count")
        n_kv_at = self._pos
        n_kv = self._u64("the key-value count")
        self._check_fits(n_kv, _MIN_KV_BYTES, "the key-value count", n_kv_at)
        self._check_fits(n_tensors, _MIN_TENSOR_INFO_BYTES, "the tensor count", n_tensors_at)
        kv = self._kv(n_kv)
        alignment = self._alignment(kv)
        self._check_fits(n_tensors, _MIN_TENSOR_INFO_BYTES, "the tensor count", n_tensors_at)
        tensors: list[TensorInfo] = []
        names: set[str] = set()
        for _ in range(n_tensors):
            at = self._pos
            tensor = self._tensor_info(alignment)
            if tensor.name in names:
                raise self._error(f"tensor {tensor.name!r} appears twice", at)
            names.add(tensor.name)
            tensors.append(tensor)
        data_offset = -(-self._pos // alignment) * alignment
        total = self._source.total_size
        if total is not None:
            self._check_data_fits(tensors, data_offset, total)
        return ParsedHeader(version, kv, tuple(tensors), data_offset, total)

    def _check_data_fits(self, tensors: list[TensorInfo], data_offset: int, total: int) -> None:
        for tensor in tensors:
            end = data_offset + tensor.offset + tensor.n_bytes
            if end > total:
                raise self._error(
                    f"the data of tensor {tensor.name!r} ends at byte {end}, "
                    f"past the end of the file ({total} bytes): it is truncated",
                    fix="download the file again; the copy on disk is incomplete or damaged",
                )
