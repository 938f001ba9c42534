"""Which ggml types a model's weights are stored in, as shares of the bytes one token reads.

Generation speed on a CPU depends on the type: a quantized dot product unpacks its blocks
before it multiplies, so with few cores a byte of Q4_1 or Q3_K costs 2-2.5 times a byte of F16
(measured by `gbdesk bench`). A GGUF header gives the exact mix; before download the quant's
name does, through the mixes llama.cpp's quantizer writes for it (`llama-quant.cpp`: the output
head and some attn_v / ffn_down layers get more bits).
"""

from __future__ import annotations

from collections.abc import Mapping

from gbdesk.gguf import bytes_per_element

WeightMix = tuple[tuple[str, float], ...]  # (ggml type name, share of bytes), shares sum to 1

# Byte shares of the quant names that are mixes, for a 7-8B Llama-shaped model (the output head
# and half the ffn_down layers at Q6_K in Q4_K_M, ...). Plain type names (Q8_0, Q6_K, F16) are
# one type.
_NAMED_MIXES: dict[str, WeightMix] = {
    "Q2_K": (("Q2_K", 0.55), ("Q3_K", 0.30), ("Q4_K", 0.05), ("Q6_K", 0.10)),
    "Q3_K_S": (("Q3_K", 0.90), ("Q6_K", 0.10)),
    "Q3_K_M": (("Q3_K", 0.65), ("Q4_K", 0.25), ("Q6_K", 0.10)),
    "Q3_K_L": (("Q3_K", 0.55), ("Q5_K", 0.35), ("Q6_K", 0.10)),
    "Q4_K_S": (("Q4_K", 0.90), ("Q6_K", 0.10)),
    "Q4_K_M": (("Q4_K", 0.74), ("Q6_K", 0.26)),
    "Q5_K_S": (("Q5_K", 0.90), ("Q6_K", 0.10)),
    "Q5_K_M": (("Q5_K", 0.77), ("Q6_K", 0.23)),
}


def mix_from_bytes(bytes_by_type: Mapping[str, float]) -> WeightMix:
    """The mix of these bytes per type (types with no bytes left out)."""
    total = sum(bytes_by_type.values())
    if total <= 0:
        return ()
    return tuple(
        (name, amount / total) for name, amount in sorted(bytes_by_type.items()) if amount > 0
    )


def quant_weight_mix(quant_name: str) -> WeightMix:
    """The mix a quant called ``quant_name`` (as the Hub's file names spell it) is written in;
    empty for a name that is neither a ggml type nor a known mix."""
    name = quant_name.upper()
    if name in _NAMED_MIXES:
        return _NAMED_MIXES[name]
    if bytes_per_element(name) is not None:
        return ((name, 1.0),)
    return ()
