"""The speed model's uncalibrated guess: what a first-time user sees before any bench.

The guess is a roofline of the CPU the probe saw (gbdesk.fit.speed.guess_costs): per-core
figures for each weight type, row and attention product, times the cores, never faster than
memory streams. The accuracy test times real models on this machine (the starter and synthetic
models of other architectures and weight types than the figures were measured on) and checks
the guess against them; it is an accuracy check, not a timed assertion: each model's fastest of
several runs counts (a shared machine only ever runs slower).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog, layout_from_gguf
from gbdesk.fit.measure import TimedModel, time_in_turn
from gbdesk.fit.speed import (
    WEIGHTS_PER_CYCLE,
    cpu_generation_seconds,
    guess_costs,
    seconds_per_byte,
)
from gbdesk.fit.synthetic import scaled, spec, write_synthetic
from gbdesk.gguf import read_gguf
from gbdesk.hardware.probe import probe
from gbdesk.hardware.profile import CpuInfo, HardwareProfile

GUESS_TARGET = 0.35


def _machine(cores: int, *, features: tuple[str, ...] = ("avx2", "fma"), brand: str = "Ryzen"):
    """This machine's profile with another CPU."""
    profile = replace(probe(), gpus=())
    cpu = CpuInfo(brand=brand, arch="x86_64", physical_cores=cores, logical_cores=2 * cores)
    return replace(profile, cpu=replace(cpu, features=features))


def _seconds(profile: HardwareProfile, mix: str, n_bytes: int = 10**9) -> float:
    return cpu_generation_seconds(
        profile,
        weight_bytes=n_bytes,
        weight_mix=((mix, 1.0),),
        rows=0,
        attention=0,
        kv_bytes=0,
        n_layers=0,
        calibration=None,
    )


def test_a_quantized_byte_costs_more_than_a_float_byte_on_few_cores() -> None:
    two = _machine(2)
    # unpacking is the limit: per byte Q4_1 and Q3_K cost well above F16 ...
    assert _seconds(two, "Q4_1") > 1.5 * _seconds(two, "F16")
    assert _seconds(two, "Q3_K") > 1.3 * _seconds(two, "F16")
    # ... and per weight fewer bits still cost less time
    assert _seconds(two, "Q4_K", 9 * 10**8) < _seconds(two, "F16", 32 * 10**8)
    # a type the table does not list is guessed like the K-quants per weight, never free
    assert _seconds(two, "IQ4_XS") > _seconds(two, "F16") > 0


def test_the_guess_scales_with_cores_until_memory_is_the_limit() -> None:
    one, two, many = _machine(1), _machine(2), _machine(64)
    # twice the cores: the compute half the time
    assert _seconds(two, "Q4_K") == pytest.approx(_seconds(one, "Q4_K") / 2)
    # 64 cores of a desktop's dual-channel memory: what the DRAM streams, whatever the type
    assert _seconds(many, "Q4_K") == pytest.approx(_seconds(many, "F16"))
    assert 20e9 < 1e9 / _seconds(many, "Q4_K") < 51.2e9  # bytes per second
    # a server's memory channels let the same cores go further
    server = _machine(64, brand="AMD EPYC 9654")
    assert _seconds(server, "Q4_K") < _seconds(many, "Q4_K") / 2
    # without 256-bit vectors (SSE only) each core does half
    narrow = _machine(2, features=("sse4_2",))
    assert _seconds(narrow, "Q4_K") == pytest.approx(2 * _seconds(two, "Q4_K"))


def test_the_fixed_costs_of_the_guess_shrink_with_cores() -> None:
    two, eight = guess_costs(_machine(2)), guess_costs(_machine(8))
    assert eight.per_row == pytest.approx(two.per_row / 4)
    assert eight.per_attention == pytest.approx(two.per_attention / 4)
    assert two.per_layer == eight.per_layer > 0  # thread barriers do not shrink


