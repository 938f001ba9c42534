"""The values the GGUF reader returns, its error type, and the ggml tensor type table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from gbdesk.errors import GbdeskError


class GGUFError(GbdeskError):
    """A GGUF file or header is unreadable, unsupported or inconsistent.

    The message names the file (path or URL) and, where it applies, the byte offset.
    """


# ggml type id -> (elements per block, bytes per block), from the gguf package's own table.
_TYPE_SIZES: dict[int, tuple[int, int]] = {
    int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()
}


def ggml_type_size(type_id: int) -> tuple[int, int]:
    """Block size (elements) and bytes per block of a ggml tensor type.

    Raises:
        GGUFError: the type id is not one this version of the ``gguf`` package knows.
    """
    try:
        return _TYPE_SIZES[type_id]
    except KeyError:
        raise GGUFError(
            f"unknown ggml tensor type {type_id}",
            fix="the model may need a newer gbdesk (and gguf package) than this one",
        ) from None


def ggml_type_name(type_id: int) -> str:
    """The ggml type's name, e.g. ``Q4_1``; ``TYPE_<id>`` for an id without a name."""
    try:
        return GGMLQuantizationType(type_id).name
    except ValueError:
        return f"TYPE_{type_id}"


FLOAT_TYPES = frozenset({"F64", "F32", "F16", "BF16"})


def bytes_per_element(type_name: str) -> float | None:
    """Bytes one weight takes in the ggml type called ``type_name`` (``Q4_K``: 0.5625), or
    None for a name this version of the ``gguf`` package does not know."""
    kind = GGMLQuantizationType.__members__.get(type_name)
    if kind is None:
        return None
    block, block_bytes = GGML_QUANT_SIZES[kind]
    return block_bytes / block


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's description from a GGUF header (no data)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    type_name: str
    offset: int  # relative to the start of its file's data section
    n_bytes: int  # exact, from the type's block size and bytes per block
    file_index: int = 0  # which split part holds it (0 for single files)

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class GGUFMetadata:
    """Key-values and tensor infos of a GGUF model (all parts merged for split models).

    ``kv`` holds Python values: ints, floats, bools, strings, and tuples for arrays (nested
    arrays are nested tuples). For split models ``kv`` comes from the first part.
    """

    version: int
    kv: Mapping[str, Any]
    tensors: tuple[TensorInfo, ...]
    source: str  # path or URL of the first part
    split_count: int = 1
    file_sizes: tuple[int, ...] = ()
    # Where each part's data section starts (absolute offset in that part's file).
    data_offsets: tuple[int, ...] = field(default=(), compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a key, or ``default`` when the header lacks it."""
        return self.kv.get(key, default)

    @property
    def architecture(self) -> str:
        """``general.architecture`` (e.g. ``llama``), or an empty string when missing."""
        value = self.kv.get("general.architecture", "")
        return value if isinstance(value, str) else ""

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        """An architecture key: ``arch_value("block_count")`` reads ``llama.block_count``."""
        return self.kv.get(f"{self.architecture}.{suffix}", default)

    @property
    def tensor_bytes(self) -> int:
        """Total bytes of every tensor's data, over all parts."""
        return sum(tensor.n_bytes for tensor in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        """The tensor with this name, or None."""
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        return None
