"""Exact mode: llama.cpp's simulated allocation (no_alloc) for the real starter model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gbdesk.errors import UsageError
from gbdesk.fit.exact import (
    ExactMemory,
    ExactModeError,
    exact_memory,
    exact_memory_remote,
    write_stand_in,
)
from gbdesk.gguf import read_gguf
from tests.support.hub_server import HubServer, hub_server

__all__ = ["hub_server"]

pytestmark = pytest.mark.model

MiB = 1024 * 1024
LOG_RESOLUTION = 0.0051 * MiB  # llama.cpp logs sizes with two decimals of MiB


def _kv_bytes(path: Path, n_ctx: int, bytes_per_element: float) -> int:
    """K and V for every layer and cell: 2 x n_ctx x layers x kv heads x head size x bytes."""
    meta = read_gguf(path)
    layers = meta.arch_value("block_count")
    head_dim = meta.arch_value("embedding_length") // meta.arch_value("attention.head_count")
    width = meta.arch_value("attention.head_count_kv") * head_dim
    return int(2 * n_ctx * layers * width * bytes_per_element)


def test_weights_are_the_tensor_bytes_without_repacking(starter_model: Path) -> None:
    exact = exact_memory(starter_model, n_ctx=512, use_extra_bufts=False)
    assert [b.buffer_type for b in exact.buffers] == ["CPU"]
    assert exact.weights_bytes == read_gguf(starter_model).tensor_bytes
    assert exact.source == "log"  # a CPU build: public figures, no C++ structure read
    assert exact.kv_bytes == pytest.approx(_kv_bytes(starter_model, 512, 2), abs=LOG_RESOLUTION)
    # The child read the header only: it never held the 92 MiB of weights.
    assert exact.probe_peak_rss < exact.weights_bytes


def test_kv_cache_follows_context_and_cache_type(starter_model: Path) -> None:
    f16 = exact_memory(starter_model, n_ctx=2048, n_parallel=4)
    # parallel shares the n_ctx cells
    assert f16.kv_bytes == pytest.approx(_kv_bytes(starter_model, 2048, 2), abs=LOG_RESOLUTION)
    q8 = exact_memory(starter_model, n_ctx=2048, type_k="q8_0", type_v="q8_0", flash_attn=True)
    # Q8_0: 34 bytes per 32
    assert q8.kv_bytes == pytest.approx(_kv_bytes(starter_model, 2048, 34 / 32), abs=LOG_RESOLUTION)
    assert q8.n_ctx == 2048 and q8.type_k == "q8_0"
    # One output row (logits, float32) per parallel sequence, as llama.cpp logs it (0.01 MiB).
    assert f16.output_bytes == pytest.approx(4 * 49152 * 4, abs=0.005 * MiB)
    assert ExactMemory.from_json(f16.to_json()) == f16


def test_simulation_matches_a_real_load(starter_model: Path) -> None:
    exact = exact_memory(starter_model, n_ctx=1024)
    # The real load runs in its own process: llama.cpp's log callback is process-wide, and
    # another test in this process may have routed it elsewhere.
    real_load = (
        "import sys; from llama_cpp import Llama; "
        "Llama(sys.argv[1], n_ctx=1024, n_gpu_layers=0, verbose=True).close()"
    )
    log = subprocess.run(
        [sys.executable, "-c", real_load, str(starter_model)],
        capture_output=True,
        text=True,
        check=True,
    ).stderr

    def logged(pattern: str) -> float:
        return sum(float(m) for m in re.findall(pattern + r" =\s+([\d.]+) MiB", log))

    cpu = exact.buffer("CPU")
    assert cpu is not None
    assert logged(r"CPU KV buffer size") == pytest.approx(cpu.context / MiB, abs=0.005)
    assert logged(r"CPU compute buffer size") == pytest.approx(cpu.compute / MiB, abs=0.005)
    # Repacked weights (AMX, CPU_REPACK) take the same room as in the real load.
    for buffer in exact.buffers:
        if buffer.buffer_type not in ("CPU", "CPU_Mapped"):
            real = logged(rf"{buffer.buffer_type} model buffer size")
            assert real == pytest.approx(buffer.model / MiB, abs=0.005)


def test_quantized_v_cache_needs_flash_attention(starter_model: Path) -> None:
    with pytest.raises(ExactModeError, match="refused these context settings") as caught:
        exact_memory(starter_model, n_ctx=512, type_v="q4_0", flash_attn=False)
    assert caught.value.fix and "flash attention" in caught.value.fix


def test_damaged_model_is_an_error(starter_model: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.gguf"
    with starter_model.open("rb") as source:
        damaged.write_bytes(source.read(1_000_000))
    with pytest.raises(ExactModeError, match="could not load the model"):
        exact_memory(damaged, n_ctx=512)


def test_bad_arguments(starter_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ExactModeError, match="no such file"):
        exact_memory(tmp_path / "absent.gguf", n_ctx=512)
    with pytest.raises(UsageError, match="not a KV cache type"):
        exact_memory(starter_model, n_ctx=512, type_k="q3_k")
    with pytest.raises(UsageError, match="n_ctx must be at least 1"):
        exact_memory(starter_model, n_ctx=0)


def test_stand_in_from_the_remote_header_gives_the_local_answer(
    hub_server: HubServer, starter_model: Path, tmp_path: Path
) -> None:
    hub_server.add_file("org/SmolLM2-GGUF", starter_model.name, starter_model)
    url = f"{hub_server.url}/org/SmolLM2-GGUF/resolve/main/{starter_model.name}"
    stand_in = write_stand_in(url, tmp_path)
    assert stand_in.stat().st_size == starter_model.stat().st_size
    assert stand_in.stat().st_blocks * 512 < 4 * MiB  # sparse: the 92 MiB of weights are a hole
    assert hub_server.bytes_sent("org/SmolLM2-GGUF", starter_model.name) < 4 * MiB
    remote = exact_memory_remote(url, n_ctx=2048, use_extra_bufts=False)
    local = exact_memory(starter_model, n_ctx=2048, use_extra_bufts=False)
    assert remote.buffers == local.buffers and remote.path == url
