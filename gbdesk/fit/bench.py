"""Calibration run: time the user's model and synthetic models built to pull the speed
model's terms apart on this CPU, fit them, and store them.

One model cannot separate a fixed cost from the cost of bytes: a small model's time is not
proportional to its bytes. Nor can one type stand for another: with few cores a quantized dot
product is bound by unpacking its blocks, so a byte of Q4_1 or Q3_K costs 2-2.5 times a byte of
F16. Seconds per token = layers x cost per layer + rows x cost per row + attention products x
cost per product + KV bytes x cost per KV byte + the sum over types of bytes x cost per byte
(gbdesk.fit.speed.cpu_generation_seconds) is fitted by least squares over: many thin layers
(the fixed cost), two attention models (8 query heads on 8 and on 1 KV head), two models of
many short rows, and per type a model of a few wide layers holding about 150 MB of it (more
than a CPU's last-level cache, so memory is what is timed).

The quick bench (`gbdesk bench --quick`, and the app's first-run measurement) times fewer
models, fewer times: the user's model, the F16 model of many rows and the wide ones of the
catalogue's types (F16, Q8_0, Q6_K, Q4_K). Too few to pull the fixed costs apart (per layer,
row, attention product and KV byte), it takes those from the uncalibrated guess
(gbdesk.fit.speed.guess_costs) and fits each timed type's cost on the rest of each time; a type
it did not time is judged from those it did (gbdesk.fit.speed.seconds_per_byte).
"""

from __future__ import annotations

import datetime
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from gbdesk.fit import memory
from gbdesk.fit.calibration import Calibration, bench_lock, save_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_gguf
from gbdesk.fit.measure import (
    REPEATS,
    BenchCancelledError,
    Measurement,
    TimedModel,
    time_in_turn,
)
from gbdesk.fit.measured import record_measured
from gbdesk.fit.speed import (
    DEFAULT_CPU_PROMPT_EFFICIENCY,
    CpuCosts,
    cpu_stream_gbps,
    guess_costs,
)
from gbdesk.fit.synthetic import SyntheticSpec, write_synthetic
from gbdesk.gguf import FLOAT_TYPES, bytes_per_element
from gbdesk.hardware.profile import HardwareProfile

if TYPE_CHECKING:
    from gbdesk.gguf import GGUFMetadata

BENCH_CTX = 2048
N_GEN = 48
# The types whose cost per byte is measured: those of the catalogue's quants (Q4_K_M is Q4_K
# and Q6_K, Q2_K and Q3_K_M add Q2_K, Q3_K, Q5_K) and the common older ones. The others are
# judged from these (gbdesk.fit.speed.seconds_per_byte).
MEASURED_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_0", "Q3_K", "Q2_K")
# The quick bench's types: the catalogue's common quants (Q4_K_M is Q4_K and Q6_K) and F16.
QUICK_TYPES = ("F16", "Q8_0", "Q6_K", "Q4_K")
_DEEP = SyntheticSpec(
    "bench-deep", "llama", n_layers=24, n_embd=128, n_ff=384, n_head=2, n_head_kv=1, tied=True
)
# Attention does as many multiply-adds as the weights once a 2,000-token prompt is in.
_KV = SyntheticSpec(
    "bench-kv",
    "llama",
    n_layers=4,
    n_embd=1024,
    n_ff=256,
    n_head=8,
    n_head_kv=8,
    tied=True,
    n_ctx_train=4096,
)
# Half a million rows of 128 values (a vocabulary's output head; and a quarter million of 256
# in Q6_K, the type of Q4_K_M's heads): times a row's set-up.
_ROWS = SyntheticSpec(
    "bench-rows",
    "llama",
    n_layers=1,
    n_embd=128,
    n_ff=256,
    n_head=2,
    n_head_kv=1,
    n_vocab=524288,
    tied=True,
)
_ROWS_Q6_K = replace(_ROWS, name="bench-rows-Q6_K", n_embd=256, n_vocab=262144, weights="Q6_K")
# The same attention work with one KV head for eight query heads (GQA): an eighth of the bytes.
_KV_SHARED = replace(_KV, name="bench-kv-gqa", n_head_kv=1)
_WIDE = SyntheticSpec(
    "bench-wide", "llama", n_embd=1536, n_ff=6144, n_head=12, n_head_kv=12, tied=True
)
# weights per layer: Q, K, V and output (as many KV heads as query heads), gate, up and down
_WIDE_LAYER_WEIGHTS = 4 * _WIDE.n_embd**2 + 3 * _WIDE.n_embd * _WIDE.n_ff
_WIDE_BYTES = 150e6
# The prompt the estimator's prompt speed is fitted on (the user's model, F16 shapes), and the
# short one of the other models: few KV cells, so their weights are what is timed.
_FULL_PROMPT = 512
_SHORT_PROMPT = 64


