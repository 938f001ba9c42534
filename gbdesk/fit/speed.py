"""Speed model: generation reads every weight once plus a fixed cost per layer, prompt is
compute-bound.

Generating a token reads every active weight once (only the used experts of a MoE model) and
runs every layer's kernels, so seconds per token = fixed cost x layers + the bytes read x what a
byte costs; a small model is dominated by the first term, a large one by the second. What a
byte costs depends on its ggml type where the cores, not the memory, are the limit: with few
cores a quantized dot product is bound by unpacking its blocks (measured here: a byte of Q4_1
or Q3_K costs 2-2.5 times a byte of F16), so `gbdesk bench` measures each common type and the
estimate weighs them by the model's mix (`gbdesk.fit.weight_mix`). Uncalibrated, the same terms
come from a physical model of the CPU the probe saw (:func:`guess_costs`): what one core's
kernels get through per cycle for each type, per row, per attention product, times the cores,
and never faster than the memory can deliver. Prompt processing does 2 FLOPs per active
parameter per token, so tokens/s = effective FLOP/s / (2 x active parameters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from gbdesk.fit.calibration import Calibration
from gbdesk.fit.weight_mix import WeightMix
from gbdesk.gguf import FLOAT_TYPES, bytes_per_element
from gbdesk.hardware.profile import CpuInfo, GpuInfo, HardwareProfile

# Uncalibrated efficiencies: llama.cpp reaches roughly these fractions of peak (estimates).
DEFAULT_GPU_GEN_EFFICIENCY = 0.75
DEFAULT_CPU_PROMPT_EFFICIENCY = 0.3
DEFAULT_GPU_PROMPT_EFFICIENCY = 0.35
# The reference a calibration's cpu_generation_efficiency is a fraction of (cpu_stream_gbps):
# calibration files of the first version hold only that efficiency, so it stays as it was.
PER_CORE_STREAM_GBPS = 8.0
# Fixed cost per layer and generated token on a GPU (kernel launches), an estimate.
DEFAULT_GPU_SECONDS_PER_LAYER = 10e-6
# Dense FP16 tensor TFLOPS of GPUs the presets name (vendor specifications).
GPU_TFLOPS = {
    "RTX 3050": 18.2,
    "RTX 3060": 25.6,
    "RTX 3070": 40.6,
    "RTX 3090": 71.0,
    "RTX 4060 Ti": 44.0,
    "RTX 4080 SUPER": 104.4,
    "RTX 4090": 165.2,
}


# Brand words of server CPUs, whose sockets have many memory channels.
SERVER_CPUS = ("EPYC", "XEON", "THREADRIPPER", "AMPERE", "GRAVITON", "NEOVERSE")


def default_dram_bandwidth_gbps(profile: HardwareProfile) -> float:
    """DRAM bandwidth when the probe does not know it: by platform (estimates)."""
    if profile.memory.bandwidth_gbps > 0:
        return profile.memory.bandwidth_gbps
    if profile.os == "Darwin" and profile.cpu.arch in {"arm64", "aarch64"}:
        return 100.0  # Apple M-series base chips: 68-120 GB/s
    return 51.2  # dual-channel DDR4-3200


def guess_dram_bandwidth_gbps(profile: HardwareProfile) -> float:
    """The DRAM bandwidth the guess assumes: the probe's figure, else by platform, a server CPU
    (EPYC, Xeon, ...) with a server's memory channels."""
    if profile.memory.bandwidth_gbps <= 0 and any(
        name in profile.cpu.brand.upper() for name in SERVER_CPUS
    ):
        return 204.8  # 8 channels of DDR4-3200 (EPYC and Xeon sockets have 6-12)
    return default_dram_bandwidth_gbps(profile)


def cpu_stream_gbps(profile: HardwareProfile) -> float:
    """Peak bandwidth the CPU cores can draw from DRAM for token generation."""
    cores = max(profile.cpu.physical_cores, 1)
    return min(default_dram_bandwidth_gbps(profile), cores * PER_CORE_STREAM_GBPS)