def test_a_calibration_judges_an_untimed_type_by_the_guess_ratios() -> None:
    """The quick bench times F16, Q8_0, Q6_K and Q4_K: Q2_K and Q5_K follow the guess's
    ratio to them, scaled by how far the timed types were from their guess."""
    cpu = probe().cpu
    calibration = Calibration(
        cpu_brand=cpu.brand,
        physical_cores=cpu.physical_cores,
        cpu_generation_efficiency=1.0,
        cpu_prompt_efficiency=0.3,
        measured_generation_tps=90.0,
        measured_prompt_tps=250.0,
        measured_rss_growth_bytes=0,
        model="m.gguf",
        created="2026-12-01T00:00:00+00:00",
        # every quantized type timed twice as slow per weight as the table says
        seconds_per_byte={
            name: 2 / (WEIGHTS_PER_CYCLE[name] * size)
            for name, size in (("Q4_K", 0.5625), ("Q6_K", 0.8203125), ("Q8_0", 1.0625))
        },
    )
    q2_k = seconds_per_byte("Q2_K", calibration)
    assert q2_k == pytest.approx(2 / (WEIGHTS_PER_CYCLE["Q2_K"] * 0.328125))


def test_catalogue_models_get_a_guess_between_physical_bounds() -> None:
    """Every catalogue quant on this machine: a guess, positive, and no faster than the
    memory could stream its weights even at a server's full bandwidth."""
    from gbdesk.catalog import load_catalog

    profile = replace(probe(), gpus=())
    for entry in load_catalog().entries:
        for quant in entry.quants:
            layout = layout_from_catalog(entry, quant)
            speed = estimate_fit(layout, profile).speed
            if not speed.generation_tps:
                continue
            assert speed.basis == "guess"
            assert 0 < speed.generation_tps < 460e9 / max(layout.active_bytes_per_token(), 1)


# Models the guess's figures were not measured on: the starter (real weights) and wider twins
# of other architectures (fused QKV, MoE with a latent cache, a 262k vocabulary, biases), in
# the catalogue's types and others; 50-150 MB each, more than a CPU's last-level cache.
_CASES = (
    ("qwen2", "Q4_K_M", 8),
    ("deepseek2-moe", "Q4_K_M", 8),
    ("gemma3-swa-262k", "F16", 4),
    ("phi2", "Q8_0", 4),
    ("glm4", "Q5_K", 8),
)
# Runs of every model, then more runs of any model measured slower than the guess allows, at
# most this many rounds: a shared machine only ever runs slower, so a slow run may be another
# program's doing, a fast one never is.
_RUNS = 2
_EXTRA_ROUNDS = 4


@pytest.mark.model
@pytest.mark.slow
def test_the_uncalibrated_guess_is_within_35_percent_of_measured_speed(
    tmp_path: Path, starter_model: Path
) -> None:
    profile = replace(probe(), gpus=())
    models = [TimedModel(starter_model, 8192, 512)]
    for name, weights, factor in _CASES:
        item = replace(scaled(spec(name), factor), weights=weights)
        path = write_synthetic(tmp_path / f"{item.name}-{weights}.gguf", item)
        models.append(TimedModel(path, item.n_ctx_train, 512))
    guesses = []
    for model in models:
        layout = layout_from_gguf(read_gguf(model.path), model.path.name)
        speed = estimate_fit(layout, profile, FitSettings(n_ctx=model.n_ctx)).speed
        assert speed.basis == "guess"
        guesses.append(speed.generation_tps)
    best = [max(r.generation_tps for r in runs) for runs in time_in_turn(models, _RUNS)]
    for _ in range(_EXTRA_ROUNDS):
        slow = [i for i, tps in enumerate(best) if guesses[i] > tps * (1 + GUESS_TARGET)]
        if not slow:
            break
        again = time_in_turn([models[i] for i in slow], 1)
        for i, runs in zip(slow, again, strict=True):
            best[i] = max(best[i], runs[0].generation_tps)
    report = ", ".join(
        f"{model.path.name}: {measured:.0f} measured / {guess:.0f} guessed"
        for model, measured, guess in zip(models, best, guesses, strict=True)
    )
    for measured, guess in zip(best, guesses, strict=True):
        assert abs(guess / measured - 1) <= GUESS_TARGET, report
