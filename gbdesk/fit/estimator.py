"""Will this model run on this machine, where do its pieces go, and how fast will it answer?

The estimator places a model the way llama.cpp does (``n_gpu_layers`` counts from the last
repeating layer; one more puts the output head on the GPU; token embeddings stay on the CPU;
several GPUs share the offloaded layers in proportion to their free memory), adds the KV
cache, compute buffers and fixed overheads on each device, and compares with what the machine
offers. With ``gpu_layers=None`` it offloads as many layers as fit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gbdesk.errors import UsageError
from gbdesk.fit import memory
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.layout import ModelLayout
from gbdesk.fit.speed import SpeedEstimate, estimate_speed
from gbdesk.hardware.profile import GpuInfo, HardwareProfile

Verdict = Literal["full-gpu", "partial-gpu", "cpu-only", "does-not-fit"]
GIB = 1 << 30


@dataclass(frozen=True)
class FitSettings:
    """How the model would be loaded (the backend's parameters)."""

    n_ctx: int = 4096  # total context, shared by the parallel sequences
    n_parallel: int = 1
    cache_type: str = "f16"  # f16, q8_0, q4_0 (quantized V needs flash attention)
    n_batch: int = 512
    n_ubatch: int = 512
    gpu_layers: int | None = None  # None: as many as fit
    moe_experts_on_cpu: bool = False
    flash_attn: bool = True  # llama.cpp's "auto" turns it on for CPU, CUDA and Metal
    kv_unified: bool = False
    swa_full: bool = True  # llama_context_default_params' default
    logits_all: bool = False
    high_level_api: bool = False  # llama_cpp.Llama adds its own host arrays

    def check(self) -> None:
        """Raises:
        UsageError: a value is out of range."""
        if self.n_ctx < 1 or self.n_parallel < 1 or self.n_batch < 1 or self.n_ubatch < 1:
            raise UsageError(
                "context, parallel sequences and batch sizes must be positive",
                fix="give --ctx and --parallel values of at least 1",
            )
        if self.cache_type not in memory.CACHE_TYPE_BYTES:
            raise UsageError(
                f"unknown KV cache type {self.cache_type!r}",
                fix=f"use one of {', '.join(memory.CACHE_TYPE_BYTES)}",
            )
        if self.cache_type not in {"f16", "f32", "bf16"} and not self.flash_attn:
            raise UsageError(
                "a quantized KV cache needs flash attention", fix="use --cache-type f16"
            )


@dataclass(frozen=True)
class DeviceMemory:
    """What one device holds, in bytes. ``capacity`` is what the device offers the model."""

    device: str  # "cpu" or "gpu<index>"
    weights: int
    kv_cache: int
    compute: int
    overhead: int
    capacity: int
    layers: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "weights": self.weights,
            "kv_cache": self.kv_cache,
            "compute": self.compute,
            "overhead": self.overhead,
            "total": self.total,
            "capacity": self.capacity,
            "layers": self.layers,
        }


@dataclass(frozen=True)
class Fit:
    """The estimator's answer for one model on one machine with one set of settings."""

    model: str
    verdict: Verdict
    gpu_layers: int  # llama.cpp's n_gpu_layers (n_layers + 1 puts the output head on GPU)
    n_layers: int
    n_ctx: int  # KV cells allocated, all sequences together
    n_parallel: int
    devices: tuple[DeviceMemory, ...]
    speed: SpeedEstimate
    download_bytes: int
    disk_free_bytes: int
    exact: bool
    reasons: tuple[str, ...] = field(default=())
    max_ctx: int = 0  # the largest total context (all chats) that fits with this offload
    n_ctx_train: int = 0  # tokens per sequence the model was trained on
    longer_ctx_fits: bool = False  # memory would hold chats longer than the trained length

    @property
    def max_ctx_per_chat(self) -> int:
        """The longest chat that fits, at most the trained length (what "max ctx" means to a
        person: ``max_ctx`` counts every parallel chat together)."""
        per_chat = self.max_ctx // max(1, self.n_parallel)
        return min(per_chat, self.n_ctx_train) if self.n_ctx_train else per_chat

    @property
    def runs(self) -> bool:
        return self.verdict != "does-not-fit"

    @property
    def fits_disk(self) -> bool:
        return self.download_bytes <= self.disk_free_bytes

    @property
    def cpu(self) -> DeviceMemory:
        return self.devices[0]

    @property
    def gpu_bytes(self) -> int:
        return sum(d.total for d in self.devices[1:])

    @property
    def rss_growth_bytes(self) -> int:
        """Predicted resident memory the model adds to a process that imported llama_cpp."""
        return self.cpu.total - memory.RUNTIME_BASELINE_BYTES

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": self.verdict,
            "gpu_layers": self.gpu_layers,
            "n_layers": self.n_layers,
            "n_ctx": self.n_ctx,
            "n_parallel": self.n_parallel,
            "max_ctx": self.max_ctx,
            "max_ctx_per_chat": self.max_ctx_per_chat,
            "n_ctx_train": self.n_ctx_train,
            "longer_ctx_fits": self.longer_ctx_fits,
            "devices": [d.to_json() for d in self.devices],
            "speed": self.speed.to_json(),
            "download_bytes": self.download_bytes,
            "disk_free_bytes": self.disk_free_bytes,
            "fits_disk": self.fits_disk,
            "exact": self.exact,
            "reasons": list(self.reasons),
        }


