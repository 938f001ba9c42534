"""Speed model: generation reads every weight once plus a fixed cost per layer, prompt is
compute-bound.

Generating a token reads every active weight once (only the used experts of a MoE model) and
runs every layer's kernels, so seconds per token = fixed cost x layers + the bytes read x what a
byte costs; a small model is dominated by the first term, a large one by the second. What a
byte costs depends on its ggml type where the cores, not the memory, are the limit: with few
cores a quantized dot product is bound by unpacking its blocks (measured here: a byte of Q4_1
or Q3_K costs 2-2.5 times a byte of F16), so `gbdesk bench` measures each common type and the
estimate weighs them by the model's mix (`gbdesk.fit.weight_mix`). Uncalibrated, every byte
costs the same: the peak bandwidth x an efficiency. Prompt processing does 2 FLOPs per active
parameter per token, so tokens/s = effective FLOP/s / (2 x active parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

from gbdesk.fit.calibration import Calibration
from gbdesk.fit.weight_mix import WeightMix
from gbdesk.gguf import FLOAT_TYPES, bytes_per_element
from gbdesk.hardware.profile import CpuInfo, GpuInfo, HardwareProfile

# Uncalibrated efficiencies: llama.cpp reaches roughly these fractions of peak (estimates).
DEFAULT_CPU_GEN_EFFICIENCY = 0.6
DEFAULT_GPU_GEN_EFFICIENCY = 0.75
DEFAULT_CPU_PROMPT_EFFICIENCY = 0.3
DEFAULT_GPU_PROMPT_EFFICIENCY = 0.35
# What one core can stream through quantized dot products (GB/s): a CPU with few cores cannot
# use all of its DRAM bandwidth (estimate).
PER_CORE_STREAM_GBPS = 8.0
# Fixed cost per layer and generated token (thread barriers, graph work), uncalibrated guesses:
# `gbdesk bench` measures the CPU's on this machine.
DEFAULT_CPU_SECONDS_PER_LAYER = 40e-6
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


def default_dram_bandwidth_gbps(profile: HardwareProfile) -> float:
    """DRAM bandwidth when the probe does not know it: by platform (estimates)."""
    if profile.memory.bandwidth_gbps > 0:
        return profile.memory.bandwidth_gbps
    if profile.os == "Darwin" and profile.cpu.arch in {"arm64", "aarch64"}:
        return 100.0  # Apple M-series base chips: 68-120 GB/s
    return 51.2  # dual-channel DDR4-3200


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


def seconds_per_byte(type_name: str, calibration: Calibration) -> float | None:
    """What one byte of ``type_name`` costs a generated token on the calibrated CPU, or None
    when the bench measured no type to go by.

    A type the bench did not time is judged from those it did: a float type by F16's cost per
    byte (streamed like F16), a quantized one by the measured quantized types' mean cost per
    weight (unpacking scales with weights, not bytes).
    """
    measured = calibration.seconds_per_byte
    if type_name in measured:
        return measured[type_name]
    if type_name in FLOAT_TYPES and "F16" in measured:
        return measured["F16"]
    per_weight = [
        cost * size
        for name, cost in measured.items()
        if name not in FLOAT_TYPES and (size := bytes_per_element(name)) is not None
    ]
    size = bytes_per_element(type_name)
    if per_weight and size:
        return sum(per_weight) / len(per_weight) / size
    if measured:
        return sum(measured.values()) / len(measured)
    return None


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
    Uncalibrated, every byte (weights and KV cells) costs the bandwidth guess."""
    bandwidth = cpu_stream_gbps(profile) * 1e9
    if calibration is None or not calibration.matches(
        profile.cpu.brand, profile.cpu.physical_cores
    ):
        flat = 1 / (bandwidth * DEFAULT_CPU_GEN_EFFICIENCY)
        return n_layers * DEFAULT_CPU_SECONDS_PER_LAYER + (weight_bytes + kv_bytes) * flat
    flat = 1 / (bandwidth * max(calibration.cpu_generation_efficiency, 1e-6))

    def cost(type_name: str) -> float:
        found = seconds_per_byte(type_name, calibration)
        return flat if found is None else found

    weight_cost = sum(share * cost(name) for name, share in weight_mix) if weight_mix else flat
    kv_cost = calibration.seconds_per_kv_byte
    if not (kv_cost or calibration.seconds_per_attention):  # a calibration before either
        kv_cost = cost("F16")
    return (
        calibration.seconds_per_token
        + n_layers * calibration.seconds_per_layer
        + rows * calibration.seconds_per_row
        + attention * calibration.seconds_per_attention
        + kv_bytes * kv_cost
        + weight_bytes * weight_cost
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
