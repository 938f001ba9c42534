"""Reading local GGUF files: the real starter model, written files, split models."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader

from gbdesk.gguf import GGUFError, read_gguf
from tests.gguf.builders import EVERY_VALUE_TYPE, expected_value, write_small_model

_VIRTUAL_FIELDS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}


def _as_plain(value: object) -> object:
    """Our tuples as lists, to compare with GGUFReader's contents()."""
    if isinstance(value, tuple):
        return [_as_plain(item) for item in value]
    return value


def test_starter_model_matches_the_gguf_package(starter_model: Path) -> None:
    ours = read_gguf(starter_model)
    theirs = GGUFReader(starter_model)

    fields = {k: f.contents() for k, f in theirs.fields.items() if k not in _VIRTUAL_FIELDS}
    assert {k: _as_plain(v) for k, v in ours.kv.items()} == fields
    assert ours.version == theirs.fields["GGUF.version"].contents() == 3
    assert len(ours.tensors) == len(theirs.tensors) == 272
    for mine, reference in zip(ours.tensors, theirs.tensors, strict=True):
        assert mine.name == reference.name
        assert mine.shape == tuple(int(d) for d in reference.shape)
        assert mine.ggml_type == int(reference.tensor_type)
        assert mine.type_name == reference.tensor_type.name
        assert mine.n_bytes == int(reference.n_bytes)
        assert ours.data_offsets[0] + mine.offset == int(reference.data_offset)
        assert mine.file_index == 0
    assert ours.data_offsets == (theirs.data_offset,)
    assert ours.file_sizes == (starter_model.stat().st_size,)
    assert ours.split_count == 1
    assert ours.source == str(starter_model)


def test_starter_model_accessors(starter_model: Path) -> None:
    meta = read_gguf(starter_model)
    assert meta.architecture == "llama"
    assert meta.arch_value("block_count") == 30
    assert meta.arch_value("attention.head_count_kv") == 3
    assert meta.arch_value("no.such.key", 7) == 7
    assert meta.get("general.file_type") == 3
    assert meta.get("missing") is None
    # Every tensor's data lies inside the file, and together they fill the data section.
    assert meta.data_offsets[0] + meta.tensor_bytes <= meta.file_sizes[0]
    assert meta.tensor_bytes > 0.95 * (meta.file_sizes[0] - meta.data_offsets[0])
    embedding = meta.tensor("token_embd.weight")
    assert embedding is not None and embedding.shape == (576, 49152)
    assert embedding.n_bytes == 576 * 49152 // 32 * 34  # Q8_0: 34 bytes per 32 elements


@pytest.mark.parametrize("version", [2, 3])
def test_every_value_type_round_trips(tmp_path: Path, version: int) -> None:
    path = write_small_model(tmp_path / "m.gguf", version=version, extra_kv=EVERY_VALUE_TYPE)
    meta = read_gguf(path)
    assert meta.version == version
    for key, (value, _vtype, _sub) in EVERY_VALUE_TYPE.items():
        got = meta.kv[key]
        assert got == expected_value(value), key
        assert type(got) is type(expected_value(value)), key
    assert meta.kv["tokenizer.ggml.tokens"] == ("<s>", "</s>", "hi")
    assert [(t.name, t.shape, t.type_name, t.n_bytes) for t in meta.tensors] == [
        ("token_embd.weight", (64, 3), "F32", 768),
        ("blk.0.attn_norm.weight", (64,), "F16", 128),
        ("blk.0.attn_q.weight", (64, 2), "Q4_0", 72),
    ]
    reference = GGUFReader(path)
    for mine, theirs in zip(meta.tensors, reference.tensors, strict=True):
        assert meta.data_offsets[0] + mine.offset == int(theirs.data_offset)


def test_kv_is_read_only(small_model: Path) -> None:
    meta = read_gguf(small_model)
    with pytest.raises(TypeError):
        meta.kv["general.architecture"] = "other"  # type: ignore[index]


def test_split_model_merges_every_part(starter_model: Path, split_starter: list[Path]) -> None:
    whole = read_gguf(starter_model)
    meta = read_gguf(split_starter[0])
    assert meta.split_count == 3
    assert meta.source == str(split_starter[0])
    assert meta.file_sizes == tuple(p.stat().st_size for p in split_starter)
    assert [t.name for t in meta.tensors] == [t.name for t in whole.tensors]
    assert meta.tensor_bytes == whole.tensor_bytes
    assert {t.file_index for t in meta.tensors} == {0, 1, 2}
    assert meta.kv["split.count"] == 3
    assert meta.kv["split.tensors.count"] == 272
    for key, value in whole.kv.items():
        assert meta.kv[key] == value
    # Offsets are relative to each part's own data section and lie inside that part.
    for tensor in meta.tensors:
        end = meta.data_offsets[tensor.file_index] + tensor.offset + tensor.n_bytes
        assert end <= meta.file_sizes[tensor.file_index]


def test_any_part_of_a_split_model_reads_the_whole_model(split_starter: list[Path]) -> None:
    meta = read_gguf(split_starter[2])
    assert meta.source == str(split_starter[0])
    assert len(meta.tensors) == 272


def test_split_parts_agree_with_the_gguf_package(split_starter: list[Path]) -> None:
    meta = read_gguf(split_starter[0])
    # Parts 2 and 3 only: part 1's vocabulary makes GGUFReader slow, and the whole-model test
    # already compares it.
    for index, part in list(enumerate(split_starter))[1:]:
        reference = GGUFReader(part)
        assert reference.fields["split.no"].contents() == index
        mine = [t for t in meta.tensors if t.file_index == index]
        assert [t.name for t in mine] == [t.name for t in reference.tensors]
        for tensor, theirs in zip(mine, reference.tensors, strict=True):
            assert meta.data_offsets[index] + tensor.offset == int(theirs.data_offset)
            assert tensor.n_bytes == int(theirs.n_bytes)


def _link_parts(parts: list[Path], folder: Path) -> list[Path]:
    links = []
    for part in parts:
        link = folder / part.name
        link.symlink_to(part)
        links.append(link)
    return links


def test_missing_split_part_is_named(tmp_path: Path, split_starter: list[Path]) -> None:
    _link_parts(split_starter[:2], tmp_path)
    with pytest.raises(GGUFError, match=r"-00003-of-00003\.gguf: no such file"):
        read_gguf(tmp_path / split_starter[0].name)


def test_renamed_split_part_cannot_find_its_siblings(
    tmp_path: Path, split_starter: list[Path]
) -> None:
    renamed = tmp_path / "model.gguf"
    renamed.symlink_to(split_starter[0])
    with pytest.raises(GGUFError, match="one of 3 parts") as caught:
        read_gguf(renamed)
    assert "-00001-of-00003.gguf" in caught.value.message
    assert caught.value.fix


def test_parts_in_the_wrong_order_are_refused(tmp_path: Path, split_starter: list[Path]) -> None:
    # Parts 2 and 3 swapped: part 2's name now holds the file that says split.no = 2.
    first, second, third = split_starter
    (tmp_path / first.name).symlink_to(first)
    (tmp_path / second.name).symlink_to(third)
    (tmp_path / third.name).symlink_to(second)
    with pytest.raises(GGUFError, match="should be part 1 of 3") as caught:
        read_gguf(tmp_path / first.name)
    assert second.name in caught.value.message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="no such file") as caught:
        read_gguf(tmp_path / "absent.gguf")
    assert caught.value.fix
    with pytest.raises(GGUFError, match="is a folder"):
        read_gguf(tmp_path)