def cpu_peak_flops(cpu: CpuInfo) -> float:
    """FP32 FMA peak: cores x 3 GHz x lanes x 2 FMA units x 2 (estimate)."""
    lanes = 16 if "avx512f" in cpu.features else 8 if "avx2" in cpu.features else 4
    return max(cpu.physical_cores, 1) * 3.0e9 * lanes * 2 * 2


# Bandwidth of a discrete GPU whose bus width or memory clock the probe could not read: the
# low end of current consumer cards (RTX 3050 / RX 6600 class, GB/s; an estimate).
UNKNOWN_DISCRETE_GPU_GBPS = 200.0


def gpu_bandwidth_gbps(gpu: GpuInfo, profile: HardwareProfile) -> float:
    """Peak memory bandwidth of ``gpu``, never 0: from bus width and clock when the probe read
    them; unified memory (Apple) shares the DRAM's; else a conservative figure for a card."""
    if gpu.peak_bandwidth_gbps > 0:
        return gpu.peak_bandwidth_gbps
    if gpu.unified_memory or gpu.vendor == "apple":
        return default_dram_bandwidth_gbps(profile)
    return UNKNOWN_DISCRETE_GPU_GBPS


def gpu_peak_flops(gpu: GpuInfo, profile: HardwareProfile) -> float:
    """FP16 tensor peak from the model name, else from bandwidth (80 FLOP per byte/s)."""
    for name, tflops in GPU_TFLOPS.items():
        if name.lower() in gpu.name.lower():
            return tflops * 1e12
    return gpu_bandwidth_gbps(gpu, profile) * 1e9 * 80


@dataclass(frozen=True)
class SpeedEstimate:
    """Predicted (or measured) tokens/s and what the figure rests on.

    ``basis`` is "measured" (this model timed on this machine), "calibrated" (the speed model
    with `gbdesk bench`'s figures for this CPU) or "guess" (the speed model's defaults).
    """

    generation_tps: float
    prompt_tps: float
    calibrated: bool
    limited_by: str  # "gpu memory bandwidth", "cpu memory bandwidth", ...
    basis: str = "guess"

    def to_json(self) -> dict[str, object]:
        return {
            "generation_tps": round(self.generation_tps, 2),
            "prompt_tps": round(self.prompt_tps, 1),
            "calibrated": self.calibrated,
            "basis": self.basis,
            "limited_by": self.limited_by,
        }


@dataclass(frozen=True)
class CpuCosts:
    """What each part of a generated token costs on one CPU, in seconds: per layer, per weight
    row, per attention product, per byte of KV cells read and per byte of weights of each ggml
    type (:func:`cpu_generation_seconds` sums them). ``weights_floor`` is the least a byte of
    weights can cost whatever its type: what the memory delivers (0: no floor)."""

    per_layer: float
    per_row: float
    per_attention: float
    per_kv_byte: float
    per_byte: Mapping[str, float] = field(default_factory=dict)
    weights_floor: float = 0.0

    @property
    def fixed(self) -> tuple[float, float, float, float]:
        """The four costs that are not per weight byte, in that order."""
        return self.per_layer, self.per_row, self.per_attention, self.per_kv_byte


