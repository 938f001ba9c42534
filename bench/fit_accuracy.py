"""How right is the estimator? Measured resident memory and tokens/s against its predictions,
on every architecture of the catalogue.

    python bench/fit_accuracy.py [--calibrate] [GGUF ...]

Models: the starter (SmolLM2-135M, real weights) and a small synthetic GGUF of each catalogue
architecture and feature (gbdesk.fit.synthetic: llama, tied llama, qwen2, gemma2 and gemma3 with
sliding windows, a 262k vocabulary, phi2, phi3, chatglm, glm4, deepseek2 MoE with a latent
cache), or the GGUF files given. Each case loads the model in a fresh process with
llama-cpp-python (low-level API as gbdesk's backend, n_batch 512), feeds a prompt of up to 512
tokens and generates. Memory: RSS after the run minus RSS after `import llama_cpp`, at
contexts below, at and past the training length (llama.cpp allocates what is asked). Speed: the
median generation step of one sequence (48 tokens) at the middle context; for a synthetic
model, of its 4x wider twin (100-200 MB: the small one fits in the CPU's cache).

Peer: the estimator's prediction for the same case (gbdesk.fit.estimator; rss_growth_bytes and
generation tokens/s, with the calibration `gbdesk bench` stored, which --calibrate runs first:
it fits on the starter and two bench shapes, none of the synthetic models here). Targets:
memory within +10% / -5% on every case, speed within 25% after calibration.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from gbdesk.fit.bench import calibrate
from gbdesk.fit.calibration import load_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_gguf
from gbdesk.fit.measure import measure
from gbdesk.fit.synthetic import SPECS, SyntheticSpec, scaled, write_synthetic
from gbdesk.gguf import read_gguf
from gbdesk.hardware.probe import probe
from gbdesk.starter import require_starter_model

MIB = 1 << 20


@dataclass
class Row:
    model: str
    arch: str
    memory: list[tuple[int, float, float]]  # ctx, measured MiB, estimate MiB
    speed: tuple[float, float, str]  # measured, predicted, basis


def _contexts(n_ctx_train: int) -> tuple[int, int, int]:
    return (
        n_ctx_train // 2,
        n_ctx_train,
        2 * n_ctx_train if n_ctx_train >= 4096 else 4 * n_ctx_train,
    )


def _speed(path: Path, n_ctx: int, calibration: object) -> tuple[float, float, str]:
    layout = layout_from_gguf(read_gguf(path), path.name)
    profile = replace(probe(), gpus=())
    timed = measure(path, n_ctx, 1, n_gen=48)
    fit = estimate_fit(layout, profile, FitSettings(n_ctx=n_ctx), calibration=calibration)
    return timed.generation_tps, fit.speed.generation_tps, fit.speed.basis


def _run(path: Path, calibration: object, speed_spec: SyntheticSpec | None = None) -> Row:
    """Memory of ``path`` at three contexts; speed of ``path`` or, for a synthetic model, of
    its 4x wider twin (the small one fits in the CPU's cache and would not time DRAM)."""
    layout = layout_from_gguf(read_gguf(path), path.name)
    profile = replace(probe(), gpus=())  # the CPU build measures the CPU
    arch = layout.architecture
    contexts = _contexts(min(arch.n_ctx_train, 8192))
    memory = []
    for n_ctx in contexts:
        measured = measure(path, n_ctx, 1, n_gen=2)
        fit = estimate_fit(layout, profile, FitSettings(n_ctx=n_ctx))
        memory.append((n_ctx, measured.rss_growth_bytes / MIB, fit.rss_growth_bytes / MIB))
    if speed_spec is None:
        speed = _speed(path, contexts[1], calibration)
    else:
        wide = write_synthetic(path.with_name(f"{speed_spec.name}.gguf"), speed_spec)
        try:
            speed = _speed(wide, contexts[1], calibration)
        finally:
            wide.unlink()
    return Row(path.stem, arch.arch, memory, speed)


def main() -> int:
    parser = argparse.ArgumentParser(description="Estimator accuracy: memory and tokens/s.")
    parser.add_argument("gguf", nargs="*", type=Path, help="GGUF files (default: see above)")
    parser.add_argument("--calibrate", action="store_true", help="run `gbdesk bench` first")
    args = parser.parse_args()
    if args.calibrate:
        calibration, where = calibrate(require_starter_model(), report=print)
        print(
            f"calibrated from {calibration.points} models: "
            f"{calibration.seconds_per_layer * 1e6:.0f} us per layer, "
            f"{calibration.cpu_generation_efficiency:.3f} of the bandwidth peak ({where})"
        )
    calibration = load_calibration()
    print(f"calibration: {'yes' if calibration else 'none (run gbdesk bench or --calibrate)'}")
    with tempfile.TemporaryDirectory(prefix="fit-accuracy-") as folder:
        if args.gguf:
            rows = [_run(path, calibration) for path in args.gguf]
        else:
            rows = [_run(require_starter_model(), calibration)]
            for item in SPECS:
                small = write_synthetic(Path(folder) / f"{item.name}.gguf", item)
                rows.append(_run(small, calibration, scaled(item, 4)))
    print()
    print(
        "| model | arch | memory MiB, measured / estimated (error) at ctx below, at, past "
        "training | gen tok/s measured | predicted | error | basis |"
    )
    print("|---|---|---|---:|---:|---:|---|")
    failures, worst_mem, worst_speed = [], 0.0, 0.0
    for row in rows:
        cells = []
        for n_ctx, measured, estimate in row.memory:
            error = estimate / measured - 1
            worst_mem = error if abs(error) > abs(worst_mem) else worst_mem
            if not -0.05 <= error <= 0.10:
                failures.append(f"{row.model} memory at {n_ctx}: {error:+.1%}")
            cells.append(f"{n_ctx}: {measured:.1f} / {estimate:.1f} ({error:+.1%})")
        measured_tps, predicted_tps, basis = row.speed
        speed_error = predicted_tps / measured_tps - 1
        worst_speed = speed_error if abs(speed_error) > abs(worst_speed) else worst_speed
        if abs(speed_error) > 0.25:
            failures.append(f"{row.model} speed: {speed_error:+.1%}")
        print(
            f"| {row.model} | {row.arch} | {'; '.join(cells)} | {measured_tps:.1f} | "
            f"{predicted_tps:.1f} | {speed_error:+.1%} | {basis} |"
        )
    print()
    print(
        f"worst memory error {worst_mem:+.1%} (target within +10% / -5%); "
        f"worst speed error {worst_speed:+.1%} (target within 25%)"
    )
    print("PASS" if not failures else "MISSED: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
