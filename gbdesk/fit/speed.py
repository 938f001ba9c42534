"""Speed model: generation is memory-bound, prompt processing is compute-bound.

Generating a token reads every active weight once, so tokens/s = effective bandwidth / bytes
read per token (only the used experts of a MoE model). Prompt processing does 2 FLOPs per
active parameter per token, so tokens/s = effective FLOP/s / (2 x active parameters). Effective
means peak x efficiency; `gbdesk bench` measures the efficiency of this machine's CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from gbdesk.fit.calibration import Calibration
from gbdesk.hardware.profile import CpuInfo, GpuInfo, HardwareProfile

# Uncalibrated efficiencies: llama.cpp reaches roughly these fractions of peak (estimates).
DEFAULT_CPU_GEN_EFFICIENCY = 0.6
DEFAULT_GPU_GEN_EFFICIENCY = 0.75
DEFAULT_CPU_PROMPT_EFFICIENCY = 0.3
DEFAULT_GPU_PROMPT_EFFICIENCY = 0.35
# What one core can stream through quantized dot products (GB/s): a CPU with few cores cannot
# use all of its DRAM bandwidth (estimate).
PER_CORE_STREAM_GBPS = 8.0
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
    if profile.memory.bandwidth_gbps:
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


def gpu_peak_flops(gpu: GpuInfo) -> float:
    """FP16 tensor peak from the model name, else from bandwidth (80 FLOP per byte/s)."""
    for name, tflops in GPU_TFLOPS.items():
        if name.lower() in gpu.name.lower():
            return tflops * 1e12
    return gpu.peak_bandwidth_gbps * 1e9 * 80


@dataclass(frozen=True)
class SpeedEstimate:
    generation_tps: float
    prompt_tps: float
    calibrated: bool
    limited_by: str  # "gpu memory bandwidth", "cpu memory bandwidth", ...

    def to_json(self) -> dict[str, object]:
        return {
            "generation_tps": round(self.generation_tps, 2),
            "prompt_tps": round(self.prompt_tps, 1),
            "calibrated": self.calibrated,
            "limited_by": self.limited_by,
        }


def estimate_speed(
    profile: HardwareProfile,
    *,
    cpu_bytes_per_token: int,
    gpu_bytes_per_token: dict[int, int],
    cpu_params_per_token: int,
    gpu_params_per_token: dict[int, int],
    calibration: Calibration | None,
) -> SpeedEstimate:
    """Tokens/s for generation and prompt processing of one sequence.

    Layers run one after another, so the time per token is the sum of each device's share.
    """
    calibrated = calibration is not None and calibration.matches(
        profile.cpu.brand, profile.cpu.physical_cores
    )
    gen_eff = calibration.cpu_generation_efficiency if calibrated else DEFAULT_CPU_GEN_EFFICIENCY
    pp_eff = calibration.cpu_prompt_efficiency if calibrated else DEFAULT_CPU_PROMPT_EFFICIENCY
    gpus = {gpu.index: gpu for gpu in profile.gpus}
    cpu_time = cpu_bytes_per_token / (cpu_stream_gbps(profile) * 1e9 * gen_eff)
    gen_seconds = cpu_time
    pp_seconds = 2 * cpu_params_per_token / (cpu_peak_flops(profile.cpu) * pp_eff)
    gpu_time = 0.0
    for index, n_bytes in gpu_bytes_per_token.items():
        gpu = gpus[index]
        bandwidth = gpu.peak_bandwidth_gbps or (default_dram_bandwidth_gbps(profile))
        gpu_time += n_bytes / (bandwidth * 1e9 * DEFAULT_GPU_GEN_EFFICIENCY)
        flops = gpu_peak_flops(gpu) * DEFAULT_GPU_PROMPT_EFFICIENCY
        pp_seconds += 2 * gpu_params_per_token.get(index, 0) / flops
    gen_seconds += gpu_time
    limited = "gpu memory bandwidth" if gpu_time > cpu_time else "cpu memory bandwidth"
    return SpeedEstimate(
        generation_tps=1 / gen_seconds if gen_seconds else 0.0,
        prompt_tps=1 / pp_seconds if pp_seconds else 0.0,
        calibrated=calibrated,
        limited_by=limited,
    )
