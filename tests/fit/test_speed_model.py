"""The speed model's terms: weight types, rows, attention; how `gbdesk bench` fits them and
how the estimate uses them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gbdesk.errors import ConfigError
from gbdesk.fit import memory
from gbdesk.fit.bench import MEASURED_TYPES, SpeedPoint, bench_cases, fit_speed_model
from gbdesk.fit.calibration import Calibration, describe, load_calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog, layout_from_gguf
from gbdesk.fit.speed import cpu_generation_seconds, seconds_per_byte
from gbdesk.fit.synthetic import SyntheticSpec, scaled, spec, write_synthetic
from gbdesk.fit.weight_mix import mix_from_bytes, quant_weight_mix
from gbdesk.gguf import read_gguf
from gbdesk.hardware.probe import probe

# A machine the points below are made by.
MACHINE = {
    "per_layer": 20e-6,
    "per_row": 6e-9,
    "per_product": 90e-12,
    "per_kv_byte": 1 / 9e9,
    "F16": 1 / 40e9,
    "Q8_0": 1 / 33e9,
    "Q4_K": 1 / 25e9,
    "Q6_K": 1 / 30e9,
}


def _time(point: SpeedPoint) -> float:
    weights = sum(n * MACHINE[kind] for kind, n in point.bytes_by_type.items())
    return (
        point.n_layers * MACHINE["per_layer"]
        + point.rows * MACHINE["per_row"]
        + point.attention * MACHINE["per_product"]
        + point.kv_bytes * MACHINE["per_kv_byte"]
        + weights
    )


def _points() -> list[SpeedPoint]:
    shapes = [  # layers, {type: bytes}, rows, attention products, KV bytes
        ("deep", 24, {"F16": 10_000_000}, 40_000, 1_500_000, 3_000_000),
        ("kv", 4, {"F16": 10_000_000}, 9_000, 40_000_000, 38_000_000),
        ("kv-gqa", 4, {"F16": 9_000_000}, 8_000, 40_000_000, 5_000_000),
        ("rows", 1, {"F16": 134_000_000}, 524_000, 100_000, 100_000),
        ("wide-F16", 2, {"F16": 160_000_000}, 50_000, 4_000_000, 9_000_000),
        ("wide-Q8_0", 4, {"Q8_0": 165_000_000}, 100_000, 2_000_000, 6_000_000),
        ("wide-Q4_K", 7, {"Q4_K": 150_000_000}, 175_000, 3_500_000, 10_000_000),
        ("wide-Q6_K", 5, {"Q6_K": 160_000_000}, 125_000, 2_500_000, 7_000_000),
        ("mix", 30, {"Q4_K": 60_000_000, "Q6_K": 20_000_000}, 200_000, 9_000_000, 17_000_000),
    ]
    points = [
        SpeedPoint(n, layers, mix, 0.0, rows, att, kv) for n, layers, mix, rows, att, kv in shapes
    ]
    return [replace(p, seconds_per_token=_time(p)) for p in points]


def test_the_fit_recovers_every_term_of_the_machine() -> None:
    fit = fit_speed_model(_points())
    assert fit.seconds_per_layer == pytest.approx(MACHINE["per_layer"], rel=1e-6)
    assert fit.seconds_per_row == pytest.approx(MACHINE["per_row"], rel=1e-6)
    assert fit.seconds_per_attention == pytest.approx(MACHINE["per_product"], rel=1e-6)
    assert fit.seconds_per_kv_byte == pytest.approx(MACHINE["per_kv_byte"], rel=1e-6)
    for kind in ("F16", "Q8_0", "Q4_K", "Q6_K"):
        assert fit.seconds_per_byte[kind] == pytest.approx(MACHINE[kind], rel=1e-6)


def test_noise_that_makes_a_term_negative_leaves_it_out() -> None:
    points = _points()
    # The deep model measured far too fast: a per-layer cost below zero would explain it.
    points[0] = replace(points[0], seconds_per_token=points[0].seconds_per_token * 0.2)
    fit = fit_speed_model(points)
    assert fit.seconds_per_layer >= 0 and fit.seconds_per_row >= 0
    assert fit.seconds_per_attention >= 0 and fit.seconds_per_kv_byte >= 0
    assert all(cost > 0 for cost in fit.seconds_per_byte.values())
    with pytest.raises(ValueError, match="at least two"):
        fit_speed_model(points[:1])
    flat = [replace(p, seconds_per_token=1e-3) for p in points]  # time does not grow at all
    fit = fit_speed_model(flat)
    assert fit.seconds_per_byte and all(cost > 0 for cost in fit.seconds_per_byte.values())


def test_the_quick_fit_takes_the_fixed_costs_from_the_guess() -> None:
    from gbdesk.fit.speed import CpuCosts

    fixed = ("per_layer", "per_row", "per_product", "per_kv_byte")
    prior = CpuCosts(*(MACHINE[name] for name in fixed))
    quick = [p for p in _points() if p.name in {"rows", "wide-F16", "wide-Q8_0", "wide-Q4_K"}]
    fit = fit_speed_model(quick, prior=prior)
    assert fit.seconds_per_row == MACHINE["per_row"]  # the prior's, not fitted
    for kind in ("F16", "Q8_0", "Q4_K"):
        assert fit.seconds_per_byte[kind] == pytest.approx(MACHINE[kind], rel=1e-6)
    # a guess whose fixed costs would take more than a model's whole time leaves its types
    # a positive cost all the same
    heavy = CpuCosts(*(MACHINE[name] * 50 for name in fixed))
    assert all(cost > 0 for cost in fit_speed_model(quick, prior=heavy).seconds_per_byte.values())


def _calibration(**fields: object) -> Calibration:
    cpu = probe().cpu
    base = Calibration(
        cpu_brand=cpu.brand,
        physical_cores=cpu.physical_cores,
        cpu_generation_efficiency=1.0,
        cpu_prompt_efficiency=0.3,
        measured_generation_tps=90.0,
        measured_prompt_tps=250.0,
        measured_rss_growth_bytes=180 << 20,
        model="SmolLM2-135M-Instruct.Q4_1.gguf",
        created="2026-12-01T00:00:00+00:00",
        points=14,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_a_type_the_bench_did_not_time_is_judged_from_those_it_did() -> None:
    calibration = _calibration(
        seconds_per_byte={"F16": 1 / 40e9, "Q4_K": 1 / 20e9, "Q8_0": 1 / 34e9}
    )
    assert seconds_per_byte("Q4_K", calibration) == 1 / 20e9
    assert seconds_per_byte("BF16", calibration) == 1 / 40e9  # streamed like F16
    # IQ4_XS (4.25 bits) by the quantized types' mean cost per weight, not per byte
    per_weight = (1 / 20e9 * 0.5625 + 1 / 34e9 * 1.0625) / 2
    assert seconds_per_byte("IQ4_XS", calibration) == pytest.approx(per_weight / 0.53125)
    assert seconds_per_byte("Q4_K", _calibration()) is None  # a calibration of gbdesk 0.1


def test_the_estimate_weighs_each_type_by_the_models_mix() -> None:
    profile = replace(probe(), gpus=())
    calibration = _calibration(
        seconds_per_byte={"F16": 1e-11, "Q4_K": 4e-11, "Q6_K": 2e-11}, seconds_per_row=5e-9
    )
    common = {"weight_bytes": 10**8, "rows": 10**5, "attention": 0, "kv_bytes": 0, "n_layers": 4}
    mixed = cpu_generation_seconds(
        profile, weight_mix=(("Q4_K", 0.75), ("Q6_K", 0.25)), calibration=calibration, **common
    )
    assert mixed == pytest.approx(10**8 * (0.75 * 4e-11 + 0.25 * 2e-11) + 10**5 * 5e-9)
    f16 = cpu_generation_seconds(
        profile, weight_mix=(("F16", 1.0),), calibration=calibration, **common
    )
    assert f16 < mixed
    # Uncalibrated too, a type costs what unpacking it does (tests/fit/test_guess.py).
    guess = {"calibration": None, **common}
    assert cpu_generation_seconds(profile, weight_mix=(("F16", 1.0),), **guess) < (
        cpu_generation_seconds(profile, weight_mix=(("Q4_1", 1.0),), **guess)
    )


def test_quant_names_give_the_mixes_llama_cpp_writes() -> None:
    assert dict(quant_weight_mix("Q4_K_M")) == {"Q4_K": 0.74, "Q6_K": 0.26}
    assert dict(quant_weight_mix("q8_0")) == {"Q8_0": 1.0}
    assert quant_weight_mix("not-a-quant") == ()
    for name in ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M"):
        assert sum(share for _, share in quant_weight_mix(name)) == pytest.approx(1.0)
    assert mix_from_bytes({"Q4_K": 3.0, "Q6_K": 1.0, "F32": 0.0}) == (
        ("Q4_K", 0.75),
        ("Q6_K", 0.25),
    )
    assert mix_from_bytes({}) == ()
    catalogue = load_catalog_layout("llama-3.1-8b-instruct")
    assert dict(catalogue.weight_mix) == {"Q4_K": 0.74, "Q6_K": 0.26}


def load_catalog_layout(model_id: str):  # type: ignore[no-untyped-def]
    from gbdesk.catalog import load_catalog

    entry = load_catalog().require(model_id)
    quant = next(q for q in entry.quants if q.name == "Q4_K_M")
    return layout_from_catalog(entry, quant)


@pytest.mark.parametrize("weights", [*MEASURED_TYPES, "Q4_1", "Q4_K_M"])
def test_the_synthetic_writer_stores_each_type(tmp_path: Path, weights: str) -> None:
    item = replace(spec("llama"), weights=weights)
    meta = read_gguf(write_synthetic(tmp_path / "m.gguf", item))
    matrices = {t.name: t.type_name for t in meta.tensors if len(t.shape) > 1}
    if weights == "Q4_K_M":
        # llama.cpp's rule: the head and attn_v / ffn_down of "more bits" layers at Q6_K
        assert matrices["output.weight"] == "Q6_K" and matrices["blk.0.attn_q.weight"] == "Q4_K"
        assert {matrices[f"blk.{i}.ffn_down.weight"] for i in range(4)} == {"Q4_K", "Q6_K"}
    else:
        assert set(matrices.values()) == {weights}
    layout = layout_from_gguf(meta)
    assert sum(share for _, share in layout.weight_mix) == pytest.approx(1.0)


def test_a_row_the_type_cannot_divide_falls_back_like_llama_cpp(tmp_path: Path) -> None:
    narrow = SyntheticSpec("narrow", "llama", n_embd=128, n_ff=384, n_head=2, weights="Q4_K")
    meta = read_gguf(write_synthetic(tmp_path / "n.gguf", narrow))
    # 128-wide rows are not a whole 256-value K block: Q8_0, as llama.cpp's quantizer does
    assert meta.tensor("blk.0.attn_q.weight").type_name == "Q8_0"  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="no ggml type"):
        write_synthetic(tmp_path / "x.gguf", replace(narrow, weights="Q9_X"))


def test_rows_are_counted_from_the_header(tmp_path: Path) -> None:
    item = scaled(spec("phi3"), 2)  # fused QKV and gate+up: rows are not params / n_embd
    meta = read_gguf(write_synthetic(tmp_path / "p.gguf", item))
    layout = layout_from_gguf(meta)
    counted = sum(t.n_elements // t.shape[0] for t in meta.tensors if len(t.shape) > 1)
    counted -= meta.tensor("token_embd.weight").n_elements // item.n_embd  # type: ignore[union-attr]
    assert layout.weight_rows(layout.active_params_per_token()) == pytest.approx(counted, abs=1)


def test_attention_counts_query_heads_and_the_filled_cells() -> None:
    item = replace(spec("llama"), n_head=8, n_head_kv=1)
    from gbdesk.fit.layout import architecture_from_gguf

    with_gqa = architecture_from_gguf(_header(item))
    cells = memory.kv_cells(with_gqa, 4096, 1)
    # 8 query heads x (32 + 32) values x the filled cells, padded to 256
    assert memory.attention_products(with_gqa, cells, 0, filled=300) == 8 * 64 * 512
    # the bytes read are those of the one shared KV head
    assert memory.attended_kv_bytes(with_gqa, cells, 0, "f16", filled=300) == 64 * 512 * 2


def _header(item: SyntheticSpec):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return read_gguf(write_synthetic(Path(folder) / "h.gguf", item))


def test_the_bench_times_every_measured_type_and_shape() -> None:
    cases = bench_cases()
    timed = {case.spec.weights for case in cases}
    assert set(MEASURED_TYPES) <= timed
    names = {case.spec.name for case in cases}
    assert {"bench-deep", "bench-kv", "bench-kv-gqa", "bench-rows"} <= names
    assert all(case.prompt < case.n_ctx for case in cases)


def test_a_calibration_file_of_every_version_loads_and_a_bad_one_says_so(tmp_path: Path) -> None:
    old = _calibration().to_json()
    for field in (
        "seconds_per_byte",
        "seconds_per_row",
        "seconds_per_attention",
        "seconds_per_kv_byte",
    ):
        del old[field]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    loaded = load_calibration(path)
    assert loaded is not None and loaded.seconds_per_byte == {}
    profile = replace(probe(), gpus=())
    entry_layout = load_catalog_layout("llama-3.1-8b-instruct")
    assert estimate_fit(entry_layout, profile, FitSettings(), calibration=loaded).speed.calibrated
    for bad in (
        {"seconds_per_byte": {"Q4_K": -1}},
        {"seconds_per_byte": []},
        {"seconds_per_row": "fast"},
        {"seconds_per_byte": {"F16": 1e999}},  # json reads Infinity
        {"seconds_per_attention": True},
    ):
        path.write_text(json.dumps({**_calibration().to_json(), **bad}), encoding="utf-8")
        with pytest.raises(ConfigError, match="calibration"):
            load_calibration(path)
    full = _calibration(seconds_per_byte={"F16": 2.5e-11}, seconds_per_kv_byte=1e-10)
    assert "F16 40.0" in describe(full) and "KV cells at 10.0 GB/s" in describe(full)


def test_a_model_llama_cpp_cannot_run_is_one_sentence(tmp_path: Path) -> None:
    from gbdesk.errors import GbdeskError
    from gbdesk.fit.measure import measure

    path = write_synthetic(tmp_path / "cut.gguf", spec("llama"))
    with path.open("r+b") as handle:  # a download cut short: tensor data missing
        handle.truncate(path.stat().st_size // 2)
    with pytest.raises(GbdeskError) as caught:
        measure(path, 512, 1, n_gen=2)
    message = str(caught.value)
    assert message.startswith("llama.cpp could not run cut.gguf: ")
    assert "Traceback" not in message and 'File "' not in message
    assert "download it again" in caught.value.fix
