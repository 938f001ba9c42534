"""Small GGUF files for tests, written by the ``gguf`` package's own GGUFWriter (not by us)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

# One key per value type, plus arrays of every element kind, nested arrays included.
EVERY_VALUE_TYPE: dict[str, tuple[Any, GGUFValueType, GGUFValueType | None]] = {
    "test.uint8": (255, GGUFValueType.UINT8, None),
    "test.int8": (-128, GGUFValueType.INT8, None),
    "test.uint16": (65535, GGUFValueType.UINT16, None),
    "test.int16": (-32768, GGUFValueType.INT16, None),
    "test.uint32": (4_294_967_295, GGUFValueType.UINT32, None),
    "test.int32": (-2_147_483_648, GGUFValueType.INT32, None),
    "test.uint64": (18_446_744_073_709_551_615, GGUFValueType.UINT64, None),
    "test.int64": (-9_223_372_036_854_775_808, GGUFValueType.INT64, None),
    "test.float32": (0.5, GGUFValueType.FLOAT32, None),
    "test.float64": (1e300, GGUFValueType.FLOAT64, None),
    "test.bool_true": (True, GGUFValueType.BOOL, None),
    "test.bool_false": (False, GGUFValueType.BOOL, None),
    "test.string": ("héllo, wörld ✓", GGUFValueType.STRING, None),
    "test.empty_string": ("", GGUFValueType.STRING, None),
    "test.array_int32": ([1, -2, 3], GGUFValueType.ARRAY, GGUFValueType.INT32),
    "test.array_float32": ([0.25, -1.5], GGUFValueType.ARRAY, GGUFValueType.FLOAT32),
    "test.array_uint8": ([0, 1, 255], GGUFValueType.ARRAY, GGUFValueType.UINT8),
    "test.array_bool": ([True, False, True], GGUFValueType.ARRAY, GGUFValueType.BOOL),
    "test.array_float64": ([2.5, 1e-300], GGUFValueType.ARRAY, GGUFValueType.FLOAT64),
    "test.array_int64": ([-(2**62), 2**62], GGUFValueType.ARRAY, GGUFValueType.INT64),
    "test.array_string": (["a", "", "ü€"], GGUFValueType.ARRAY, GGUFValueType.STRING),
    "test.array_nested": (
        [["x", "y"], ["z"]],
        GGUFValueType.ARRAY,
        GGUFValueType.ARRAY,
    ),
}


def expected_value(value: Any) -> Any:
    """How our reader returns a written value: arrays become (nested) tuples."""
    if isinstance(value, list):
        return tuple(expected_value(item) for item in value)
    return value


def write_small_model(
    path: Path,
    *,
    version: int = 3,
    extra_kv: dict[str, tuple[Any, GGUFValueType, GGUFValueType | None]] | None = None,
) -> Path:
    """A tiny 'llama' GGUF with a few keys and three tensors (F32, F16, Q4_0).

    ``version`` 2 patches the version field: v2 and v3 little-endian files are laid out the
    same, and GGUFWriter only writes v3.
    """
    writer = GGUFWriter(path, "llama")
    writer.add_block_count(2)
    writer.add_context_length(128)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_token_list(["<s>", "</s>", "hi"])
    for key, (value, vtype, sub_type) in (extra_kv or {}).items():
        writer.add_key_value(key, value, vtype, sub_type)
    writer.add_tensor("token_embd.weight", np.ones((3, 64), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float16))
    # Q4_0: 32 elements per 18-byte block; 2 rows of 64 elements = 4 blocks = 72 bytes.
    writer.add_tensor(
        "blk.0.attn_q.weight",
        np.zeros((2, 36), dtype=np.uint8),
        raw_dtype=GGMLQuantizationType.Q4_0,
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if version != 3:
        data = bytearray(path.read_bytes())
        data[4:8] = version.to_bytes(4, "little")
        path.write_bytes(bytes(data))
    return path


def gguf_string(text: str | bytes) -> bytes:
    """A GGUF string: u64 length, then the bytes."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_entry(key: str, value_type: int, payload: bytes) -> bytes:
    """One key-value: key string, value type u32, the value's bytes as given."""
    return gguf_string(key) + struct.pack("<I", value_type) + payload


def tensor_entry(name: str, dims: Sequence[int], ggml_type: int, offset: int) -> bytes:
    """One tensor info: name, n_dims u32, dims u64 each, type u32, offset u64."""
    return (
        gguf_string(name)
        + struct.pack(f"<I{len(dims)}Q", len(dims), *dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def raw_gguf(
    *,
    kvs: Sequence[bytes] = (),
    tensors: Sequence[bytes] = (),
    version: int = 3,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    data: bytes = b"",
    alignment: int = 32,
) -> bytes:
    """A GGUF file assembled by hand, so tests can write what no well-behaved writer would."""
    header = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if n_tensors is None else n_tensors,
        len(kvs) if n_kv is None else n_kv,
    )
    header += b"".join(kvs) + b"".join(tensors)
    header += b"\0" * (-len(header) % alignment)
    return header + data
