"""Where a model's weight bytes are: per repeating layer, token embeddings, output head.

Built from a GGUF header (exact tensor byte sizes) or, before download, from the catalogue's
architecture figures and the file size (parameters counted from the architecture, bytes shared
out in proportion). The estimator places these pieces on devices the way llama.cpp does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gbdesk.catalog.model import Architecture, CatalogEntry, Quant
from gbdesk.fit.weight_mix import WeightMix, mix_from_bytes, quant_weight_mix

if TYPE_CHECKING:
    from gbdesk.gguf import GGUFMetadata

_LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.")
# MoE expert tensors (llama.cpp names them *_exps); shared experts (*_shexp) stay with the layer.
_EXPERT_TENSOR = re.compile(r"\.ffn_(gate|up|down|gate_up)_exps\.")
# Bytes of GGUF header per vocabulary entry (token text, score, type) when estimating.
_HEADER_BYTES_PER_TOKEN = 40


@dataclass(frozen=True)
class DenseExperts:
    """A repeating layer's weights (bytes or parameters), experts apart: they may stay on CPU."""

    dense: int
    experts: int = 0

    @property
    def total(self) -> int:
        return self.dense + self.experts


@dataclass(frozen=True)
class ModelLayout:
    """The weights of one model file (all parts), grouped the way llama.cpp places them."""

    name: str
    architecture: Architecture
    layers: tuple[DenseExperts, ...]  # bytes
    layer_params: tuple[DenseExperts, ...]  # parameter counts
    token_embd_bytes: int
    output_bytes: int  # output.weight (or a duplicate of token_embd when tied) + output_norm
    file_bytes: int
    exact: bool  # True when the byte sizes come from a GGUF header
    # The output head is a separate tensor in the file (False: tied to the embeddings).
    has_output_tensor: bool = True
    output_params: int = 0
    n_merges: int = 0  # BPE merges of the vocabulary (SentencePiece has none)
    # The ggml types of the bytes one generated token reads (empty: not known).
    weight_mix: WeightMix = ()
    # Matrix rows per active weight (from the header; 0: not known, most rows are n_embd long).
    rows_per_param: float = 0.0

    def weight_rows(self, n_params: int) -> int:
        """Rows (dot products) a token's matrix-vector products over ``n_params`` of this
        model's active weights take: each row costs a set-up beside its bytes."""
        if self.rows_per_param > 0:
            return round(n_params * self.rows_per_param)
        return n_params // max(self.architecture.n_embd, 1)

    def active_params_per_token(self) -> int:
        """Parameters one token multiplies through (used experts only)."""
        arch = self.architecture
        total = self.output_params
        for layer in self.layer_params:
            total += layer.dense
            if layer.experts and arch.n_expert:
                total += layer.experts * arch.n_expert_used // arch.n_expert
        return total

    @property
    def weight_bytes(self) -> int:
        """Bytes of every tensor in the file (what an mmap of the model touches)."""
        layers = sum(layer.total for layer in self.layers)
        head = self.output_bytes if self.has_output_tensor else self.output_norm_bytes
        return layers + self.token_embd_bytes + head

    @property
    def output_norm_bytes(self) -> int:
        return self.architecture.n_embd * 4

    def active_bytes_per_token(self) -> int:
        """Weight bytes read to generate one token: all dense weights, only the used experts,
        one row of the token embeddings, the whole output head."""
        arch = self.architecture
        total = self.output_bytes + self.token_embd_bytes // max(arch.n_vocab, 1)
        for layer in self.layers:
            total += layer.dense
            if layer.experts and arch.n_expert:
                total += layer.experts * arch.n_expert_used // arch.n_expert
        return total


def _first_int(value: Any, default: int = 0) -> int:
    """GGUF keys such as head_count_kv may be per-layer arrays; the estimator uses the largest."""
    if isinstance(value, (list, tuple)):
        numbers = [int(v) for v in value if isinstance(v, (int, float))]
        return max(numbers) if numbers else default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return default


