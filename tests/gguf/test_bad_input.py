"""Bad GGUF input ends in a GGUFError that says what and where, never a crash or a huge read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gbdesk.gguf import GGUFError, read_gguf, read_gguf_bytes
from gbdesk.gguf.split import split_path
from tests.gguf.builders import gguf_string, kv_entry, raw_gguf, tensor_entry

U32, STRING, ARRAY, INT32 = 4, 8, 9, 5
F32, Q4_0 = 0, 2


def _read(tmp_path: Path, data: bytes, name: str = "bad.gguf", **kwargs: int) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    read_gguf(path, **kwargs)


def _expect(tmp_path: Path, data: bytes, pattern: str, **kwargs: int) -> GGUFError:
    with pytest.raises(GGUFError, match=pattern) as caught:
        _read(tmp_path, data, **kwargs)
    assert str(tmp_path / "bad.gguf") in caught.value.message
    return caught.value


def _arch() -> bytes:
    return kv_entry("general.architecture", STRING, gguf_string("llama"))


def test_wrong_magic(tmp_path: Path) -> None:
    error = _expect(tmp_path, b"GGML" + bytes(60), r"at offset 0: not a GGUF file .*b'GGML'")
    assert error.fix and "download" in error.fix


def test_empty_file(tmp_path: Path) -> None:
    _expect(tmp_path, b"", "ends while reading the magic and version .0 bytes.: it is truncated")


def test_version_1_is_refused(tmp_path: Path) -> None:
    _expect(tmp_path, raw_gguf(version=1), "GGUF version 1 is not supported")


def test_unknown_version(tmp_path: Path) -> None:
    _expect(tmp_path, raw_gguf(version=4), "unsupported GGUF version 4")


def test_big_endian_is_refused(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    _expect(tmp_path, data, "big-endian GGUF .version 3.")


@pytest.mark.parametrize("field", ["n_kv", "n_tensors"])
@pytest.mark.parametrize("count", [2**32, 2**63, 2**64 - 1])
def test_absurd_counts(tmp_path: Path, field: str, count: int) -> None:
    data = raw_gguf(kvs=[_arch()], **{field: count})
    what = "key-value count" if field == "n_kv" else "tensor count"
    _expect(tmp_path, data, f"at offset (8|16): the {what} is {count}, more than the remaining")


def test_absurd_key_length(tmp_path: Path) -> None:
    entry = struct.pack("<Q", 2**62) + b"general.architecture"
    _expect(
        tmp_path, raw_gguf(kvs=[entry]), "at offset 24: the length of a key is 4611686018427387904"
    )


def test_absurd_string_value_length(tmp_path: Path) -> None:
    entry = kv_entry("general.name", STRING, struct.pack("<Q", 10**12) + b"x")
    _expect(tmp_path, raw_gguf(kvs=[entry]), "the length of the value of 'general.name'")


def test_absurd_array_count(tmp_path: Path) -> None:
    entry = kv_entry("tokenizer.ggml.scores", ARRAY, struct.pack("<IQ", INT32, 2**61))
    _expect(tmp_path, raw_gguf(kvs=[entry]), "element count of 'tokenizer.ggml.scores' is")


def test_absurd_string_in_array(tmp_path: Path) -> None:
    payload = struct.pack("<IQ", STRING, 2) + gguf_string("ok") + struct.pack("<Q", 2**40)
    entry = kv_entry("tokenizer.ggml.tokens", ARRAY, payload)
    _expect(tmp_path, raw_gguf(kvs=[entry]), "length of an element of 'tokenizer.ggml.tokens'")


def test_unknown_value_type(tmp_path: Path) -> None:
    entry = kv_entry("general.name", 13, b"\0" * 8)
    _expect(tmp_path, raw_gguf(kvs=[entry]), "'general.name' has an unknown value type 13")


def test_unknown_array_element_type(tmp_path: Path) -> None:
    entry = kv_entry("x.list", ARRAY, struct.pack("<IQ", 99, 1))
    _expect(tmp_path, raw_gguf(kvs=[entry]), "array 'x.list' has an unknown element type 99")


def test_arrays_nested_too_deep(tmp_path: Path) -> None:
    payload = struct.pack("<IQ", ARRAY, 1) * 40 + struct.pack("<IQ", INT32, 0)
    entry = kv_entry("x.deep", ARRAY, payload)
    _expect(tmp_path, raw_gguf(kvs=[entry]), "nests arrays more than 16 deep")


def test_empty_and_shallow_nested_arrays_are_fine(tmp_path: Path) -> None:
    empty = kv_entry("x.empty", ARRAY, struct.pack("<IQ", INT32, 0))
    nested = kv_entry(
        "x.nested",
        ARRAY,
        struct.pack("<IQ", ARRAY, 2)
        + struct.pack("<IQ", INT32, 1)
        + struct.pack("<i", 7)
        + struct.pack("<IQ", INT32, 0),
    )
    path = tmp_path / "ok.gguf"
    path.write_bytes(raw_gguf(kvs=[empty, nested]))
    meta = read_gguf(path)
    assert meta.kv == {"x.empty": (), "x.nested": ((7,), ())}
    assert meta.tensors == ()


def test_duplicate_key(tmp_path: Path) -> None:
    _expect(tmp_path, raw_gguf(kvs=[_arch(), _arch()]), "key 'general.architecture' appears twice")


@pytest.mark.parametrize("alignment", [0, 3, 48])
def test_bad_alignment(tmp_path: Path, alignment: int) -> None:
    entry = kv_entry("general.alignment", U32, struct.pack("<I", alignment))
    _expect(tmp_path, raw_gguf(kvs=[entry]), f"general.alignment is {alignment}, not a power")


def test_alignment_of_the_wrong_type(tmp_path: Path) -> None:
    entry = kv_entry("general.alignment", STRING, gguf_string("32"))
    _expect(tmp_path, raw_gguf(kvs=[entry]), "general.alignment is '32', not a power")


def test_too_many_dimensions(tmp_path: Path) -> None:
    info = tensor_entry("t", [1, 1, 1, 1, 1], F32, 0)
    _expect(tmp_path, raw_gguf(tensors=[info], data=b"\0" * 32), "'t' has 5 dimensions")


@pytest.mark.parametrize("type_id", [4, 5, 36, 1000])
def test_unknown_ggml_type(tmp_path: Path, type_id: int) -> None:
    info = tensor_entry("blk.0.w", [32], type_id, 0)
    error = _expect(
        tmp_path, raw_gguf(tensors=[info], data=b"\0" * 64), f"unknown ggml tensor type {type_id}"
    )
    assert "'blk.0.w'" in error.message
    assert error.fix


def test_row_not_a_multiple_of_the_block(tmp_path: Path) -> None:
    info = tensor_entry("w", [33, 2], Q4_0, 0)
    _expect(
        tmp_path, raw_gguf(tensors=[info], data=b"\0" * 64), "not a multiple of its block size 32"
    )


def test_impossible_shape(tmp_path: Path) -> None:
    info = tensor_entry("w", [2**40, 2**40], F32, 0)
    _expect(tmp_path, raw_gguf(tensors=[info]), "'w' has an impossible shape")


def test_misaligned_tensor_offset(tmp_path: Path) -> None:
    info = tensor_entry("w", [4], F32, 8)
    _expect(tmp_path, raw_gguf(tensors=[info], data=b"\0" * 64), "data offset 8, which is not")


def test_duplicate_tensor(tmp_path: Path) -> None:
    infos = [tensor_entry("w", [8], F32, 0), tensor_entry("w", [8], F32, 32)]
    _expect(tmp_path, raw_gguf(tensors=infos, data=b"\0" * 64), "tensor 'w' appears twice")


def test_tensor_data_past_the_end(tmp_path: Path) -> None:
    infos = [tensor_entry("a", [8], F32, 0), tensor_entry("b", [1024], F32, 32)]
    error = _expect(
        tmp_path, raw_gguf(tensors=infos, data=b"\0" * 64), "data of tensor 'b' ends at byte"
    )
    assert "past the end of the file" in error.message


def test_header_larger_than_the_cap(tmp_path: Path) -> None:
    tokens = struct.pack("<IQ", STRING, 1000) + gguf_string("x" * 100) * 1000
    data = raw_gguf(kvs=[kv_entry("tokenizer.ggml.tokens", ARRAY, tokens)])
    _expect(tmp_path, data, "the header is larger than 4096 bytes", max_header_bytes=4096)


def test_every_truncation_of_a_small_model(small_model: Path, tmp_path: Path) -> None:
    data = small_model.read_bytes()
    meta = read_gguf(small_model)
    # Like llama.cpp, the padding after the last tensor's data is not required.
    data_end = meta.data_offsets[0] + max(t.offset + t.n_bytes for t in meta.tensors)
    for end in range(data_end):
        with pytest.raises(GGUFError, match="truncated"):
            read_gguf_bytes(data[:end])
    assert read_gguf_bytes(data[:data_end]).tensors == meta.tensors


def test_truncations_of_the_starter_model(starter_model: Path, tmp_path: Path) -> None:
    whole = read_gguf(starter_model)
    with starter_model.open("rb") as handle:
        head = handle.read(whole.data_offsets[0] + 4096)
    cuts = {
        "the tensor count": 10,  # inside the counts
        "the tensor count is 272": 5000,  # the counts promise more than the file holds
        "an element of 'tokenizer.ggml.tokens'": 700_000,  # inside the vocabulary
        "'tokenizer.ggml.merges'": 1_300_000,
        "a tensor name": whole.data_offsets[0] - 500,  # inside the tensor infos
        "data of tensor 'token_embd.weight'": whole.data_offsets[0] + 4096,  # inside the data
    }
    for where, end in cuts.items():
        error = _expect(tmp_path, head[:end], "truncated")
        assert where in error.message
        assert error.fix


def _split_part(number: int, count: int, total_tensors: int, names: list[str]) -> bytes:
    kvs = [
        kv_entry("split.no", 2, struct.pack("<H", number)),
        kv_entry("split.count", 2, struct.pack("<H", count)),
        kv_entry("split.tensors.count", INT32, struct.pack("<i", total_tensors)),
    ]
    infos = [tensor_entry(name, [8], F32, 32 * i) for i, name in enumerate(names)]
    return raw_gguf(kvs=kvs, tensors=infos, data=b"\0" * 32 * len(names))


def test_split_tensor_total_that_does_not_add_up(tmp_path: Path) -> None:
    prefix = str(tmp_path / "m")
    Path(split_path(prefix, 1, 2)).write_bytes(_split_part(0, 2, 5, ["a", "b"]))
    Path(split_path(prefix, 2, 2)).write_bytes(_split_part(1, 2, 5, ["c"]))
    with pytest.raises(GGUFError, match=r"split\.tensors\.count is 5, but the 2 parts hold 3"):
        read_gguf(split_path(prefix, 1, 2))


def test_split_tensor_in_two_parts(tmp_path: Path) -> None:
    prefix = str(tmp_path / "m")
    Path(split_path(prefix, 1, 2)).write_bytes(_split_part(0, 2, 3, ["a", "b"]))
    Path(split_path(prefix, 2, 2)).write_bytes(_split_part(1, 2, 3, ["a"]))
    with pytest.raises(GGUFError, match="tensor 'a' is also in an earlier part"):
        read_gguf(split_path(prefix, 1, 2))


def test_absurd_split_count(tmp_path: Path) -> None:
    entry = kv_entry("split.count", INT32, struct.pack("<i", -1))
    _expect(tmp_path, raw_gguf(kvs=[entry]), "split.count is -1, not a part count")
