"""Small GGUF models of each architecture gbdesk knows, written with the ``gguf`` package's writer.

Random weights: memory and speed do not depend on the values. The files are what llama.cpp
loads for that architecture (the tensor names and shapes of its loader, the hyperparameter
keys it requires, a SentencePiece vocabulary), so `gbdesk bench` can time models of different
shapes on this machine and the tests can check the estimator on architectures they did not
tune it on. Each model is a few MB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

Tensors = list[tuple[str, tuple[int, ...]]]  # name, ggml dims (ne0 first)


@dataclass(frozen=True)
class SyntheticSpec:
    """The shape of one synthetic model."""

    name: str
    arch: str
    n_layers: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 768
    n_vocab: int = 4096
    n_ctx_train: int = 1024
    tied: bool = False
    sliding_window: int = 0
    # deepseek2 (multi-head latent attention and experts)
    n_expert: int = 0
    n_expert_used: int = 0
    n_expert_shared: int = 0
    n_ff_expert: int = 0
    n_dense_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_dim: int = 0
    # How the matrices are stored: a ggml type ("F16", "Q8_0", "Q4_K", ...) or "Q4_K_M", the
    # mix llama.cpp's quantizer writes for that name (see `_matrix_type`).
    weights: str = "F16"

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_width(self) -> int:
        return self.n_head_kv * self.head_dim


def _llama_layer(s: SyntheticSpec, i: int, *, bias: bool = False) -> Tensors:
    d, kv = s.n_embd, s.kv_width
    out: Tensors = [
        (f"blk.{i}.attn_norm.weight", (d,)),
        (f"blk.{i}.attn_q.weight", (d, d)),
        (f"blk.{i}.attn_k.weight", (d, kv)),
        (f"blk.{i}.attn_v.weight", (d, kv)),
        (f"blk.{i}.attn_output.weight", (d, d)),
        (f"blk.{i}.ffn_norm.weight", (d,)),
        (f"blk.{i}.ffn_gate.weight", (d, s.n_ff)),
        (f"blk.{i}.ffn_up.weight", (d, s.n_ff)),
        (f"blk.{i}.ffn_down.weight", (s.n_ff, d)),
    ]
    if bias:
        out += [
            (f"blk.{i}.attn_q.bias", (d,)),
            (f"blk.{i}.attn_k.bias", (kv,)),
            (f"blk.{i}.attn_v.bias", (kv,)),
        ]
    return out


def _gemma_layer(s: SyntheticSpec, i: int, *, qk_norm: bool) -> Tensors:
    d = s.n_embd
    out = [
        *_llama_layer(s, i),
        (f"blk.{i}.post_attention_norm.weight", (d,)),
        (f"blk.{i}.post_ffw_norm.weight", (d,)),
    ]
    if qk_norm:
        out += [(f"blk.{i}.attn_q_norm.weight", (s.head_dim,))]
        out += [(f"blk.{i}.attn_k_norm.weight", (s.head_dim,))]
    return out


def _phi2_layer(s: SyntheticSpec, i: int) -> Tensors:
    d, qkv = s.n_embd, s.n_embd + 2 * s.kv_width
    return [
        (f"blk.{i}.attn_norm.weight", (d,)),
        (f"blk.{i}.attn_norm.bias", (d,)),
        (f"blk.{i}.attn_qkv.weight", (d, qkv)),
        (f"blk.{i}.attn_qkv.bias", (qkv,)),
        (f"blk.{i}.attn_output.weight", (d, d)),
        (f"blk.{i}.attn_output.bias", (d,)),
        (f"blk.{i}.ffn_up.weight", (d, s.n_ff)),
        (f"blk.{i}.ffn_up.bias", (s.n_ff,)),
        (f"blk.{i}.ffn_down.weight", (s.n_ff, d)),
        (f"blk.{i}.ffn_down.bias", (d,)),
    ]


def _fused_layer(s: SyntheticSpec, i: int, *, qkv_bias: bool, post_norms: bool) -> Tensors:
    """phi3, chatglm and glm4: fused QKV, fused gate+up."""
    d, qkv = s.n_embd, s.n_embd + 2 * s.kv_width
    out: Tensors = [
        (f"blk.{i}.attn_norm.weight", (d,)),
        (f"blk.{i}.attn_qkv.weight", (d, qkv)),
        (f"blk.{i}.attn_output.weight", (d, d)),
        (f"blk.{i}.ffn_norm.weight", (d,)),
        (f"blk.{i}.ffn_up.weight", (d, 2 * s.n_ff)),
        (f"blk.{i}.ffn_down.weight", (s.n_ff, d)),
    ]
    if qkv_bias:
        out.append((f"blk.{i}.attn_qkv.bias", (qkv,)))
    if post_norms:
        out.append((f"blk.{i}.post_attention_norm.weight", (d,)))
        out.append((f"blk.{i}.post_ffw_norm.weight", (d,)))
    return out


def _deepseek2_layer(s: SyntheticSpec, i: int) -> Tensors:
    d, h = s.n_embd, s.n_head
    nope = s.head_dim - s.rope_dim
    k_mla, v_mla = s.head_dim, s.head_dim
    del nope
    out: Tensors = [
        (f"blk.{i}.attn_norm.weight", (d,)),
        (f"blk.{i}.attn_q_a_norm.weight", (s.q_lora_rank,)),
        (f"blk.{i}.attn_q_a.weight", (d, s.q_lora_rank)),
        (f"blk.{i}.attn_q_b.weight", (s.q_lora_rank, h * k_mla)),
        (f"blk.{i}.attn_kv_a_mqa.weight", (d, s.kv_lora_rank + s.rope_dim)),
        (f"blk.{i}.attn_kv_a_norm.weight", (s.kv_lora_rank,)),
        (f"blk.{i}.attn_k_b.weight", (k_mla - s.rope_dim, s.kv_lora_rank, h)),
        (f"blk.{i}.attn_v_b.weight", (s.kv_lora_rank, v_mla, h)),
        (f"blk.{i}.attn_output.weight", (h * v_mla, d)),
        (f"blk.{i}.ffn_norm.weight", (d,)),
    ]
    if i < s.n_dense_layers:
        out += [
            (f"blk.{i}.ffn_gate.weight", (d, s.n_ff)),
            (f"blk.{i}.ffn_up.weight", (d, s.n_ff)),
            (f"blk.{i}.ffn_down.weight", (s.n_ff, d)),
        ]
        return out
    e, f = s.n_expert, s.n_ff_expert
    shared = f * s.n_expert_shared
    return [
        *out,
        (f"blk.{i}.ffn_gate_inp.weight", (d, e)),
        (f"blk.{i}.ffn_gate_exps.weight", (d, f, e)),
        (f"blk.{i}.ffn_up_exps.weight", (d, f, e)),
        (f"blk.{i}.ffn_down_exps.weight", (f, d, e)),
        (f"blk.{i}.ffn_gate_shexp.weight", (d, shared)),
        (f"blk.{i}.ffn_up_shexp.weight", (d, shared)),
        (f"blk.{i}.ffn_down_shexp.weight", (shared, d)),
    ]


_LAYERS: dict[str, Callable[[SyntheticSpec, int], Tensors]] = {
    "llama": _llama_layer,
    "qwen2": lambda s, i: _llama_layer(s, i, bias=True),
    "gemma2": lambda s, i: _gemma_layer(s, i, qk_norm=False),
    "gemma3": lambda s, i: _gemma_layer(s, i, qk_norm=True),
    "phi2": _phi2_layer,
    "phi3": lambda s, i: _fused_layer(s, i, qkv_bias=False, post_norms=False),
    "chatglm": lambda s, i: _fused_layer(s, i, qkv_bias=True, post_norms=False),
    "glm4": lambda s, i: _fused_layer(s, i, qkv_bias=False, post_norms=True),
    "deepseek2": _deepseek2_layer,
}
_NORM_EPS_KEY = {"phi2": "layer_norm_epsilon"}
_CHAT_SPECIALS = (
    "<|endoftext|>",
    "<|end|>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
)


def _tensors(s: SyntheticSpec) -> Tensors:
    out: Tensors = [
        ("token_embd.weight", (s.n_embd, s.n_vocab)),
        ("output_norm.weight", (s.n_embd,)),
    ]
    if s.arch == "phi2":
        out.append(("output_norm.bias", (s.n_embd,)))
    if not s.tied:
        out.append(("output.weight", (s.n_embd, s.n_vocab)))
        if s.arch == "phi2":
            out.append(("output.bias", (s.n_vocab,)))
    for i in range(s.n_layers):
        out += _LAYERS[s.arch](s, i)
    return out


# Where the f16 scales sit in each block of the k-quant types, whose blocks are written as random
# bytes (gguf-py cannot quantize them): the scales must be finite normal numbers, the rest of a
# block is any bits. Offsets from ggml-common.h's block_q*_K structs.
_K_QUANT_SCALES = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}
_SCALE = np.array([0.002], dtype=np.float16).view(np.uint8)


def _matrix_type(spec: SyntheticSpec, name: str, ne0: int) -> str:
    """The ggml type of one matrix. "Q4_K_M" follows llama.cpp's quantizer: Q6_K for the output
    head and for attn_v / ffn_down of the first and last eighth of the layers and every third
    one between them, Q4_K elsewhere; a row that the type's blocks do not divide falls back to
    Q8_0, then F16 (llama.cpp falls back the same way)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    wanted = spec.weights
    if wanted == "Q4_K_M":
        wanted = "Q4_K"
        layer = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)\.", name)
        if name == "output.weight" or (layer and _more_bits(int(layer.group(1)), spec.n_layers)):
            wanted = "Q6_K"
    for candidate in (wanted, "Q8_0", "F16"):
        if ne0 % GGML_QUANT_SIZES[GGMLQuantizationType[candidate]][0] == 0:
            return candidate
    return "F16"


