"""Memory pieces llama.cpp allocates for a context: KV cache, compute buffers, fixed overheads.

Each function mirrors one allocation of llama.cpp (the commit bundled with llama-cpp-python
0.3.36) or of llama-cpp-python; the constants measured on this project's machine say where
they were measured (docs/estimator.md has the numbers and the command to re-measure).
"""

from __future__ import annotations

from dataclasses import dataclass

from gbdesk.catalog.model import Architecture

MIB = 1 << 20
# Bytes per element of the KV cache types llama.cpp offers (q8_0: 34 bytes per 32 values...).
CACHE_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KV_PAD = 256  # llama.cpp pads each sequence's cells to a multiple of 256

# Measured here (RSS after loading the model, less the mapped file; synthetic models of 4,096,
# 65,536 and 262,144 SentencePiece tokens and SmolLM2-135M's 49,152 BPE tokens with 48,900
# merges): the vocabulary tables cost ~123 bytes a token and ~200 bytes a BPE merge.
MODEL_FIXED_BYTES = 2 * MIB
MODEL_BYTES_PER_VOCAB_TOKEN = 123
MODEL_BYTES_PER_MERGE = 200
# Measured here (the synthetic models of every architecture and SmolLM2-135M): a context adds
# its KV cache, its output buffer, the activations and about 3 MiB more.
CONTEXT_FIXED_BYTES = 3 * MIB
# Measured here: RSS of a Python process right after `import llama_cpp` (CPU build).
RUNTIME_BASELINE_BYTES = 41 * MIB
# Estimate, not measured here (no GPU): a CUDA context plus cuBLAS workspace per device.
CUDA_CONTEXT_BYTES = 350 * MIB


def pad(value: int, multiple: int = KV_PAD) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class KvCells:
    """How many KV cells llama.cpp allocates: per sequence stream, and all streams together."""

    per_sequence: int
    total: int
    per_sequence_swa: int
    total_swa: int