class BenchCase(NamedTuple):
    """One synthetic model the bench times, with the context and prompt it is timed at."""

    spec: SyntheticSpec
    n_ctx: int
    prompt: int


def bench_cases(*, quick: bool = False) -> tuple[BenchCase, ...]:
    """The deep, attention and row models, and one wide model of about 150 MB per type; quick:
    the F16 row model and the wide ones of QUICK_TYPES."""
    if quick:
        cases = [BenchCase(_ROWS, 1024, _SHORT_PROMPT)]
    else:
        cases = [
            BenchCase(_DEEP, 1024, _SHORT_PROMPT),
            BenchCase(_KV, 4096, 2000),
            BenchCase(_KV_SHARED, 4096, 2000),
            BenchCase(_ROWS, 1024, _SHORT_PROMPT),
            BenchCase(_ROWS_Q6_K, 1024, _SHORT_PROMPT),
        ]
    for kind in QUICK_TYPES if quick else MEASURED_TYPES:
        size = bytes_per_element(kind) or 2.0
        n_layers = max(2, round(_WIDE_BYTES / (_WIDE_LAYER_WEIGHTS * size)))
        wide = replace(_WIDE, name=f"bench-wide-{kind}", weights=kind, n_layers=n_layers)
        cases.append(BenchCase(wide, 1024, _FULL_PROMPT if kind == "F16" else _SHORT_PROMPT))
    return tuple(cases)


@dataclass(frozen=True)
class SpeedPoint:
    """One timed model: what a generated token reads on the CPU (layers, weight bytes by ggml
    type, weight rows, attention multiply-adds, KV bytes) and its measured seconds per token."""

    name: str
    n_layers: int
    bytes_by_type: Mapping[str, int]
    seconds_per_token: float
    rows: int = 0
    attention: int = 0
    kv_bytes: int = 0
    prompt_ratio: float | None = None  # measured / uncalibrated predicted prompt tokens/s


@dataclass(frozen=True)
class SpeedFit:
    """The fitted speed model (gbdesk.fit.speed.cpu_generation_seconds's terms); a term the
    points could not tell is 0."""

    seconds_per_layer: float
    seconds_per_row: float
    seconds_per_attention: float
    seconds_per_kv_byte: float
    seconds_per_byte: dict[str, float]


def _fitted_type(type_name: str) -> str:
    """Float types are fitted as one (F32 norms are a few KB beside F16 matrices)."""
    return "F16" if type_name in FLOAT_TYPES else type_name


_FIXED_TERMS = ("layers", "rows", "attention", "kv bytes")


def _least_squares(
    design: np.ndarray, times: np.ndarray, names: list[str], kinds: list[str]
) -> dict[str, float]:
    """Relative least squares of ``times`` on ``design``'s columns, leaving out what comes out
    unphysical (a negative cost, a type's cost of 0) and refitting the rest."""
    weights = 1 / times  # relative errors
    kept = [c for c in range(len(names)) if design[:, c].any()]
    while True:
        solution, *_ = np.linalg.lstsq(
            design[:, kept] * weights[:, None], times * weights, rcond=None
        )
        figures = {names[c]: float(v) for c, v in zip(kept, solution, strict=True)}
        unphysical = [
            c
            for c in kept
            if figures[names[c]] < 0 or (names[c] in kinds and figures[names[c]] == 0)
        ]
        if not unphysical or len(kept) == 1:
            return figures
        kept.remove(min(unphysical, key=lambda c: figures[names[c]]))


