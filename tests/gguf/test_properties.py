"""Property-based tests: any bytes give either metadata or a GGUFError, within bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbdesk.gguf import GGUFError, GGUFMetadata, read_gguf_bytes
from tests.gguf.builders import EVERY_VALUE_TYPE, write_small_model

# Reading a header never needs much more than the bytes given (plus Python objects for them).
_PEAK_LIMIT = 8 * 1024 * 1024

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("prop") / "small.gguf"
    return write_small_model(path, extra_kv=EVERY_VALUE_TYPE).read_bytes()


def _read_bounded(data: bytes) -> GGUFMetadata | None:
    """Read ``data``; return the metadata, or None on GGUFError. Anything else fails the test."""
    tracemalloc.start()
    try:
        return read_gguf_bytes(data)
    except GGUFError as error:
        assert error.message.startswith("<bytes>")
        return None
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < _PEAK_LIMIT, f"reading {len(data)} bytes peaked at {peak} bytes"


@_settings
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _read_bounded(data)


@_settings
@given(st.binary(max_size=512))
def test_random_bytes_after_a_valid_start(tail: bytes) -> None:
    # Past the magic and version, so the counts and everything after are random.
    _read_bounded(b"GGUF\x03\x00\x00\x00" + tail)


@_settings
@given(data=st.data())
def test_mutations_of_a_valid_file(valid_file: bytes, data: st.DataObject) -> None:
    mutated = bytearray(valid_file)
    header_end = read_gguf_bytes(valid_file).data_offsets[0]
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, header_end - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    result = _read_bounded(bytes(mutated))
    if result is not None:
        # Whatever it accepted is self-consistent: every tensor lies inside the file.
        for tensor in result.tensors:
            assert result.data_offsets[0] + tensor.offset + tensor.n_bytes <= len(mutated)


@_settings
@given(data=st.data())
def test_large_values_at_count_and_length_positions(valid_file: bytes, data: st.DataObject) -> None:
    # Overwrite an aligned 8-byte word with a huge number: counts and lengths become absurd.
    mutated = bytearray(valid_file)
    header_end = read_gguf_bytes(valid_file).data_offsets[0]
    position = data.draw(st.integers(0, header_end - 8))
    value = data.draw(st.sampled_from([2**31, 2**32 - 1, 2**40, 2**62, 2**63, 2**64 - 1]))
    mutated[position : position + 8] = value.to_bytes(8, "little")
    _read_bounded(bytes(mutated))


@_settings
@given(data=st.data())
def test_truncations_of_a_valid_file(valid_file: bytes, data: st.DataObject) -> None:
    end = data.draw(st.integers(0, len(valid_file) - 1))
    meta = read_gguf_bytes(valid_file)
    data_end = meta.data_offsets[0] + max(t.offset + t.n_bytes for t in meta.tensors)
    result = _read_bounded(valid_file[:end])
    assert (result is None) == (end < data_end)


def test_the_valid_file_itself_reads(valid_file: bytes, tmp_path: Path) -> None:
    meta = _read_bounded(valid_file)
    assert meta is not None and len(meta.tensors) == 3
