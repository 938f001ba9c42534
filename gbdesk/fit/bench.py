"""Calibration run: time the starter model and two synthetic shapes on this CPU, fit the speed
model's fixed cost per layer and effective bandwidth, and store them.

One model cannot separate a fixed cost from a bandwidth: a small model's time is not
proportional to its bytes. Three models of different depth and width can: seconds per token
= layers x cost per layer + bytes read / bandwidth is fitted by least squares over them.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gbdesk.fit import memory
from gbdesk.fit.calibration import Calibration, save_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_gguf
from gbdesk.fit.measure import Measurement, measure
from gbdesk.fit.measured import record_measured
from gbdesk.fit.speed import DEFAULT_CPU_PROMPT_EFFICIENCY, cpu_stream_gbps
from gbdesk.fit.synthetic import SyntheticSpec, write_synthetic
from gbdesk.hardware.profile import HardwareProfile

if TYPE_CHECKING:
    from gbdesk.gguf import GGUFMetadata

BENCH_CTX = 2048
N_GEN = 48
# Two shapes that pull the fit apart: many thin layers (the fixed cost; their bytes are few) and
# few wide ones (bytes; 150 MB, more than a CPU's last-level cache, so DRAM is what is timed).
BENCH_SHAPES = (
    SyntheticSpec(
        "bench-deep", "llama", n_layers=24, n_embd=128, n_ff=384, n_head=2, n_head_kv=1, tied=True
    ),
    SyntheticSpec(
        "bench-wide",
        "llama",
        n_layers=2,
        n_embd=1536,
        n_ff=6144,
        n_head=12,
        n_head_kv=12,
        tied=True,
    ),
)


@dataclass(frozen=True)
class SpeedPoint:
    """One timed model: its CPU layers, bytes read per token and measured seconds per token."""

    name: str
    n_layers: int
    bytes_per_token: int
    seconds_per_token: float
    prompt_ratio: float  # measured / uncalibrated predicted prompt tokens/s


def fit_speed_model(points: list[SpeedPoint], stream_gbps: float) -> tuple[float, float]:
    """(seconds per layer, generation efficiency) from at least two points, both clamped to
    what is physical: a negative fixed cost becomes 0 and the bandwidth is refitted alone.

    Raises:
        ValueError: fewer than two points.
    """
    if len(points) < 2:
        raise ValueError("the speed model needs at least two measured points")
    design = np.array([[p.n_layers, p.bytes_per_token] for p in points], dtype=float)
    times = np.array([p.seconds_per_token for p in points])
    (per_layer, per_byte), *_ = np.linalg.lstsq(design, times, rcond=None)
    if per_layer < 0 or per_byte <= 0:
        if per_byte <= 0:  # time does not grow with bytes: all of it is fixed cost
            per_layer = float(np.sum(times * design[:, 0]) / np.sum(design[:, 0] ** 2))
            per_byte = 1 / (stream_gbps * 1e9)
        else:
            per_layer = 0.0
            per_byte = float(np.sum(times * design[:, 1]) / np.sum(design[:, 1] ** 2))
    efficiency = 1 / (per_byte * stream_gbps * 1e9)
    return float(per_layer), float(efficiency)


def _point(path: Path, profile: HardwareProfile, measured: Measurement) -> SpeedPoint:
    layout = layout_from_gguf(_read(path), path.name)
    predicted = estimate_fit(layout, profile, FitSettings(n_ctx=BENCH_CTX)).speed
    arch = layout.architecture
    # the same bytes the estimator counts: the weights and the KV cells the bench's prompt fills
    cells = memory.kv_cells(arch, BENCH_CTX, 1)
    kv_read = sum(
        memory.attended_kv_bytes(arch, cells, layer, FitSettings().cache_type)
        for layer in range(arch.n_layers)
    )
    return SpeedPoint(
        name=path.name,
        n_layers=arch.n_layers,
        bytes_per_token=layout.active_bytes_per_token() + kv_read,
        seconds_per_token=1 / measured.generation_tps,
        prompt_ratio=measured.prompt_tps / predicted.prompt_tps,
    )


def _read(path: Path) -> GGUFMetadata:
    from gbdesk.gguf import read_gguf

    return read_gguf(path)


def calibrate(
    path: Path, *, report: Callable[[str], None] = lambda _: None
) -> tuple[Calibration, Path]:
    """Time ``path`` and the two synthetic shapes on the CPU, store the fitted speed model and
    this model's measured speed.

    Raises:
        GGUFError: the file is not a valid GGUF.
        GbdeskError: llama-cpp-python failed to load or run it.
        OSError: the calibration file cannot be written.
    """
    from gbdesk.hardware.probe import probe

    profile = probe()
    cpu_profile = replace(profile, gpus=())  # the bench runs on the CPU
    report(f"running {path.name} on the CPU (context {BENCH_CTX}, 1 sequence)...")
    main = measure(path, BENCH_CTX, 1, n_gen=N_GEN)
    points = [_point(path, cpu_profile, main)]
    with tempfile.TemporaryDirectory(prefix="gbdesk-bench-") as folder:
        for shape in BENCH_SHAPES:
            synthetic = write_synthetic(Path(folder) / f"{shape.name}.gguf", shape)
            report(f"running the synthetic {shape.name} model ({shape.n_layers} layers)...")
            points.append(_point(synthetic, cpu_profile, measure(synthetic, 1024, 1, n_gen=N_GEN)))
    per_layer, efficiency = fit_speed_model(points, cpu_stream_gbps(cpu_profile))
    prompt_ratio = float(np.exp(np.mean([np.log(p.prompt_ratio) for p in points])))
    calibration = Calibration(
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
        cpu_generation_efficiency=efficiency,
        cpu_prompt_efficiency=DEFAULT_CPU_PROMPT_EFFICIENCY * prompt_ratio,
        measured_generation_tps=main.generation_tps,
        measured_prompt_tps=main.prompt_tps,
        measured_rss_growth_bytes=main.rss_growth_bytes,
        model=path.name,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        seconds_per_layer=per_layer,
        points=len(points),
    )
    record_measured(
        path.name,
        generation_tps=main.generation_tps,
        prompt_tps=main.prompt_tps,
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
    )
    return calibration, save_calibration(calibration)
