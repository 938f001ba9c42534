"""The catalogue's records: frozen dataclasses read from the catalogue JSON (see docs/catalog.md).

Every architecture figure carries a source (``guide``, ``config``, ``gguf-header`` or
``estimate``) so a person can tell a measured number from a recalled one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FIGURE_SOURCES = ("guide", "config", "gguf-header", "estimate")
# How a file size is known: read from the file or the Hub, rounded by a guide, or guessed.
SIZE_SOURCES = ("gguf-header", "hub", "guide-rounded", "estimate")
SWA_PATTERNS = ("none", "even", "all", "five-of-six")


@dataclass(frozen=True)
class Architecture:
    """The figures the estimator needs, named after llama.cpp's hyper-parameters.

    ``n_head_kv``, ``head_dim_k`` and ``head_dim_v`` describe the KV cache as llama.cpp lays it
    out for this GGUF: for DeepSeek's MLA models converted without the MLA keys that is
    n_head x (nope + rope) for K and n_head x v_head for V; with ``mla_cache`` the cache holds
    the compressed latent (kv_lora_rank + rope_dim) once per layer.
    """

    arch: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    ffn_gated: bool = True
    tied_embeddings: bool = False
    sliding_window: int = 0
    # none, even (layers 0, 2, 4... as Gemma 2), all, five-of-six (all but every 6th: Gemma 3)
    swa_layers: str = "none"
    n_expert: int = 0
    n_expert_used: int = 0
    n_expert_shared: int = 0
    n_ff_expert: int = 0
    n_dense_layers: int = 0  # leading layers with a dense FFN in a MoE model
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_dim: int = 0
    mla_cache: bool = False

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0

    def is_swa_layer(self, layer: int) -> bool:
        """Whether llama.cpp gives this layer a sliding-window KV cache."""
        if not self.sliding_window or self.swa_layers == "none":
            return False
        if self.swa_layers == "all":
            return True
        if self.swa_layers == "five-of-six":
            return (layer + 1) % 6 != 0
        return layer % 2 == 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Quant:
    """One quantization of a model: its file(s) on the Hub and their total size."""

    name: str
    files: tuple[str, ...]
    size_bytes: int
    size_source: str
    files_source: str = "hub"
    part_sizes: tuple[int, ...] = ()
    guide: dict[str, Any] = field(default_factory=dict)

    @property
    def is_split(self) -> bool:
        return len(self.files) > 1

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["files"] = list(self.files)
        data["part_sizes"] = list(self.part_sizes)
        return data


# The use case of embedding models (botserver's knowledge base): never recommended for chat.
EMBEDDINGS_USE_CASE = "embeddings"
# botserver's default knowledge-base model (CompendiumLabs/bge-small-en-v1.5-gguf, F32).
BOTSERVER_EMBEDDING_MODEL = "bge-small-en-v1.5"


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalogue with all its quantizations."""

    id: str
    name: str
    repo: str
    licence: str
    gated: bool
    quality_tier: int
    use_cases: tuple[str, ...]
    summary: str
    architecture: Architecture
    sources: dict[str, str]
    quants: tuple[Quant, ...]
    guide: dict[str, Any] = field(default_factory=dict)
    origin: str = "built-in"  # built-in, or the user catalogue file that changed it

    @property
    def is_embedding_model(self) -> bool:
        """An embedding model only (it answers no chat)."""
        return self.use_cases == (EMBEDDINGS_USE_CASE,)

    def quant(self, name: str) -> Quant | None:
        """The quantization called ``name`` (case-insensitive), or None."""
        for quant in self.quants:
            if quant.name.lower() == name.lower():
                return quant
        return None

    def source_of(self, figure: str) -> str:
        """Where an architecture figure comes from (guide, config, gguf-header, estimate)."""
        return self.sources.get(figure, self.sources.get("default", "estimate"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "repo": self.repo,
            "licence": self.licence,
            "gated": self.gated,
            "quality_tier": self.quality_tier,
            "use_cases": list(self.use_cases),
            "summary": self.summary,
            "architecture": self.architecture.to_json(),
            "sources": dict(self.sources),
            "guide": dict(self.guide),
            "quants": [quant.to_json() for quant in self.quants],
        }
