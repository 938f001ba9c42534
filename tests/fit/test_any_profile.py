"""No traceback on any machine: generated profiles through recommend and plan, damaged hardware
files through the loader, and the recorded Mac outputs through probe -> recommend -> serve
sizing."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbdesk.catalog import load_catalog
from gbdesk.catalog.presets import load_hardware
from gbdesk.cli import main
from gbdesk.errors import UsageError
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog
from gbdesk.fit.recommend import recommend
from gbdesk.hardware.probe import ProbeSources, probe
from gbdesk.hardware.profile import (
    BackendInfo,
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HardwareProfile,
    MemoryInfo,
    ProfileFormatError,
)

GIB = 1 << 30
SAMPLES = Path(__file__).parents[1] / "hardware" / "samples"
CATALOG = load_catalog()

sizes = st.integers(min_value=0, max_value=1 << 42)
gpus = st.builds(
    GpuInfo,
    vendor=st.sampled_from(["nvidia", "apple", "amd", "intel", "other"]),
    index=st.integers(0, 7),
    name=st.sampled_from(
        [
            "NVIDIA GeForce RTX 3090",
            "NVIDIA H200",
            "Apple M3 Max",
            "AMD Radeon RX 7900 XTX",
            "Intel Arc A770",
            "",
            "Unknown GPU",
        ]
    ),
    total_memory_bytes=sizes,
    free_memory_bytes=sizes,
    memory_bus_width_bits=st.sampled_from([0, 64, 384]),
    memory_clock_mhz=st.sampled_from([0, 1, 10501]),
    unified_memory=st.booleans(),
    working_set_limit_bytes=sizes,
    usable_by_backend=st.booleans(),
)
profiles = st.builds(
    HardwareProfile,
    os=st.sampled_from(["Linux", "Darwin", "Windows", ""]),
    os_version=st.just(""),
    cpu=st.builds(
        CpuInfo,
        brand=st.text(max_size=20),
        arch=st.sampled_from(["x86_64", "arm64", "aarch64", "riscv64"]),
        physical_cores=st.integers(0, 256),
        logical_cores=st.integers(0, 512),
        features=st.lists(st.sampled_from(["avx2", "avx512f", "neon", "fma"])).map(tuple),
    ),
    memory=st.builds(
        MemoryInfo,
        total_bytes=sizes,
        available_bytes=sizes,
        bandwidth_gbps=st.sampled_from([0.0, 0.001, 51.2, 800.0]),
    ),
    disk=st.builds(DiskInfo, path=st.just("/"), total_bytes=sizes, free_bytes=sizes),
    gpus=st.lists(gpus, max_size=3).map(
        lambda items: tuple(replace(g, index=i) for i, g in enumerate(items))
    ),
    backend=st.builds(BackendInfo, installed=st.booleans(), gpu_offload=st.booleans()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profiles, n_ctx=st.sampled_from([1, 512, 4096, 200_000]), parallel=st.integers(1, 8))
def test_recommend_and_plan_give_a_verdict_on_any_profile(
    profile: HardwareProfile, n_ctx: int, parallel: int
) -> None:
    # The profile survives its own file format, checked field by field.
    assert HardwareProfile.from_json(json.loads(json.dumps(profile.to_json()))) == profile
    fit_settings = FitSettings(n_ctx=n_ctx, n_parallel=parallel)
    results = recommend(CATALOG, profile, fit_settings)
    chat_models = [e for e in CATALOG.entries if not e.is_embedding_model]
    assert len(results) == sum(len(e.quants) for e in chat_models)
    for item in results:
        speed = item.fit.speed
        assert math.isfinite(speed.generation_tps) and speed.generation_tps >= 0
        assert math.isfinite(speed.prompt_tps) and speed.prompt_tps >= 0
        assert item.reason and item.speed_basis in {"measured", "calibrated", "guess"}
        assert item.fit.verdict in {"full-gpu", "partial-gpu", "cpu-only", "does-not-fit"}
    # plan's arithmetic: every offload count of one model, as `gbdesk plan` tries each machine.
    entry = CATALOG.require("glm-4-9b-chat")
    layout = layout_from_catalog(entry, entry.quants[0])
    for gpu_layers in (0, entry.architecture.n_layers + 1, None):
        fit = estimate_fit(layout, profile, replace(fit_settings, gpu_layers=gpu_layers))
        assert math.isfinite(fit.speed.generation_tps)


costs = st.floats(min_value=1e-13, max_value=1e-6)
calibrations = st.fixed_dictionaries(
    {
        "seconds_per_byte": st.dictionaries(
            st.sampled_from(["F16", "F32", "Q8_0", "Q4_K", "Q6_K", "Q4_1", "IQ4_XS", "TYPE_99"]),
            costs,
            max_size=5,
        ),
        "seconds_per_layer": st.sampled_from([0.0, 3e-6, 1e-4]),
        "seconds_per_row": st.sampled_from([0.0, 8e-9]),
        "seconds_per_attention": st.sampled_from([0.0, 5e-11]),
        "seconds_per_kv_byte": st.sampled_from([0.0, 1e-10]),
        "cpu_generation_efficiency": st.floats(min_value=1e-3, max_value=10),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profiles, figures=calibrations)
def test_any_calibration_gives_finite_speeds(
    profile: HardwareProfile, figures: dict[str, Any]
) -> None:
    """A calibration of this profile's CPU with any measured types (or none, as gbdesk 0.1
    wrote them) and any terms left at 0 predicts a finite speed for every catalogue quant."""
    calibration = Calibration(
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
        cpu_prompt_efficiency=0.3,
        measured_generation_tps=90.0,
        measured_prompt_tps=250.0,
        measured_rss_growth_bytes=1 << 27,
        model="m.gguf",
        created="2026-12-01T00:00:00+00:00",
        **figures,
    )
    for item in recommend(CATALOG, profile, calibration=calibration):
        speed = item.fit.speed
        assert math.isfinite(speed.generation_tps) and speed.generation_tps >= 0
        assert item.speed_basis == "calibrated"


def _probe_json() -> dict[str, Any]:
    return probe().to_json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["cpu"].update(physical_cores="8"), "cpu.physical_cores must be a number"),
        (lambda d: d["cpu"].update(physical_cores=True), "cpu.physical_cores must be a number"),
        (lambda d: d["memory"].update(total_bytes=-1), "memory.total_bytes cannot be negative"),
        (lambda d: d["memory"].update(bandwidth_gbps=float("nan")), "finite number"),
        (lambda d: d.pop("memory"), "the 'memory' section is missing"),
        (lambda d: d["disk"].pop("free_bytes"), "the field disk.free_bytes is missing"),
        (lambda d: d.update(gpus=[{"vendor": "nvidia", "index": 0}]), "gpus[0].name is missing"),
        (lambda d: d.update(gpus={"vendor": "nvidia"}), "'gpus' must be a list"),
        (lambda d: d["cpu"].update(features="avx2"), "cpu.features must be a list of text"),
        (lambda d: d["cpu"].update(cores=4), "unknown field cpu.cores"),
        (lambda d: d.update(cpu=[]), "'cpu' must be an object"),
    ],
)
def test_a_damaged_hardware_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    data = _probe_json()
    change(data)
    with pytest.raises(ProfileFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HardwareProfile.from_json(data)
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="cannot read the hardware profile"):
        load_hardware(str(path))
    assert main(["recommend", "--hardware", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "fix:" in err


@pytest.mark.parametrize("vendor", ["nvidia", "amd", "intel", "apple"])
def test_a_gpu_missing_from_the_tables_without_bandwidth_gets_a_speed(vendor: str) -> None:
    gpu = GpuInfo(
        vendor=vendor,
        index=0,
        name=f"{vendor} future GPU 9000",
        total_memory_bytes=16 * GIB,
        free_memory_bytes=16 * GIB,
        unified_memory=vendor == "apple",
        working_set_limit_bytes=12 * GIB if vendor == "apple" else 0,
        usable_by_backend=True,
    )
    profile = replace(probe(), gpus=(gpu,), memory=replace(probe().memory, bandwidth_gbps=0.0))
    best = recommend(CATALOG, profile)[0]
    assert best.fit.verdict in {"full-gpu", "partial-gpu"}
    assert best.fit.speed.generation_tps > 0


SYSCTL = (SAMPLES / "sysctl-m2-pro-32gb.txt").read_text()
DISPLAYS = (SAMPLES / "system_profiler-displays-m2-pro.json").read_text()
METAL = BackendInfo(installed=True, version="0.3.36", gpu_offload=True, backends=("cpu", "metal"))


@pytest.mark.model
def test_recorded_mac_goes_through_probe_recommend_and_serve_sizing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    from gbdesk.backend.serve import ServeOptions, resolve_settings

    mac = probe(
        tmp_path,
        sources=ProbeSources(
            system="Darwin", sysctl_output=SYSCTL, displays_json=DISPLAYS, backend=METAL
        ),
    )
    (gpu,) = mac.gpus
    assert gpu.vendor == "apple" and gpu.peak_bandwidth_gbps == 0  # the probe cannot tell
    results = recommend(CATALOG, mac)
    assert results[0].runs_well and results[0].fit.verdict == "full-gpu"
    assert all(r.fit.speed.generation_tps > 0 for r in results if r.fit.runs)
    assert main(["recommend", "--hardware", _write(tmp_path, mac)]) == 0
    # serve sizing asks the probe for this machine: it gets the Mac.
    monkeypatch.setattr("gbdesk.hardware.probe.probe", lambda *a, **k: mac)
    resolved = resolve_settings(ServeOptions(model=str(starter_model)))
    assert resolved.gpu_layers == 31  # 30 layers and the output head on the Metal GPU
    assert resolved.n_ctx == 4096


def _write(folder: Path, profile: HardwareProfile) -> str:
    path = folder / "mac.json"
    path.write_text(json.dumps(profile.to_json()))
    return str(path)