def kv_cells(
    arch: Architecture,
    n_ctx: int,
    n_seq: int,
    *,
    n_ubatch: int = 512,
    unified: bool = False,
    swa_full: bool = True,
) -> KvCells:
    """The cells llama.cpp gives the cache for ``n_ctx`` tokens shared by ``n_seq`` sequences.

    Without a unified cache each sequence gets its own stream of pad(n_ctx / n_seq) cells (so
    the context is divided among the slots, as llama-server does); a unified cache has
    pad(n_ctx) cells shared by all. Sliding-window layers get window + ubatch cells per stream
    unless ``swa_full`` (llama.cpp's default in llama_context_default_params) asks for the full
    size.
    """
    n_seq = max(1, n_seq)
    if unified:
        per_seq = pad(max(n_ctx, 1))
        streams = 1
    else:
        per_seq = pad(max(n_ctx // n_seq, 1))
        streams = n_seq
    swa = per_seq
    if arch.sliding_window and not swa_full:
        window = arch.sliding_window * (n_seq if unified else 1)
        swa = min(per_seq, pad(window + n_ubatch))
    return KvCells(per_seq, per_seq * streams, swa, swa * streams)


def kv_bytes_per_layer(arch: Architecture, cells: KvCells, layer: int, cache_type: str) -> int:
    """KV cache bytes of one layer: (K width + V width) x cells x bytes per element.

    A latent (MLA) cache holds K only: llama.cpp reads V as a view of the latent K (measured
    with its dry run on a synthetic deepseek2: 160 bytes a cell and layer for a 64 + 16 latent).
    """
    width = arch.n_head_kv * (arch.head_dim_k + (0 if arch.mla_cache else arch.head_dim_v))
    n_cells = cells.total_swa if arch.is_swa_layer(layer) else cells.total
    return int(width * n_cells * CACHE_TYPE_BYTES[cache_type])


# A generated token reads only the KV cells its sequence has filled: llama.cpp attends over the
# used cells padded to 256 (its n_kv), not the whole allocation (measured here: SmolLM2-135M
# generates as fast with 8192 cells as with 2048). Speeds are quoted for a conversation of a
# 512-token prompt and its answer, which fills 768 cells after padding.
ATTENDED_CELLS = 768


def attended_kv_bytes(
    arch: Architecture, cells: KvCells, layer: int, cache_type: str, filled: int = ATTENDED_CELLS
) -> int:
    """KV bytes one generated token of one sequence reads in ``layer``: the ``filled`` cells
    (padded to 256; by default a :data:`ATTENDED_CELLS` conversation), within the stream's (or
    the sliding window's) cells."""
    width = arch.n_head_kv * (arch.head_dim_k + (0 if arch.mla_cache else arch.head_dim_v))
    return int(width * _attended_cells(arch, cells, layer, filled) * CACHE_TYPE_BYTES[cache_type])


def attention_products(
    arch: Architecture, cells: KvCells, layer: int, filled: int = ATTENDED_CELLS
) -> int:
    """Multiply-adds attention does in ``layer`` for one generated token of one sequence:
    every query head takes each filled cell's K and V (head_dim_k + head_dim_v values). This,
    not the cache's bytes, is a CPU's cost: llama.cpp's CPU kernel loops over query heads, so
    heads that share a KV head (GQA) each re-read it from the cache."""
    return (
        arch.n_head
        * (arch.head_dim_k + arch.head_dim_v)
        * _attended_cells(arch, cells, layer, filled)
    )


def _attended_cells(arch: Architecture, cells: KvCells, layer: int, filled: int) -> int:
    """The cells a token attends over in ``layer``: the filled ones padded to 256 (llama.cpp's
    n_kv), within the stream's (or the sliding window's) cells."""
    stream = cells.per_sequence_swa if arch.is_swa_layer(layer) else cells.per_sequence
    return min(pad(filled), stream)


def activation_bytes(arch: Architecture, n_ubatch: int) -> int:
    """Intermediate tensors of one ubatch through a layer: what the CPU actually touches of
    its compute buffer when only the last token of each sequence asks for logits.

    Measured here: 15.5 MiB resident for SmolLM2-135M at n_ubatch 512; this gives 14.9.
    """
    ff = max(arch.n_ff, arch.n_ff_expert * (arch.n_expert_used + arch.n_expert_shared))
    kv_width = arch.n_head_kv * (arch.head_dim_k + arch.head_dim_v)
    # Gated: gate, up and their product. Non-gated: up only, since ggml's allocator runs the
    # activation in place of its single-use input (measured on the synthetic phi2: two tensors
    # over-counted it by one, 1.3 MiB of 21.3 at every context).
    ff_tensors = 3 if arch.ffn_gated else 1
    return n_ubatch * 4 * (4 * arch.n_embd + ff_tensors * ff + kv_width)


def swa_mask_bytes(arch: Architecture, cells: KvCells, n_ubatch: int) -> int:
    """The sliding-window cache's attention mask the CPU touches on a full prompt batch: one F16
    value per cell and token (measured here on synthetic gemma2 and gemma3 models: 4 MiB more
    at 4096 cells than the same shapes without a window)."""
    if not any(arch.is_swa_layer(il) for il in range(arch.n_layers)):
        return 0
    return cells.per_sequence_swa * n_ubatch * 2


def compute_buffer_bytes(
    arch: Architecture,
    *,
    n_ubatch: int,
    kv_cells_per_seq: int,
    flash_attn: bool,
    holds_output: bool,
) -> int:
    """The compute buffer llama.cpp reserves on one device (a GPU allocates all of it).

    The reservation is the largest of: logits for a whole ubatch (llama.cpp reserves a graph
    with every token an output), the attention scores KQ when flash attention is off, and the
    layer activations; plus two n_embd x ubatch f32 tensors. Checked here on CPU: 98.25 MiB
    for SmolLM2-135M (FA on) and 166.4 MiB with FA off at n_ctx 8192 (this gives 98.25, 146.3).
    """
    logits = arch.n_vocab * n_ubatch * 4 if holds_output else 0
    kq = 0 if flash_attn else kv_cells_per_seq * n_ubatch * arch.n_head * 4
    return max(logits, kq, activation_bytes(arch, n_ubatch)) + 2 * arch.n_embd * n_ubatch * 4


def output_buffer_bytes(arch: Architecture, n_outputs: int) -> int:
    """llama.cpp's host output buffer: logits of ``n_outputs`` tokens (one per sequence)."""
    return n_outputs * arch.n_vocab * 4


def model_overhead_bytes(arch: Architecture, n_merges: int) -> int:
    """Host memory of a loaded model beyond its weights (vocabulary tables and structs)."""
    return (
        MODEL_FIXED_BYTES
        + MODEL_BYTES_PER_VOCAB_TOKEN * arch.n_vocab
        + (MODEL_BYTES_PER_MERGE * n_merges)
    )


def llama_python_host_bytes(arch: Architecture, n_ctx: int, n_batch: int, logits_all: bool) -> int:
    """What llama-cpp-python's high-level ``Llama`` adds: input ids (n_ctx x 4) and its scores
    array. The scores array is n_batch x n_vocab x 4 (n_ctx rows with logits_all); numpy does
    not touch it at allocation, so only with logits_all does it become resident."""
    scores = n_ctx * arch.n_vocab * 4 if logits_all else 0
    return n_ctx * 4 + scores
