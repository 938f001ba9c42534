"""Hub repos for the search tests: the real starter GGUF and synthetic models of real sizes.

A synthetic model is a real GGUF header (key-values, a vocabulary, every tensor's info with the
shapes and types of a llama-style model of that size) written with the ``gguf`` package's
GGUFWriter, and served by the test Hub padded with zeros to the file size the header implies
(``HubServer.add_file(pad_to=...)``), so a "3B" quant costs only its header in memory while a
reader sees the real file size.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from gbdesk.gguf.model import ggml_type_size
from tests.support.hub_server import HubServer

STARTER_REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPLIT_REPO = "test-org/SmolLM2-split-GGUF"
QUANTS_REPO = "synth/Tiny-Llama-3B-GGUF"  # several quants
BIG_REPO = "synth/Huge-Llama-70B-GGUF"  # does not fit a small machine
GATED_REPO = "gated-org/Gated-Llama-1B-GGUF"
NO_GGUF_REPO = "synth/Tiny-Llama-3B-safetensors"
ALIEN_REPO = "synth/Alien-1B-GGUF"  # an architecture llama.cpp does not know
ALIEN_ARCH = "gbdeskalien"
GATED_TOKEN = "hf_test_gated_token"

# name -> (ggml type of the big matrices, bits per weight for the file name)
QUANT_TYPES = {
    "Q4_K_M": GGMLQuantizationType.Q4_K,
    "Q8_0": GGMLQuantizationType.Q8_0,
    "F16": GGMLQuantizationType.F16,
}


def _tensor_bytes(shape: tuple[int, ...], ggml_type: int) -> int:
    block, size = ggml_type_size(ggml_type)
    elements = 1
    for dim in shape:
        elements *= dim
    return elements // block * size


def synthetic_gguf(
    path: Path,
    *,
    arch: str = "llama",
    n_layers: int = 26,
    n_embd: int = 3072,
    n_ff: int = 8192,
    n_head: int = 24,
    n_head_kv: int = 8,
    n_vocab: int = 32_000,
    n_ctx: int = 8192,
    ggml_type: int = GGMLQuantizationType.Q4_K,
) -> tuple[bytes, int]:
    """A llama-style GGUF header at ``path``; returns (header bytes, full file size)."""
    writer = GGUFWriter(path, arch)
    writer.add_name(path.stem)
    writer.add_block_count(n_layers)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(n_vocab)])
    kv = n_embd // n_head * n_head_kv
    shapes: list[tuple[str, tuple[int, ...], int]] = [
        ("token_embd.weight", (n_embd, n_vocab), ggml_type),
        ("output_norm.weight", (n_embd,), GGMLQuantizationType.F32),
        ("output.weight", (n_embd, n_vocab), ggml_type),
    ]
    for layer in range(n_layers):
        shapes += [
            (f"blk.{layer}.attn_norm.weight", (n_embd,), GGMLQuantizationType.F32),
            (f"blk.{layer}.attn_q.weight", (n_embd, n_embd), ggml_type),
            (f"blk.{layer}.attn_k.weight", (n_embd, kv), ggml_type),
            (f"blk.{layer}.attn_v.weight", (n_embd, kv), ggml_type),
            (f"blk.{layer}.attn_output.weight", (n_embd, n_embd), ggml_type),
            (f"blk.{layer}.ffn_norm.weight", (n_embd,), GGMLQuantizationType.F32),
            (f"blk.{layer}.ffn_gate.weight", (n_embd, n_ff), ggml_type),
            (f"blk.{layer}.ffn_up.weight", (n_embd, n_ff), ggml_type),
            (f"blk.{layer}.ffn_down.weight", (n_ff, n_embd), ggml_type),
        ]
    data = 0
    for name, shape, kind in shapes:
        n_bytes = _tensor_bytes(shape, kind)
        # GGUFWriter takes numpy shapes (outermost first); GGUF stores them reversed.
        # (float32 as the numpy type keeps the shape in elements; raw_dtype is the real type)
        writer.add_tensor_info(name, tuple(reversed(shape)), np.float32, n_bytes, kind)
        data += n_bytes + (-n_bytes % 32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = path.read_bytes()
    return header, len(header) + (-len(header) % 32) + data


@functools.lru_cache(maxsize=32)
def _synthetic(filename: str, shape: tuple[tuple[str, int | str], ...]) -> tuple[bytes, int]:
    with tempfile.TemporaryDirectory() as folder:
        return synthetic_gguf(Path(folder) / filename, **dict(shape))  # type: ignore[arg-type]


def add_synthetic(hub: HubServer, repo: str, filename: str, **shape: int | str) -> int:
    """Serve a synthetic GGUF (built once per process); returns its file size."""
    header, size = _synthetic(filename, tuple(sorted(shape.items())))
    hub.add_file(repo, filename, header, pad_to=size)
    return size


def populate(hub: HubServer, starter_model: Path, split_parts: list[Path]) -> None:
    """The search tests' Hub: the starter (whole and split), several quants, a model too big
    for a small machine, a gated repo, a repo without GGUF and an unknown architecture."""
    hub.add_file(STARTER_REPO, STARTER_FILE, starter_model)
    hub.set_meta(STARTER_REPO, downloads=9_000, likes=300, trending_score=50, license="apache-2.0")
    for part in split_parts:
        hub.add_file(SPLIT_REPO, part.name, part)
    hub.set_meta(SPLIT_REPO, downloads=10, likes=1, license="apache-2.0")
    for name, kind in QUANT_TYPES.items():
        add_synthetic(hub, QUANTS_REPO, f"Tiny-Llama-3B-{name}.gguf", ggml_type=kind)
    hub.add_file(QUANTS_REPO, "README.md", b"# Tiny Llama 3B\n")
    hub.set_meta(
        QUANTS_REPO,
        downloads=5_000,
        likes=120,
        trending_score=90,
        license="llama3.2",
        last_modified="2025-11-20T10:00:00.000Z",
    )
    add_synthetic(
        hub,
        BIG_REPO,
        "Huge-Llama-70B-Q4_K_M.gguf",
        n_layers=80,
        n_embd=8192,
        n_ff=28672,
        n_head=64,
        n_head_kv=8,
        n_vocab=32_000,
    )
    hub.set_meta(BIG_REPO, downloads=3_000, likes=80, license="llama3.1")
    hub.add_repo(GATED_REPO, gated_token=GATED_TOKEN)
    add_synthetic(
        hub,
        GATED_REPO,
        "Gated-Llama-1B-Q4_K_M.gguf",
        n_layers=16,
        n_embd=2048,
        n_ff=8192,
        n_head=32,
        n_head_kv=8,
    )
    hub.set_meta(GATED_REPO, downloads=2_000, likes=60, license="llama3.2")
    hub.add_file(NO_GGUF_REPO, "model.safetensors", b"\0" * 64)
    hub.set_meta(NO_GGUF_REPO, downloads=8_000, likes=10)
    add_synthetic(
        hub,
        ALIEN_REPO,
        "Alien-1B-Q4_K_M.gguf",
        arch=ALIEN_ARCH,
        n_layers=16,
        n_embd=2048,
        n_ff=8192,
        n_head=32,
        n_head_kv=8,
    )
    hub.set_meta(ALIEN_REPO, downloads=100, likes=5, license="mit")


@pytest.fixture(scope="session")
def starter_split_parts(
    starter_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """The starter model split in two llama.cpp-style parts (made once per session)."""
    from tests.support.gguf_split import split_gguf

    return split_gguf(starter_model, tmp_path_factory.mktemp("search-split"), parts=2)


@pytest.fixture
def search_hub(hub_server: HubServer, starter_model: Path, starter_split_parts: list[Path]):
    """The local Hub with every search test repo (see :func:`populate`)."""
    populate(hub_server, starter_model, starter_split_parts)
    return hub_server