def _more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's use_more_bits: the layers its Q4_K_M keeps at Q6_K."""
    eighth = n_layers // 8
    return layer < eighth or layer >= 7 * n_layers // 8 or (layer - eighth) % 3 == 2


def _matrix(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Random values of ``shape`` (numpy order, rows last) stored as ``kind``."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants

    if kind == "F16":
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
    qtype = GGMLQuantizationType[kind]
    if kind not in _K_QUANT_SCALES:
        return quants.quantize(rng.standard_normal(shape, dtype=np.float32) * 0.02, qtype)
    block, block_bytes = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // block
    blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for offset in _K_QUANT_SCALES[kind]:
        blocks[:, offset : offset + 2] = _SCALE
    return blocks.reshape(*shape[:-1], shape[-1] // block * block_bytes)


def write_synthetic(path: Path, spec: SyntheticSpec, *, seed: int = 0) -> Path:
    """Write ``spec`` as a GGUF at ``path``: matrices as ``spec.weights``, F32 vectors, random
    values.

    Raises:
        KeyError: ``spec.arch`` or ``spec.weights`` is not one this module can write.
        OSError: the file cannot be written.
    """
    from gguf import GGMLQuantizationType, GGUFWriter, TokenType

    if spec.arch not in _LAYERS:
        raise KeyError(f"no synthetic writer for architecture {spec.arch!r}")
    if spec.weights != "Q4_K_M" and spec.weights not in GGMLQuantizationType.__members__:
        raise KeyError(f"no ggml type called {spec.weights!r}")
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), spec.arch)
    writer.add_name(spec.name)
    writer.add_block_count(spec.n_layers)
    writer.add_context_length(spec.n_ctx_train)
    writer.add_embedding_length(spec.n_embd)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    if spec.arch != "deepseek2":
        writer.add_head_count_kv(spec.n_head_kv)
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
    writer.add_rope_freq_base(10000.0)
    if _NORM_EPS_KEY.get(spec.arch) == "layer_norm_epsilon":
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_layer_norm_rms_eps(1e-6)
    if spec.arch == "phi2":
        writer.add_rope_dimension_count(spec.head_dim // 2)
    elif spec.arch == "deepseek2":
        writer.add_rope_dimension_count(spec.rope_dim)
    else:
        writer.add_rope_dimension_count(spec.head_dim)
    if spec.sliding_window:
        writer.add_sliding_window(spec.sliding_window)
    if spec.arch == "gemma2":
        writer.add_attn_logit_softcapping(50.0)
        writer.add_final_logit_softcapping(30.0)
    if spec.arch == "deepseek2":
        writer.add_leading_dense_block_count(spec.n_dense_layers)
        writer.add_expert_count(spec.n_expert)
        writer.add_expert_used_count(spec.n_expert_used)
        writer.add_expert_shared_count(spec.n_expert_shared)
        writer.add_expert_feed_forward_length(spec.n_ff_expert)
        writer.add_expert_weights_scale(1.0)
        writer.add_q_lora_rank(spec.q_lora_rank)
        writer.add_kv_lora_rank(spec.kv_lora_rank)
        # MLA as current conversions write it: the cache holds the latent (kv_lora + rope).
        writer.add_key_length(spec.kv_lora_rank + spec.rope_dim)
        writer.add_value_length(spec.kv_lora_rank)
        writer.add_key_length_mla(spec.head_dim)
        writer.add_value_length_mla(spec.head_dim)
        writer.add_head_count_kv(1)
    # A SentencePiece vocabulary: specials, the 256 byte tokens, then filler pieces.
    # Some loaders look up their chat specials by text (phi3 asks for "<|end|>").
    specials = ["<unk>", "<s>", "</s>", *_CHAT_SPECIALS]
    tokens = specials + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(spec.n_vocab - len(tokens))]
    types = [TokenType.UNKNOWN] + [TokenType.CONTROL] * (len(specials) - 1)
    types += [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * (spec.n_vocab - len(types))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(spec.n_vocab)])
    writer.add_token_types([int(t) for t in types])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for name, dims in _tensors(spec):
        shape = tuple(reversed(dims))
        if len(dims) == 1:
            writer.add_tensor(name, np.ones(shape, dtype=np.float32))
            continue
        kind = _matrix_type(spec, name, dims[0])
        data = _matrix(rng, shape, kind)
        writer.add_tensor(
            name, data, raw_dtype=None if kind == "F16" else GGMLQuantizationType[kind]
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# One model per architecture and feature the catalogue uses (and a few it will).
SPECS: tuple[SyntheticSpec, ...] = (
    SyntheticSpec("llama", "llama"),
    SyntheticSpec("llama-tied", "llama", tied=True, n_layers=8, n_embd=128, n_ff=384),
    SyntheticSpec("qwen2", "qwen2", tied=True),
    SyntheticSpec("gemma2-swa", "gemma2", tied=True, sliding_window=256),
    SyntheticSpec(
        "gemma3-swa-262k",
        "gemma3",
        tied=True,
        sliding_window=256,
        n_layers=6,
        n_embd=64,
        n_head=2,
        n_head_kv=1,
        n_ff=256,
        n_vocab=262144,
    ),
    SyntheticSpec("phi2", "phi2", n_head_kv=4),
    SyntheticSpec("phi3", "phi3", n_head_kv=4),
    SyntheticSpec("chatglm", "chatglm"),
    SyntheticSpec("glm4", "glm4"),
    SyntheticSpec(
        "deepseek2-moe",
        "deepseek2",
        n_layers=3,
        n_head=4,
        n_head_kv=4,
        n_ff=512,
        n_expert=8,
        n_expert_used=2,
        n_expert_shared=1,
        n_ff_expert=128,
        n_dense_layers=1,
        q_lora_rank=64,
        kv_lora_rank=64,
        rope_dim=16,
    ),
)


def scaled(item: SyntheticSpec, factor: int) -> SyntheticSpec:
    """``item`` with every width times ``factor`` (same layers, heads and features): a model
    larger than a CPU's cache, for timing generation from DRAM."""
    return replace(
        item,
        name=f"{item.name}-x{factor}",
        n_embd=item.n_embd * factor,
        n_ff=item.n_ff * factor,
        n_ff_expert=item.n_ff_expert * factor,
        q_lora_rank=item.q_lora_rank * factor,
        kv_lora_rank=item.kv_lora_rank * factor,
        rope_dim=item.rope_dim * factor,
    )


def spec(name: str) -> SyntheticSpec:
    """The spec called ``name``.

    Raises:
        KeyError: no spec has that name.
    """
    for item in SPECS:
        if item.name == name:
            return item
    raise KeyError(name)