def _layer_devices(n_layers: int, n_gpu: int, gpus: tuple[GpuInfo, ...]) -> list[int]:
    """Device of each layer 0..n_layers (the last one is the output head): -1 for the CPU,
    else an index into ``gpus``. Mirrors llama.cpp's default layer split by free memory."""
    n_gpu = max(0, min(n_gpu, n_layers + 1)) if gpus else 0
    start = n_layers - min(n_gpu, n_layers)
    free = [max(g.usable_memory_bytes, 1) for g in gpus]
    total = sum(free)
    cumulative, running = [], 0
    for amount in free:
        running += amount
        cumulative.append(running / total)
    devices = []
    for layer in range(n_layers + 1):
        if not gpus or layer < start or (layer == n_layers and n_gpu <= n_layers):
            devices.append(-1)
            continue
        share = (layer - start) / n_gpu
        devices.append(min(bisect.bisect_right(cumulative, share), len(gpus) - 1))
    return devices


def _place(
    layout: ModelLayout,
    profile: HardwareProfile,
    settings: FitSettings,
    n_gpu: int,
    calibration: Calibration | None,
) -> tuple[tuple[DeviceMemory, ...], SpeedEstimate, int]:
    """Memory per device and speed for one ``n_gpu_layers``; returns the KV cells too."""
    arch = layout.architecture
    gpus = profile.usable_gpus
    # llama.cpp allocates the context asked for, past the trained length too (it only warns).
    cells = memory.kv_cells(
        arch,
        settings.n_ctx,
        settings.n_parallel,
        n_ubatch=settings.n_ubatch,
        unified=settings.kv_unified,
        swa_full=settings.swa_full,
    )
    where = _layer_devices(arch.n_layers, n_gpu, gpus)
    n_dev = len(gpus) + 1  # slot 0 is the CPU
    weights, kv, layers = [0] * n_dev, [0] * n_dev, [0] * n_dev
    gen_bytes, gen_kv, gen_params = [0] * n_dev, [0] * n_dev, [0] * n_dev
    attention = [0] * n_dev
    # mmap maps the whole file: its header pages are resident next to the CPU's weights.
    weights[0] = layout.token_embd_bytes + max(layout.file_bytes - layout.weight_bytes, 0)
    gen_bytes[0] = layout.token_embd_bytes // max(arch.n_vocab, 1)
    for il, (piece, params) in enumerate(zip(layout.layers, layout.layer_params, strict=True)):
        slot = where[il] + 1
        expert_slot = 0 if settings.moe_experts_on_cpu else slot
        weights[slot] += piece.dense
        weights[expert_slot] += piece.experts
        layer_kv = memory.kv_bytes_per_layer(arch, cells, il, settings.cache_type)
        kv[slot] += layer_kv
        gen_kv[slot] += memory.attended_kv_bytes(arch, cells, il, settings.cache_type)
        attention[slot] += memory.attention_products(arch, cells, il)
        layers[slot] += 1
        used = arch.n_expert_used / arch.n_expert if arch.n_expert else 0
        gen_bytes[slot] += piece.dense
        gen_bytes[expert_slot] += int(piece.experts * used)
        gen_params[slot] += params.dense
        gen_params[expert_slot] += int(params.experts * used)
    out_slot = where[arch.n_layers] + 1
    if out_slot or layout.has_output_tensor:
        weights[out_slot] += layout.output_bytes
    else:  # tied head on the CPU shares the embeddings' pages; only the norm is extra
        weights[0] += layout.output_norm_bytes
    gen_bytes[out_slot] += layout.output_bytes
    gen_params[out_slot] += layout.output_params

    devices = []
    host_compute = (
        memory.activation_bytes(arch, settings.n_ubatch)
        if layers[0]
        else (2 * arch.n_embd * settings.n_ubatch * 4)
    )
    if layers[0]:
        host_compute += memory.swa_mask_bytes(arch, cells, settings.n_ubatch)
    if settings.logits_all and out_slot == 0:
        host_compute += arch.n_vocab * settings.n_ubatch * 4
    host_overhead = (
        memory.RUNTIME_BASELINE_BYTES
        + memory.model_overhead_bytes(arch, layout.n_merges)
        + memory.CONTEXT_FIXED_BYTES
        + memory.output_buffer_bytes(arch, settings.n_parallel)
    )
    if settings.high_level_api:
        host_overhead += memory.llama_python_host_bytes(
            arch, settings.n_ctx, settings.n_batch, settings.logits_all
        )
    devices.append(
        DeviceMemory(
            "cpu",
            weights[0],
            kv[0],
            host_compute,
            host_overhead,
            profile.memory.available_bytes,
            layers[0],
        )
    )
    for index, gpu in enumerate(gpus, start=1):
        used_here = layers[index] or out_slot == index
        compute = (
            memory.compute_buffer_bytes(
                arch,
                n_ubatch=settings.n_ubatch,
                kv_cells_per_seq=cells.per_sequence,
                flash_attn=settings.flash_attn,
                holds_output=out_slot == index,
            )
            if used_here
            else 0
        )
        overhead = memory.CUDA_CONTEXT_BYTES if used_here and gpu.vendor == "nvidia" else 0
        devices.append(
            DeviceMemory(
                f"gpu{gpu.index}",
                weights[index],
                kv[index],
                compute,
                overhead,
                gpu.usable_memory_bytes,
                layers[index],
            )
        )
    speed = estimate_speed(
        profile,
        cpu_bytes_per_token=gen_bytes[0],
        cpu_rows_per_token=layout.weight_rows(gen_params[0]),
        cpu_attention_per_token=attention[0],
        cpu_kv_bytes_per_token=gen_kv[0],
        weight_mix=layout.weight_mix,
        gpu_bytes_per_token={g.index: gen_bytes[i] + gen_kv[i] for i, g in enumerate(gpus, 1)},
        cpu_params_per_token=gen_params[0],
        gpu_params_per_token={g.index: gen_params[i] for i, g in enumerate(gpus, 1)},
        calibration=calibration,
        cpu_layers=layers[0],
        gpu_layers={g.index: layers[i] for i, g in enumerate(gpus, 1)},
    )
    return tuple(devices), speed, cells.total