def fit_speed_model(points: list[SpeedPoint], prior: CpuCosts | None = None) -> SpeedFit:
    """Least squares of seconds per token = layers x cost per layer + rows x cost per row +
    attention x cost per product + KV bytes x cost per KV byte + weight bytes x cost per byte
    of each type, in relative
    terms (a 1 ms model weighs as much as a 15 ms one). What is physical is kept: a term that
    comes out negative (a cost per byte: 0 or less) is left out and the rest refitted; a
    left-out type is then judged from the others, a left-out fixed term is 0.

    With a ``prior`` (the quick bench: too few models to pull the four fixed terms apart) the
    fixed terms are the prior's and only the types' costs are fitted, on what the fixed terms
    leave of each time (at least a tenth of it).

    Raises:
        ValueError: fewer than two points, or no bytes whose cost grows with them.
    """
    if len(points) < 2:
        raise ValueError("the speed model needs at least two measured points")
    kinds = sorted({_fitted_type(k) for p in points for k, n in p.bytes_by_type.items() if n})
    names = [*_FIXED_TERMS, *kinds]
    design = np.zeros((len(points), len(names)))
    for row, point in enumerate(points):
        design[row, :4] = point.n_layers, point.rows, point.attention, point.kv_bytes
        for kind, n_bytes in point.bytes_by_type.items():
            design[row, names.index(_fitted_type(kind))] += n_bytes
    times = np.array([p.seconds_per_token for p in points])
    if prior is None:
        figures = _least_squares(design, times, names, kinds)
    else:
        rest = np.maximum(times - design[:, :4] @ np.array(prior.fixed), times / 10)
        figures = _least_squares(design[:, 4:], rest, names[4:], kinds)
    costs = {kind: figures[kind] for kind in kinds if figures.get(kind, 0) > 0}
    if not costs:
        raise ValueError("time did not grow with bytes in any measured model")
    if prior is not None:
        layers, rows, attention, kv = prior.fixed
    else:
        layers, rows, attention, kv = (max(figures.get(term, 0.0), 0.0) for term in _FIXED_TERMS)
    return SpeedFit(layers, rows, attention, kv, costs)


def _point(
    path: Path, profile: HardwareProfile, runs: list[Measurement], *, with_prompt: bool
) -> SpeedPoint:
    layout = layout_from_gguf(_read(path), path.name)
    arch = layout.architecture
    # what the estimator counts: the weights in their types, their rows, and attention over
    # the cells the prompt and the answer filled
    filled = runs[0].prompt_tokens + N_GEN
    cells = memory.kv_cells(arch, runs[0].n_ctx, 1)
    attention = sum(
        memory.attention_products(arch, cells, layer, filled) for layer in range(arch.n_layers)
    )
    kv_bytes = sum(
        memory.attended_kv_bytes(arch, cells, layer, "f16", filled)
        for layer in range(arch.n_layers)
    )
    weights = layout.active_bytes_per_token()
    ratio = None
    if with_prompt:
        predicted = estimate_fit(layout, profile, FitSettings(n_ctx=runs[0].n_ctx)).speed
        ratio = max(run.prompt_tps for run in runs) / predicted.prompt_tps
    return SpeedPoint(
        name=path.name,
        n_layers=arch.n_layers,
        bytes_by_type={kind: round(weights * share) for kind, share in layout.weight_mix},
        seconds_per_token=min(1 / run.generation_tps for run in runs),
        rows=layout.weight_rows(layout.active_params_per_token()),
        attention=attention,
        kv_bytes=kv_bytes,
        prompt_ratio=ratio,
    )


def _read(path: Path) -> GGUFMetadata:
    from gbdesk.gguf import read_gguf

    return read_gguf(path)


def bench_models(
    path: Path,
    folder: Path,
    *,
    quick: bool = False,
    cancel: threading.Event | None = None,
) -> list[TimedModel]:
    """What the bench times: the user's model at ``path`` first, then the synthetic bench
    models (the quick bench's with ``quick``), written into ``folder``.

    Raises:
        BenchCancelledError: ``cancel`` was set.
        OSError: the folder cannot be written.
    """
    synthetic = []
    for case in bench_cases(quick=quick):
        if cancel is not None and cancel.is_set():
            raise BenchCancelledError("the timing was stopped", fix="start it again when you like")
        written = write_synthetic(folder / f"{case.spec.name}.gguf", case.spec)
        synthetic.append(TimedModel(written, *case[1:]))
    return [TimedModel(path, BENCH_CTX, _FULL_PROMPT), *synthetic]