def architecture_from_gguf(meta: GGUFMetadata) -> Architecture:
    """The estimator's figures from a GGUF header's key-values (llama.cpp's defaults where a
    key is absent)."""
    arch = meta.architecture or "unknown"

    def value(suffix: str, default: int = 0) -> int:
        return _first_int(meta.arch_value(suffix), default)

    n_embd = value("embedding_length")
    n_head = value("attention.head_count", 1) or 1
    n_head_kv = value("attention.head_count_kv", n_head) or n_head
    head_dim = n_embd // n_head if n_head else 0
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = value("vocab_size") or (len(tokens) if isinstance(tokens, (list, tuple)) else 0)
    mla_k = value("attention.key_length_mla")
    kv_lora = value("attention.kv_lora_rank")
    rope_dim = value("rope.dimension_count")
    if mla_k and kv_lora:
        # llama.cpp caches the latent: one "head" of kv_lora_rank + rope for K, kv_lora for V.
        n_head_kv, head_k, head_v = 1, kv_lora + rope_dim, kv_lora
    else:
        head_k = value("attention.key_length", head_dim)
        head_v = value("attention.value_length", head_dim)
    window = value("attention.sliding_window")
    swa = {"gemma2": "even", "gemma3": "five-of-six", "mistral": "all"}.get(arch, "none")
    if not window:
        swa = "none"
    has_output = meta.tensor("output.weight") is not None
    return Architecture(
        arch=arch,
        n_layers=value("block_count", 1) or 1,
        n_embd=n_embd or 1,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_k or 1,
        head_dim_v=head_v or 1,
        n_ff=value("feed_forward_length", 1) or 1,
        n_vocab=n_vocab or 1,
        n_ctx_train=value("context_length", 2048) or 2048,
        ffn_gated=arch not in {"phi2", "gpt2", "starcoder"},
        tied_embeddings=not has_output,
        sliding_window=window,
        swa_layers=swa,
        n_expert=value("expert_count"),
        n_expert_used=value("expert_used_count"),
        n_expert_shared=value("expert_shared_count"),
        n_ff_expert=value("expert_feed_forward_length"),
        n_dense_layers=value("leading_dense_block_count"),
        q_lora_rank=value("attention.q_lora_rank"),
        kv_lora_rank=kv_lora,
        rope_dim=rope_dim,
        mla_cache=bool(mla_k and kv_lora),
    )


def layout_from_gguf(meta: GGUFMetadata, name: str = "") -> ModelLayout:
    """Exact weight placement input from a GGUF header."""
    arch = architecture_from_gguf(meta)
    dense = [0] * arch.n_layers
    experts = [0] * arch.n_layers
    dense_params = [0] * arch.n_layers
    expert_params = [0] * arch.n_layers
    token_embd = output = 0
    used_experts = arch.n_expert_used / arch.n_expert if arch.n_expert else 0.0
    read_per_token: dict[str, float] = {}  # bytes by ggml type
    rows = 0.0  # of the active matrices
    for tensor in meta.tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        read = float(tensor.n_bytes)
        tensor_rows = tensor.n_elements / max(tensor.shape[0], 1) if len(tensor.shape) > 1 else 0
        if match and int(match.group(1)) < arch.n_layers:
            layer = int(match.group(1))
            if _EXPERT_TENSOR.search(tensor.name):
                experts[layer] += tensor.n_bytes
                expert_params[layer] += tensor.n_elements
                read *= used_experts
                tensor_rows *= used_experts
            else:
                dense[layer] += tensor.n_bytes
                dense_params[layer] += tensor.n_elements
        elif tensor.name == "token_embd.weight":
            token_embd += tensor.n_bytes
            read = tensor_rows = 0.0  # one row per token
        elif tensor.name.startswith("output"):
            output += tensor.n_bytes
        else:  # rope factors, extra norms: small, kept with the first layer
            dense[0] += tensor.n_bytes
        read_per_token[tensor.type_name] = read_per_token.get(tensor.type_name, 0.0) + read
        rows += tensor_rows
    has_output = meta.tensor("output.weight") is not None
    if not has_output:
        # llama.cpp duplicates the tied embeddings as the output head on the output device.
        output += token_embd
        embd = meta.tensor("token_embd.weight")
        if embd is not None:
            read_per_token[embd.type_name] = read_per_token.get(embd.type_name, 0.0) + token_embd
        rows += arch.n_vocab
    layout = ModelLayout(
        name=name or str(meta.source),
        architecture=arch,
        layers=tuple(DenseExperts(d, e) for d, e in zip(dense, experts, strict=True)),
        layer_params=tuple(
            DenseExperts(d, e) for d, e in zip(dense_params, expert_params, strict=True)
        ),
        token_embd_bytes=token_embd,
        output_bytes=output,
        file_bytes=sum(meta.file_sizes) or meta.tensor_bytes,
        exact=True,
        has_output_tensor=has_output,
        output_params=arch.n_vocab * arch.n_embd,
        n_merges=_count(meta.get("tokenizer.ggml.merges")),
        weight_mix=mix_from_bytes(read_per_token),
    )
    active = layout.active_params_per_token()
    return replace(layout, rows_per_param=rows / active if active else 0.0)


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (list, tuple)) else 0


