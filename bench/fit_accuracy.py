"""How right is the estimator? Measured resident memory and tokens/s against its predictions,
on every architecture of the catalogue.

    python bench/fit_accuracy.py [--calibrate] [GGUF ...]
    python bench/fit_accuracy.py --guess [--repeats N]

Models: the starter (SmolLM2-135M, real weights) and a small synthetic GGUF of each catalogue
architecture and feature (gbdesk.fit.synthetic: llama, tied llama, qwen2, gemma2 and gemma3 with
sliding windows, a 262k vocabulary, phi2, phi3, chatglm, glm4, deepseek2 MoE with a latent
cache), two of a real model's size in Q4_K_M (Llama shapes of 1B and 3B parameters, 0.7 and
1.8 GB), or the GGUF files given. Each case loads the model in a fresh process with
llama-cpp-python (low-level API as gbdesk's backend, n_batch 512), feeds a prompt of up to 512
tokens and generates. Memory: RSS after the run minus RSS after `import llama_cpp`, at
contexts below, at and past the training length (llama.cpp allocates what is asked). Speed: the
20th-percentile generation step of one sequence (48 tokens) at the middle context, the fastest
of --repeats runs taken in turn (as `gbdesk bench` times); for a synthetic model, of two wider
twins that do not fit in a CPU's cache: 4x wider in F16 and 8x wider in Q4_K_M (the
catalogue's quant: Q4_K and Q6_K blocks), 100-200 MB each.

Peer: the estimator's prediction for the same case (gbdesk.fit.estimator; rss_growth_bytes and
generation tokens/s) with the calibration `gbdesk bench` stored or, with --calibrate, the one
fitted from the bench's own models (the starter and synthetic models of other shapes, none of
the models here) timed in the same rounds as these cases. Targets:
memory within +10% / -5% on every case, speed within 25% after calibration.

--guess: the speed a first-time user sees, before any calibration (the speed model's defaults,
gbdesk.fit.speed.guess_costs), against measured tokens/s: the starter, the F16 and Q4_K_M
twins of every synthetic architecture, a Llama-shaped model of about 150 MB in each weight type
(F16, Q8_0, Q6_K, Q5_K, Q4_K, Q4_0, Q3_K, Q2_K, Q4_1 and the Q4_K_M mix) and the 0.7 GB 1B
shape. No memory cases. Target: within 35% on every case. A case measured slower than the guess
allows is run again, up to 4 more rounds (a shared machine only ever runs slower).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from gbdesk.fit.bench import (
    bench_models,
    calibration_from,
    save_measured,
    speed_points,
)
from gbdesk.fit.calibration import describe, load_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_gguf
from gbdesk.fit.measure import REPEATS, TimedModel, measure, time_in_turn
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
    # per weight type timed: measured tok/s (one per run), predicted, basis
    speed: dict[str, tuple[list[float], float, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeedCase:
    row: Row
    label: str  # the weights' type: "F16", "Q4_K_M", or the file's
    path: Path
    n_ctx: int


def _contexts(n_ctx_train: int) -> tuple[int, int, int]:
    return (
        n_ctx_train // 2,
        n_ctx_train,
        2 * n_ctx_train if n_ctx_train >= 4096 else 4 * n_ctx_train,
    )


def _memory_row(path: Path) -> tuple[Row, int]:
    """Memory of ``path`` at three contexts, and the middle one (where speed is timed)."""
    layout = layout_from_gguf(read_gguf(path), path.name)
    profile = replace(probe(), gpus=())  # the CPU build measures the CPU
    arch = layout.architecture
    contexts = _contexts(min(arch.n_ctx_train, 8192))
    memory = []
    for n_ctx in contexts:
        measured = measure(path, n_ctx, 1, n_gen=2)
        fit = estimate_fit(layout, profile, FitSettings(n_ctx=n_ctx))
        memory.append((n_ctx, measured.rss_growth_bytes / MIB, fit.rss_growth_bytes / MIB))
    return Row(path.stem, arch.arch, memory), contexts[1]


def _time_and_predict(
    cases: list[SpeedCase], repeats: int, calibrate_here: bool, folder: Path
) -> None:
    """Time every case, in turn with the others (`gbdesk.fit.bench.time_in_turn`), and put the
    runs and the prediction in the rows. With ``calibrate_here`` the bench's own models are
    timed in the same rounds and the calibration is fitted from them (and stored, as `gbdesk
    bench` would): a shared machine's speed drifts by 10% over minutes, and a calibration from
    another minute would carry that drift into every error."""
    profile = replace(probe(), gpus=())
    timed = [TimedModel(case.path, case.n_ctx, 512) for case in cases]
    calibrating: list[TimedModel] = []
    if calibrate_here:
        calibrating = bench_models(require_starter_model(), folder)
    runs = time_in_turn(calibrating + timed, repeats, report=print)
    calibration = load_calibration()
    if calibrate_here:
        points = speed_points(profile, calibrating, runs[: len(calibrating)])
        calibration = calibration_from(profile, points, runs[0], calibrating[0].path.name)
        where = save_measured(calibration)
        print(f"calibrated from {calibration.points} models ({where}): {describe(calibration)}")
    print(f"calibration: {'yes' if calibration else 'none (run gbdesk bench or --calibrate)'}")
    for case, case_runs in zip(cases, runs[len(calibrating) :], strict=True):
        layout = layout_from_gguf(read_gguf(case.path), case.path.name)
        settings = FitSettings(n_ctx=case.n_ctx)
        fit = estimate_fit(layout, profile, settings, calibration=calibration)
        tps = [run.generation_tps for run in case_runs]
        case.row.speed[case.label] = (tps, fit.speed.generation_tps, fit.speed.basis)


# Models of a real model's size, in the catalogue's quant: does a calibration on 150 MB bench
# models hold at 0.7 and 1.8 GB (a 1B and a 3B Llama shape)?
LARGE = (
    SyntheticSpec(
        "llama-1b-Q4_K_M",
        "llama",
        n_layers=16,
        n_embd=2048,
        n_ff=8192,
        n_head=16,
        n_head_kv=4,
        n_vocab=32768,
        n_ctx_train=4096,
        weights="Q4_K_M",
    ),
    SyntheticSpec(
        "llama-3b-Q4_K_M",
        "llama",
        n_layers=28,
        n_embd=3072,
        n_ff=8192,
        n_head=24,
        n_head_kv=8,
        n_vocab=32768,
        n_ctx_train=4096,
        weights="Q4_K_M",
    ),
)
# The wider twins a synthetic model's speed is timed on: (label, weights, width factor).
TWINS = (("F16", "F16", 4), ("Q4_K_M", "Q4_K_M", 8))
# --guess: one Llama-shaped model per weight type, about this many bytes (out of any cache).
GUESS_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_0", "Q3_K", "Q2_K", "Q4_1", "Q4_K_M")
_GUESS_BYTES = 150e6
GUESS_TARGET = 0.35
GUESS_RETRIES = 4


def _type_model(folder: Path, weights: str) -> Path:
    """A Llama shape 8x wider than the synthetic llama, with enough layers for ~150 MB."""
    from gbdesk.gguf import bytes_per_element

    wide = scaled(SPECS[0], 8)
    per_layer = 2 * wide.n_embd**2 + 2 * wide.n_embd * wide.kv_width + 3 * wide.n_embd * wide.n_ff
    size = bytes_per_element("Q4_K" if weights == "Q4_K_M" else weights) or 2.0
    n_layers = max(2, round(_GUESS_BYTES / (per_layer * size)))
    item = replace(wide, name=f"llama-{weights}", weights=weights, n_layers=n_layers)
    return write_synthetic(folder / f"{item.name}.gguf", item)


def guess_table(repeats: int) -> int:
    """Time the --guess cases and print measured tok/s against the uncalibrated guess."""
    profile = replace(probe(), gpus=())
    with tempfile.TemporaryDirectory(prefix="fit-guess-") as name:
        folder = Path(name)
        cases: list[tuple[str, str, Path, int]] = []  # model, weights, path, n_ctx
        cases.append(("SmolLM2-135M-Instruct", "Q4_1 (real)", require_starter_model(), 8192))
        for item in SPECS:
            for label, weights, factor in TWINS:
                twin = replace(scaled(item, factor), weights=weights)
                twin = replace(twin, name=f"{twin.name}-{label}")
                path = write_synthetic(folder / f"{twin.name}.gguf", twin)
                cases.append((item.name, label, path, item.n_ctx_train))
        for weights in GUESS_TYPES:
            cases.append(("llama-150MB", weights, _type_model(folder, weights), 1024))
        large = LARGE[0]
        path = write_synthetic(folder / f"{large.name}.gguf", large)
        cases.append((large.name, large.weights, path, 4096))
        timed = [TimedModel(path, n_ctx, 512) for _, _, path, n_ctx in cases]
        runs = time_in_turn(timed, repeats, report=print)
        guesses = []
        for _, _, path, n_ctx in cases:
            layout = layout_from_gguf(read_gguf(path), path.name)
            speed = estimate_fit(layout, profile, FitSettings(n_ctx=n_ctx)).speed
            assert speed.basis == "guess"
            guesses.append(speed.generation_tps)
        # A shared machine only ever runs slower: a case measured slower than the guess allows
        # is run again, up to GUESS_RETRIES more rounds (the table says how many runs it got).
        for _ in range(GUESS_RETRIES):
            slow = [
                i
                for i, case_runs in enumerate(runs)
                if guesses[i] > max(r.generation_tps for r in case_runs) * (1 + GUESS_TARGET)
            ]
            if not slow:
                break
            again = time_in_turn([timed[i] for i in slow], 1, report=print)
            for i, more in zip(slow, again, strict=True):
                runs[i].extend(more)
    print()
    print(f"uncalibrated guess on {profile.cpu.brand}, {profile.cpu.physical_cores} cores")
    print(
        "| model | weights | measured tok/s (fastest of runs) | guess tok/s | error | "
        "runs, slowest run |"
    )
    print("|---|---|---|---|---|---|")
    worst, failures = 0.0, []
    for (model, weights, _, _), case_runs, guess in zip(cases, runs, guesses, strict=True):
        measured = max(run.generation_tps for run in case_runs)
        error = guess / measured - 1
        worst = error if abs(error) > abs(worst) else worst
        if abs(error) > GUESS_TARGET:
            failures.append(f"{model} {weights}: {error:+.1%}")
        slowest = 1 - min(run.generation_tps for run in case_runs) / measured
        print(
            f"| {model} | {weights} | {measured:.1f} | {guess:.1f} | {error:+.1%} | "
            f"{len(case_runs)}, -{slowest:.0%} |"
        )
    print()
    print(f"worst guess error {worst:+.1%} (target within {GUESS_TARGET:.0%})")
    print("PASS" if not failures else "MISSED: " + "; ".join(failures))
    return 0 if not failures else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="Estimator accuracy: memory and tokens/s.")
    parser.add_argument("gguf", nargs="*", type=Path, help="GGUF files (default: see above)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate as `gbdesk bench` does, timing its models in the same rounds",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"runs per speed case, the fastest counting (default {REPEATS})",
    )
    parser.add_argument(
        "--guess",
        action="store_true",
        help="speed only: the uncalibrated guess against measured tok/s, per architecture "
        "and weight type",
    )
    args = parser.parse_args()
    if args.guess:
        return guess_table(args.repeats)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fit-accuracy-") as folder:
        cases: list[SpeedCase] = []
        if args.gguf:
            for path in args.gguf:
                row, n_ctx = _memory_row(path)
                rows.append(row)
                cases.append(SpeedCase(row, "file", path, n_ctx))
        else:
            starter = require_starter_model()
            row, n_ctx = _memory_row(starter)
            rows.append(row)
            cases.append(SpeedCase(row, "Q4_1 (real)", starter, n_ctx))
            for item in SPECS:
                small = write_synthetic(Path(folder) / f"{item.name}.gguf", item)
                row, n_ctx = _memory_row(small)
                small.unlink()
                rows.append(row)
                for label, weights, factor in TWINS:
                    twin = replace(scaled(item, factor), weights=weights)
                    twin = replace(twin, name=f"{twin.name}-{label}")
                    path = write_synthetic(Path(folder) / f"{twin.name}.gguf", twin)
                    cases.append(SpeedCase(row, label, path, n_ctx))
            for item in LARGE:
                path = write_synthetic(Path(folder) / f"{item.name}.gguf", item)
                row, n_ctx = _memory_row(path)
                rows.append(row)
                cases.append(SpeedCase(row, item.weights, path, n_ctx))
        _time_and_predict(cases, args.repeats, args.calibrate, Path(folder))
    print()
    print(
        "| model | arch | memory MiB, measured / estimated (error) at ctx below, at, past "
        "training | gen tok/s measured / predicted (error), per weight type | basis |"
    )
    print("|---|---|---|---|---|")
    failures, worst_mem, worst_speed = [], 0.0, 0.0
    for row in rows:
        cells = []
        for n_ctx, measured, estimate in row.memory:
            error = estimate / measured - 1
            worst_mem = error if abs(error) > abs(worst_mem) else worst_mem
            if not -0.05 <= error <= 0.10:
                failures.append(f"{row.model} memory at {n_ctx}: {error:+.1%}")
            cells.append(f"{n_ctx}: {measured:.1f} / {estimate:.1f} ({error:+.1%})")
        speeds, bases = [], set()
        for label, (runs, predicted, basis) in row.speed.items():
            measured_tps = max(runs)
            error = predicted / measured_tps - 1
            worst_speed = error if abs(error) > abs(worst_speed) else worst_speed
            if abs(error) > 0.25:
                failures.append(f"{row.model} {label} speed: {error:+.1%}")
            slowest = 1 - min(runs) / measured_tps
            figures = f"{measured_tps:.1f} / {predicted:.1f} ({error:+.1%}"
            speeds.append(f"{label}: {figures}; slowest run -{slowest:.0%})")
            bases.add(basis)
        print(
            f"| {row.model} | {row.arch} | {'; '.join(cells)} | {'; '.join(speeds)} | "
            f"{', '.join(sorted(bases))} |"
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