# The uncalibrated guess: a roofline of a CPU core running llama.cpp's generation kernels. With
# few cores a generated token is bound by the cores, not by the DRAM: each quantized dot product
# unpacks its blocks (shifts, masks, scales) before it multiplies, so a core gets through a
# number of weights per cycle that depends on the type, not on its bytes; and one core cannot
# stream more than about STREAM_PER_CORE_GBPS from memory whatever it does with the bytes (its
# line-fill buffers: ~12-16 cache lines in flight x 64 B / ~80 ns of DRAM latency, the 15-25
# GB/s a single core measures on current x86 and ARM server and desktop chips). A token's
# weights take the longer of the two: compute (weights x cycles per weight / the cores'
# cycles) and streaming (bytes / the cores' streams, or the DRAM's bandwidth once many cores
# share it).
# The per-cycle figures are for one core with 256-bit vectors (AVX2, or AVX-512 run on 256-bit
# units as on AMD Zen 4) at GUESS_CLOCK_GHZ, measured by `gbdesk bench` on such a core (AMD EPYC,
# llama.cpp 0.3.36's CPU build) and rounded; other machines scale them by their cores and their
# vector width (vector_factor). F16, F32 and Q8_0 are bound by the stream on such a core, so
# their figure is the kernels' SIMD width (8 F32 lanes) rather than a measurement.
# Weights per cycle and core, by ggml type:
WEIGHTS_PER_CYCLE: dict[str, float] = {
    "F32": 8.0,
    "F16": 8.0,
    "BF16": 8.0,
    "Q8_0": 6.5,
    "Q6_K": 7.5,
    "Q5_K": 7.5,
    "Q4_K": 10.0,
    "Q4_0": 7.5,
    "Q4_1": 4.5,
    "Q5_0": 6.0,
    "Q5_1": 4.5,
    "Q3_K": 9.0,
    "Q2_K": 12.0,
}
# A quantized type missing above (IQ*, TQ*): the K-quants' typical figure.
_OTHER_QUANT_WEIGHTS_PER_CYCLE = 7.5
STREAM_PER_CORE_GBPS = 20.0
# Cycles of one core per weight row (a dot product's set-up and the reduction of its vector
# accumulators to one float: tens of instructions), per attention product (a query head x a
# KV cell x a dimension: an F16 multiply-add in a vector, with its share of the softmax) and
# per byte of KV cells read (F16 converted to F32 as it is loaded). Measured as above, rounded.
CYCLES_PER_ROW = 50.0
CYCLES_PER_ATTENTION = 0.3
CYCLES_PER_KV_BYTE = 0.5
# Fixed cost per layer and token: thread barriers between the layer's ten-odd operations, a
# hundred-odd nanoseconds each; it does not shrink with more cores.
GUESS_SECONDS_PER_LAYER = 2e-6
# The clock the figures above assume (the probe does not read one): the typical all-core clock
# of desktop and server cores.
GUESS_CLOCK_GHZ = 3.0
# Share of the peak DRAM bandwidth that generation reaches when the DRAM is the limit (many
# cores streaming; llama.cpp reaches 60-80% of peak).
MEMORY_EFFICIENCY = 0.7


def vector_factor(cpu: CpuInfo) -> float:
    """How a core's kernels compare with the 256-bit ones the figures were measured on:
    AVX2 / AVX-512 and ARM cores with dot-product instructions (llama.cpp's int8 kernels use
    them) alike, 128-bit-only cores (SSE, plain NEON) half (estimate)."""
    features = set(cpu.features)
    if features & {"avx2", "avx512f"}:
        return 1.0
    if cpu.arch in {"arm64", "aarch64"} and features & {"dotprod", "asimddp", "i8mm"}:
        return 1.0
    if cpu.arch in {"arm64", "aarch64"} and cpu.performance_cores:  # Apple cores (M-series)
        return 1.0
    return 0.5


def guess_costs(profile: HardwareProfile) -> CpuCosts:
    """The speed model's terms for ``profile``'s CPU before any calibration: per-core figures
    (WEIGHTS_PER_CYCLE, CYCLES_PER_ROW, ...) x the clock x the vector width x the cores that
    generate (llama.cpp's threads: the physical cores; efficiency cores count half), with what
    the cores can stream from memory as the floor of a weight byte's cost."""
    cpu = profile.cpu
    cores: float = max(cpu.physical_cores, 1)
    if cpu.performance_cores and cpu.efficiency_cores:
        cores = cpu.performance_cores + cpu.efficiency_cores / 2
    cycles = cores * GUESS_CLOCK_GHZ * 1e9 * vector_factor(cpu)  # per second, all cores
    per_byte = {
        name: 1 / (rate * size * cycles)
        for name, rate in WEIGHTS_PER_CYCLE.items()
        if (size := bytes_per_element(name))
    }
    dram = guess_dram_bandwidth_gbps(profile) * MEMORY_EFFICIENCY
    stream = min(cores * STREAM_PER_CORE_GBPS, dram) * 1e9
    return CpuCosts(
        per_layer=GUESS_SECONDS_PER_LAYER,
        per_row=CYCLES_PER_ROW / cycles,
        per_attention=CYCLES_PER_ATTENTION / cycles,
        per_kv_byte=CYCLES_PER_KV_BYTE / cycles,
        per_byte=per_byte,
        weights_floor=1 / stream,
    )