def guess_merges(arch: Architecture) -> int:
    """BPE merges before the header is known: byte-level BPE vocabularies (Llama 3, Qwen, GLM,
    DeepSeek, Phi-2, SmolLM: more than 32,768 tokens) have about one merge per token;
    SentencePiece ones (Llama 2, Mistral, Gemma) none."""
    if arch.arch.startswith("gemma") or arch.n_vocab <= 32768:
        return 0
    return arch.n_vocab


def layer_parameters(arch: Architecture, layer: int) -> tuple[int, int]:
    """(dense, expert) parameter counts of one repeating layer, from the architecture."""
    d, h = arch.n_embd, arch.n_head
    if arch.kv_lora_rank:  # DeepSeek multi-head latent attention
        nope = arch.head_dim_k - arch.rope_dim
        q_dim = h * arch.head_dim_k
        q = d * arch.q_lora_rank + arch.q_lora_rank * q_dim if arch.q_lora_rank else d * q_dim
        kv = d * (arch.kv_lora_rank + arch.rope_dim) + arch.kv_lora_rank * h * (
            nope + arch.head_dim_v
        )
        attention = q + kv + h * arch.head_dim_v * d
    else:
        kv_width = arch.n_head_kv * (arch.head_dim_k + arch.head_dim_v)
        attention = d * h * arch.head_dim_k + d * kv_width + h * arch.head_dim_v * d
    matrices = 3 if arch.ffn_gated else 2
    if arch.is_moe and layer >= arch.n_dense_layers:
        per_expert = matrices * d * arch.n_ff_expert
        dense = attention + arch.n_expert_shared * per_expert + d * arch.n_expert
        return dense, arch.n_expert * per_expert
    return attention + matrices * d * arch.n_ff, 0


def layout_from_catalog(entry: CatalogEntry, quant: Quant) -> ModelLayout:
    """Estimated weight placement input from the catalogue (no GGUF header yet).

    The file's bytes (less an estimate of the header) are shared out in proportion to each
    part's parameter count, so a quant's mixed precision is averaged over the model.
    """
    arch = entry.architecture
    per_layer = [layer_parameters(arch, i) for i in range(arch.n_layers)]
    embd_params = arch.n_vocab * arch.n_embd
    out_params = 0 if arch.tied_embeddings else embd_params
    total_params = sum(d + e for d, e in per_layer) + embd_params + out_params
    data_bytes = max(
        quant.size_bytes - _HEADER_BYTES_PER_TOKEN * arch.n_vocab, quant.size_bytes // 2
    )
    per_param = data_bytes / total_params
    token_embd = round(embd_params * per_param)
    return ModelLayout(
        name=f"{entry.id}:{quant.name}",
        architecture=arch,
        layers=tuple(
            DenseExperts(round(d * per_param), round(e * per_param)) for d, e in per_layer
        ),
        layer_params=tuple(DenseExperts(d, e) for d, e in per_layer),
        token_embd_bytes=token_embd,
        output_bytes=(token_embd if arch.tied_embeddings else round(out_params * per_param))
        + arch.n_embd * 4,
        file_bytes=quant.size_bytes,
        exact=False,
        has_output_tensor=not arch.tied_embeddings,
        output_params=embd_params,
        n_merges=guess_merges(arch),
        weight_mix=quant_weight_mix(quant.name),
    )
