"""Calibration run: measure the starter model on this CPU and derive efficiency factors."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from gbdesk.fit.calibration import Calibration, save_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.measure import measure
from gbdesk.fit.speed import DEFAULT_CPU_GEN_EFFICIENCY, DEFAULT_CPU_PROMPT_EFFICIENCY

BENCH_CTX = 2048


def calibrate(
    path: Path, *, report: Callable[[str], None] = lambda _: None
) -> tuple[Calibration, Path]:
    """Measure ``path`` on the CPU and store how far from the uncalibrated prediction it ran.

    The stored factor is default efficiency x measured / predicted, so a later estimate for the
    same model reproduces the measurement and other models scale by their bytes and FLOPs.

    Raises:
        GGUFError: the file is not a valid GGUF.
        GbdeskError: llama-cpp-python failed to load or run it.
        OSError: the calibration file cannot be written.
    """
    from gbdesk.fit.layout import layout_from_gguf
    from gbdesk.gguf import read_gguf
    from gbdesk.hardware.probe import probe

    profile = probe()
    # Estimate as the bench runs it: on the CPU.
    cpu_profile = replace(profile, gpus=())
    layout = layout_from_gguf(read_gguf(path), path.name)
    report(f"running {path.name} on the CPU (context {BENCH_CTX}, 1 sequence)...")
    measured = measure(path, BENCH_CTX, 1, n_gen=32)
    predicted = estimate_fit(layout, cpu_profile, FitSettings(n_ctx=BENCH_CTX)).speed
    calibration = Calibration(
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
        cpu_generation_efficiency=DEFAULT_CPU_GEN_EFFICIENCY
        * measured.generation_tps
        / predicted.generation_tps,
        cpu_prompt_efficiency=DEFAULT_CPU_PROMPT_EFFICIENCY
        * measured.prompt_tps
        / predicted.prompt_tps,
        measured_generation_tps=measured.generation_tps,
        measured_prompt_tps=measured.prompt_tps,
        measured_rss_growth_bytes=measured.rss_growth_bytes,
        model=path.name,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    return calibration, save_calibration(calibration)