def _fits(devices: tuple[DeviceMemory, ...], profile: HardwareProfile) -> bool:
    if not all(d.fits for d in devices):
        return False
    # Unified memory (Apple): what the GPU holds comes out of the same RAM.
    unified = sum(
        d.total for d, g in zip(devices[1:], profile.usable_gpus, strict=True) if g.unified_memory
    )
    return devices[0].total + unified <= profile.memory.available_bytes


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB"


def _reasons(
    verdict: Verdict, devices: tuple[DeviceMemory, ...], n_gpu: int, n_layers: int
) -> list[str]:
    cpu = devices[0]
    if verdict == "full-gpu":
        gpu_total = sum(d.total for d in devices[1:])
        capacity = sum(d.capacity for d in devices[1:])
        return [f"all {n_layers} layers on the GPU: {_gib(gpu_total)} of {_gib(capacity)}"]
    if verdict == "partial-gpu" and n_gpu >= n_layers:
        return [
            f"all {n_layers} layers on the GPU, the output head in RAM "
            f"({_gib(cpu.total)} of {_gib(cpu.capacity)} available)"
        ]
    if verdict == "partial-gpu":
        return [
            f"{min(n_gpu, n_layers)} of {n_layers} layers on the GPU, the rest in RAM "
            f"({_gib(cpu.total)} of {_gib(cpu.capacity)} available)"
        ]
    if verdict == "cpu-only":
        return [f"runs on the CPU: {_gib(cpu.total)} of {_gib(cpu.capacity)} available RAM"]
    gpu_cap = sum(d.capacity for d in devices[1:])
    weights = sum(d.weights for d in devices)
    need = sum(d.total for d in devices)
    where = f"{_gib(cpu.capacity)} available RAM" + (f" + {_gib(gpu_cap)} VRAM" if gpu_cap else "")
    return [
        f"does not fit: needs {_gib(need)} ({_gib(weights)} of weights) but the machine offers "
        f"{where}"
    ]