def calibration_from(
    profile: HardwareProfile,
    points: list[SpeedPoint],
    main: list[Measurement],
    model: str,
    *,
    quick: bool = False,
) -> Calibration:
    """The calibration the timed ``points`` give; ``main`` are the runs of the user's model
    (the first point), whose figures are kept as measured. ``quick``: the quick bench's points,
    whose fixed costs are the guess's (see fit_speed_model).

    Raises:
        ValueError: the points do not determine a speed model (see fit_speed_model).
    """
    fit = fit_speed_model(points, prior=guess_costs(profile) if quick else None)
    ratios = [p.prompt_ratio for p in points if p.prompt_ratio]
    prompt_ratio = float(np.exp(np.mean(np.log(ratios)))) if ratios else 1.0
    stream = cpu_stream_gbps(profile) * 1e9
    f16 = fit.seconds_per_byte.get("F16") or float(np.mean(list(fit.seconds_per_byte.values())))
    return Calibration(
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
        # F16's cost as a bandwidth efficiency: what an unmeasured term falls back to
        cpu_generation_efficiency=1 / (f16 * stream),
        cpu_prompt_efficiency=DEFAULT_CPU_PROMPT_EFFICIENCY * prompt_ratio,
        measured_generation_tps=1 / points[0].seconds_per_token,
        measured_prompt_tps=max(run.prompt_tps for run in main),
        measured_rss_growth_bytes=main[0].rss_growth_bytes,
        model=model,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        seconds_per_layer=fit.seconds_per_layer,
        points=len(points),
        seconds_per_byte=fit.seconds_per_byte,
        seconds_per_row=fit.seconds_per_row,
        seconds_per_attention=fit.seconds_per_attention,
        seconds_per_kv_byte=fit.seconds_per_kv_byte,
    )


def speed_points(
    profile: HardwareProfile, models: list[TimedModel], runs: list[list[Measurement]]
) -> list[SpeedPoint]:
    """One point per timed model, from its fastest run.

    Raises:
        GGUFError: a file is not a valid GGUF.
    """
    return [
        _point(model.path, profile, timed, with_prompt=model.prompt == _FULL_PROMPT)
        for model, timed in zip(models, runs, strict=True)
    ]


def save_measured(calibration: Calibration) -> Path:
    """Store ``calibration`` and its model's measured speed.

    Raises:
        OSError: the data folder cannot be written.
    """
    record_measured(
        calibration.model,
        generation_tps=calibration.measured_generation_tps,
        prompt_tps=calibration.measured_prompt_tps,
        cpu_brand=calibration.cpu_brand,
        physical_cores=calibration.physical_cores,
    )
    return save_calibration(calibration)


def calibrate(
    path: Path,
    *,
    report: Callable[[str], None] = lambda _: None,
    repeats: int = REPEATS,
    quick: bool = False,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> tuple[Calibration, Path]:
    """Time ``path`` and the synthetic bench models (the quick bench's with ``quick``) on the
    CPU, store the fitted speed model and this model's measured speed. One bench at a time
    runs on a machine (:func:`gbdesk.fit.calibration.bench_lock`); ``progress`` gets (models
    timed, models to time); setting ``cancel`` stops it within a tenth of a second and
    stores nothing.

    Raises:
        BenchBusyError: another bench is running on this machine.
        BenchCancelledError: ``cancel`` was set.
        GGUFError: the file is not a valid GGUF.
        GbdeskError: llama-cpp-python failed to load or run it.
        OSError: the calibration file cannot be written, or the bench models in the
            temporary folder.
    """
    from gbdesk.hardware.probe import probe

    profile = replace(probe(), gpus=())  # the bench runs on the CPU
    _read(path)  # a damaged or missing file is said before minutes of timing
    with bench_lock(), tempfile.TemporaryDirectory(prefix="gbdesk-bench-") as folder:
        types = QUICK_TYPES if quick else MEASURED_TYPES
        report(f"writing the bench models ({', '.join(types)})...")
        models = bench_models(path, Path(folder), quick=quick, cancel=cancel)
        runs = time_in_turn(models, repeats, report, n_gen=N_GEN, cancel=cancel, progress=progress)
        points = speed_points(profile, models, runs)
        calibration = calibration_from(profile, points, runs[0], path.name, quick=quick)
        if cancel is not None and cancel.is_set():
            raise BenchCancelledError("the timing was stopped", fix="start it again when you like")
        return calibration, save_measured(calibration)