def _guess_seconds_per_byte(type_name: str, costs: CpuCosts) -> float:
    """A guessed type's cost per byte: its own figure, F16's for a float type, else the other
    quantized types' figure per weight."""
    if type_name in costs.per_byte:
        return costs.per_byte[type_name]
    if type_name in FLOAT_TYPES:
        return costs.per_byte["F16"]
    size = bytes_per_element(type_name) or 0.5
    seconds_per_cycle = costs.per_byte["Q4_K"] * WEIGHTS_PER_CYCLE["Q4_K"] * 0.5625  # Q4_K's size
    return seconds_per_cycle / _OTHER_QUANT_WEIGHTS_PER_CYCLE / size


def seconds_per_byte(type_name: str, calibration: Calibration) -> float | None:
    """What one byte of ``type_name`` costs a generated token on the calibrated CPU, or None
    when the bench measured no type to go by.

    A type the bench did not time is judged from those it did: a float type by F16's cost per
    byte (streamed like F16); a quantized type the guess has a figure for by that figure x how
    far the measured quantized types were from theirs (the quick bench times four types); any
    other quantized one by the measured quantized types' mean cost per weight (unpacking
    scales with weights, not bytes).
    """
    measured = calibration.seconds_per_byte
    if type_name in measured:
        return measured[type_name]
    if type_name in FLOAT_TYPES and "F16" in measured:
        return measured["F16"]
    quantized = {
        name: cost * weight_bytes
        for name, cost in measured.items()
        if name not in FLOAT_TYPES and (weight_bytes := bytes_per_element(name)) is not None
    }  # the measured quantized types' cost per weight
    size = bytes_per_element(type_name)
    ratios = [
        cost * WEIGHTS_PER_CYCLE[name]
        for name, cost in quantized.items()
        if name in WEIGHTS_PER_CYCLE
    ]
    if ratios and size and type_name in WEIGHTS_PER_CYCLE:
        # this type's guess x how far the measured types were from theirs (geometric mean)
        scale = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        return scale / WEIGHTS_PER_CYCLE[type_name] / size
    if quantized and size:
        return sum(quantized.values()) / len(quantized) / size
    if measured:
        return sum(measured.values()) / len(measured)
    return None


def calibrated_costs(profile: HardwareProfile, calibration: Calibration) -> CpuCosts:
    """The terms `gbdesk bench` measured (a calibration file of an earlier version, one
    bandwidth efficiency, gives every byte that cost)."""
    bandwidth = cpu_stream_gbps(profile) * 1e9
    flat = 1 / (bandwidth * max(calibration.cpu_generation_efficiency, 1e-6))
    kv_cost = calibration.seconds_per_kv_byte
    if not (kv_cost or calibration.seconds_per_attention):  # a calibration before either
        kv_cost = seconds_per_byte("F16", calibration) or flat
    return CpuCosts(
        per_layer=calibration.seconds_per_layer,
        per_row=calibration.seconds_per_row,
        per_attention=calibration.seconds_per_attention,
        per_kv_byte=kv_cost,
        per_byte={},  # looked up per type through seconds_per_byte
    )