def estimate_fit(
    layout: ModelLayout,
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    calibration: Calibration | None = None,
    download_bytes: int | None = None,
) -> Fit:
    """Place ``layout`` on ``profile`` and give the verdict, memory, context and speed.

    Raises:
        UsageError: the settings are out of range.
    """
    settings = settings or FitSettings()
    settings.check()
    arch = layout.architecture
    reasons: list[str] = []
    if settings.n_ctx > arch.n_ctx_train * settings.n_parallel:
        reasons.append(
            f"the context is longer than the {arch.n_ctx_train} tokens per sequence the model "
            "was trained on: answers may degrade past that"
        )
    has_gpu = bool(profile.usable_gpus)
    if settings.gpu_layers is not None:
        candidates = [settings.gpu_layers if has_gpu else 0]
    elif has_gpu:
        candidates = list(range(arch.n_layers + 1, -1, -1))
    else:
        candidates = [0]
    chosen = None
    for n_gpu in candidates:
        devices, speed, cells = _place(layout, profile, settings, n_gpu, calibration)
        if _fits(devices, profile):
            chosen = (n_gpu, devices, speed, cells)
            break
    if chosen is None:
        n_gpu = candidates[-1] if settings.gpu_layers is not None else 0
        if has_gpu and settings.gpu_layers is None:
            # Report the requirement with as many layers on the GPU as its memory takes.
            for candidate in candidates:
                devices, _, _ = _place(layout, profile, settings, candidate, calibration)
                if all(d.fits for d in devices[1:]):
                    n_gpu = candidate
                    break
        devices, speed, cells = _place(layout, profile, settings, n_gpu, calibration)
        verdict: Verdict = "does-not-fit"
    else:
        n_gpu, devices, speed, cells = chosen
        offloaded = min(n_gpu, arch.n_layers + 1) if has_gpu else 0
        verdict = (
            "full-gpu"
            if offloaded == arch.n_layers + 1 and not settings.moe_experts_on_cpu
            else "partial-gpu"
            if offloaded
            else "cpu-only"
        )
    reasons = _reasons(verdict, devices, n_gpu, arch.n_layers) + reasons
    download = layout.file_bytes if download_bytes is None else download_bytes
    fit = Fit(
        model=layout.name,
        verdict=verdict,
        gpu_layers=min(n_gpu, arch.n_layers + 1) if has_gpu else 0,
        n_layers=arch.n_layers,
        n_ctx=cells,
        n_parallel=settings.n_parallel,
        devices=devices,
        speed=speed,
        download_bytes=download,
        disk_free_bytes=profile.disk.free_bytes,
        exact=layout.exact,
        reasons=tuple(reasons),
    )
    if not fit.fits_disk:
        fit = replace(
            fit,
            reasons=(
                *fit.reasons,
                f"the download ({_gib(download)}) does not fit the {_gib(fit.disk_free_bytes)} "
                "free on disk",
            ),
        )
    fit = replace(fit, n_ctx_train=arch.n_ctx_train)
    if fit.runs:
        largest = largest_context(layout, profile, settings, n_gpu)
        fit = replace(fit, max_ctx=largest)
        if largest >= arch.n_ctx_train * settings.n_parallel:  # capped at the trained length
            fit = replace(fit, longer_ctx_fits=_longer_fits(layout, profile, settings, n_gpu))
    return fit


def _longer_fits(
    layout: ModelLayout, profile: HardwareProfile, settings: FitSettings, n_gpu: int
) -> bool:
    """Whether memory would also hold chats of twice the trained length (which llama.cpp
    allows, with answers that may degrade past what the model was trained on)."""
    n_ctx = 2 * layout.architecture.n_ctx_train * settings.n_parallel
    trial = replace(settings, n_ctx=n_ctx, gpu_layers=n_gpu)
    devices, _, _ = _place(layout, profile, trial, n_gpu, None)
    return _fits(devices, profile)


def largest_context(
    layout: ModelLayout, profile: HardwareProfile, settings: FitSettings, n_gpu: int
) -> int:
    """The largest total context (a multiple of 256, at most trained context x sequences) that
    fits with ``n_gpu`` layers offloaded; 0 when even 256 does not."""
    arch = layout.architecture
    step = memory.KV_PAD * settings.n_parallel
    high = (arch.n_ctx_train * settings.n_parallel) // step
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        trial = replace(settings, n_ctx=middle * step, gpu_layers=n_gpu)
        devices, _, _ = _place(layout, profile, trial, n_gpu, None)
        if _fits(devices, profile):
            low = middle
        else:
            high = middle - 1
    return low * step
