"""How right is the estimator? Measured resident memory and tokens/s against its predictions.

    python bench/fit_accuracy.py [GGUF]        (default: the starter model)

For contexts 512, 2048, 8192 x parallel 1 and 4 it loads the model in a fresh process with
llama-cpp-python (low-level API as gbdesk's backend: n_ctx, n_seq_max = parallel, n_batch
512), feeds each sequence a prompt of up to 512 tokens and generates 16 tokens. Measured: RSS
after the run minus RSS after `import llama_cpp` (the mmap'd model pages count once touched,
and a full prompt batch touches the compute buffer). Peer: the estimator's prediction for the
same case (gbdesk.fit.estimator, rss_growth_bytes). Targets: every case within 10% and never
more than 5% under; generation tokens/s within 25% (calibrated by `gbdesk bench`, if run).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from gbdesk.fit.calibration import load_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_gguf
from gbdesk.fit.measure import measure
from gbdesk.gguf import read_gguf
from gbdesk.hardware.probe import probe
from gbdesk.starter import require_starter_model

MIB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description="Estimator accuracy: memory and tokens/s.")
    parser.add_argument("gguf", nargs="?", type=Path, help="GGUF file (default: the starter)")
    path = parser.parse_args().gguf or require_starter_model()
    layout = layout_from_gguf(read_gguf(path), path.name)
    profile = replace(probe(), gpus=())  # the CPU build measures the CPU
    calibration = load_calibration()
    print(
        f"model {path.name}: {layout.file_bytes / MIB:.1f} MiB file, "
        f"{layout.architecture.n_layers} layers; calibration: "
        f"{'yes' if calibration else 'none (run gbdesk bench)'}"
    )
    print(
        f"{'ctx':>6} {'par':>3} {'measured MiB':>12} {'estimate MiB':>12} {'error':>7} "
        f"{'gen tok/s':>9} {'predicted':>9} {'error':>7}"
    )
    worst_mem = worst_speed = 0.0
    failures = []
    for n_ctx in (512, 2048, 8192):
        for parallel in (1, 4):
            m = measure(path, n_ctx, parallel)
            fit = estimate_fit(
                layout,
                profile,
                FitSettings(n_ctx=n_ctx, n_parallel=parallel),
                calibration=calibration,
            )
            mem_err = fit.rss_growth_bytes / m.rss_growth_bytes - 1
            speed_err = fit.speed.generation_tps / m.generation_tps - 1
            if abs(mem_err) > abs(worst_mem):
                worst_mem = mem_err
            if parallel == 1 and abs(speed_err) > abs(worst_speed):
                worst_speed = speed_err
            if mem_err > 0.10 or mem_err < -0.05:
                failures.append(f"memory ctx {n_ctx} x {parallel}: {mem_err:+.1%}")
            speed_note = f"{speed_err:+7.1%}" if parallel == 1 else "  (n/a)"
            print(
                f"{n_ctx:>6} {parallel:>3} {m.rss_growth_bytes / MIB:>12.1f} "
                f"{fit.rss_growth_bytes / MIB:>12.1f} {mem_err:>+7.1%} "
                f"{m.generation_tps:>9.1f} {fit.speed.generation_tps:>9.1f} {speed_note}"
            )
    print(
        f"worst memory error {worst_mem:+.1%} (target within +10% / -5%); "
        f"worst single-sequence speed error {worst_speed:+.1%} (target within 25%)"
    )
    if abs(worst_speed) > 0.25:
        failures.append(f"speed {worst_speed:+.1%}")
    print("PASS" if not failures else "MISSED: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