def cpu_generation_seconds(
    profile: HardwareProfile,
    *,
    weight_bytes: int,
    weight_mix: WeightMix,
    rows: int,
    attention: int,
    kv_bytes: int,
    n_layers: int,
    calibration: Calibration | None,
) -> float:
    """Seconds per generated token for the CPU's share: a fixed cost per layer (thread
    synchronisation, graph work), per weight row (each dot product's set-up: 262k rows of 256
    values cost more than 65k rows of 1024), per attention multiply-add
    (:func:`gbdesk.fit.memory.attention_products`) and byte of KV cells read (query heads that
    share a KV head, GQA, share its bytes), and per weight byte at its type's cost.
    Uncalibrated, the terms are :func:`guess_costs`'."""
    if calibration is None or not calibration.matches(
        profile.cpu.brand, profile.cpu.physical_cores
    ):
        costs = guess_costs(profile)
        per_token = 0.0

        def cost(type_name: str) -> float:
            return _guess_seconds_per_byte(type_name, costs)

    else:
        per_token = calibration.seconds_per_token
        costs = calibrated_costs(profile, calibration)
        flat = 1 / (
            cpu_stream_gbps(profile) * 1e9 * max(calibration.cpu_generation_efficiency, 1e-6)
        )

        def cost(type_name: str) -> float:
            found = seconds_per_byte(type_name, calibration)
            return flat if found is None else found

    per_byte = sum(share * cost(name) for name, share in weight_mix) if weight_mix else cost("F16")
    per_byte = max(per_byte, costs.weights_floor)  # compute, or what memory streams
    return (
        per_token
        + n_layers * costs.per_layer
        + rows * costs.per_row
        + attention * costs.per_attention
        + kv_bytes * costs.per_kv_byte
        + weight_bytes * per_byte
    )


def estimate_speed(
    profile: HardwareProfile,
    *,
    cpu_bytes_per_token: int,
    gpu_bytes_per_token: dict[int, int],
    cpu_rows_per_token: int = 0,
    cpu_attention_per_token: int = 0,
    cpu_kv_bytes_per_token: int = 0,
    weight_mix: WeightMix = (),
    cpu_params_per_token: int,
    gpu_params_per_token: dict[int, int],
    calibration: Calibration | None,
    cpu_layers: int = 0,
    gpu_layers: dict[int, int] | None = None,
) -> SpeedEstimate:
    """Tokens/s for generation and prompt processing of one sequence.

    Layers run one after another, so the time per token is the sum of each device's share:
    per device, a fixed cost per layer plus what is read at what it costs there: on the CPU
    (:func:`cpu_generation_seconds`) weight bytes in ``weight_mix``'s types, weight rows and
    attention's multiply-adds; on a GPU, whose memory bandwidth is the limit, the bytes of
    weights and KV cells. Never divides by zero: unknown bandwidths and peaks fall back to
    conservative figures.
    """
    calibrated = calibration is not None and calibration.matches(
        profile.cpu.brand, profile.cpu.physical_cores
    )
    pp_eff = (
        calibration.cpu_prompt_efficiency
        if calibration is not None and calibrated
        else DEFAULT_CPU_PROMPT_EFFICIENCY
    )
    gpus = {gpu.index: gpu for gpu in profile.gpus}
    cpu_time = cpu_generation_seconds(
        profile,
        weight_bytes=cpu_bytes_per_token,
        weight_mix=weight_mix,
        rows=cpu_rows_per_token,
        attention=cpu_attention_per_token,
        kv_bytes=cpu_kv_bytes_per_token,
        n_layers=cpu_layers,
        calibration=calibration if calibrated else None,
    )
    gen_seconds = cpu_time
    pp_seconds = 2 * cpu_params_per_token / (cpu_peak_flops(profile.cpu) * max(pp_eff, 1e-6))
    gpu_time = 0.0
    for index, n_bytes in gpu_bytes_per_token.items():
        gpu = gpus[index]
        bandwidth = gpu_bandwidth_gbps(gpu, profile)
        gpu_time += n_bytes / (bandwidth * 1e9 * DEFAULT_GPU_GEN_EFFICIENCY)
        gpu_time += (gpu_layers or {}).get(index, 0) * DEFAULT_GPU_SECONDS_PER_LAYER
        flops = gpu_peak_flops(gpu, profile) * DEFAULT_GPU_PROMPT_EFFICIENCY
        pp_seconds += 2 * gpu_params_per_token.get(index, 0) / flops
    gen_seconds += gpu_time
    limited = "gpu memory bandwidth" if gpu_time > cpu_time else "cpu memory bandwidth"
    return SpeedEstimate(
        generation_tps=1 / gen_seconds if gen_seconds > 0 else 0.0,
        prompt_tps=1 / pp_seconds if pp_seconds > 0 else 0.0,
        calibrated=calibrated,
        limited_by=limited,
        basis="calibrated" if calibrated else "guess",
    )
