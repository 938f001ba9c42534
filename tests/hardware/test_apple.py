"""Apple Silicon from real-format sysctl and system_profiler outputs (an M2 Pro, 32 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gbdesk.hardware.apple import (
    memory_bandwidth_gbps,
    metal_working_set_limit,
    parse_displays,
)
from gbdesk.hardware.probe import ProbeSources, probe
from gbdesk.hardware.profile import BackendInfo

SAMPLES = Path(__file__).parent / "samples"
GIB = 1024**3
MIB = 1024**2
SYSCTL = (SAMPLES / "sysctl-m2-pro-32gb.txt").read_text()
DISPLAYS = (SAMPLES / "system_profiler-displays-m2-pro.json").read_text()
METAL_BUILD = BackendInfo(
    installed=True, version="0.3.36", gpu_offload=True, backends=("cpu", "blas", "metal")
)
CPU_BUILD = BackendInfo(installed=True, version="0.3.36", backends=("cpu",))


def _mac(tmp_path: Path, backend: BackendInfo, sysctl: str = SYSCTL) -> ProbeSources:
    return ProbeSources(
        system="Darwin", sysctl_output=sysctl, displays_json=DISPLAYS, backend=backend
    )


@pytest.mark.parametrize(
    ("memory_gib", "expected_bytes"),
    [
        (8, 8 * GIB * 2 // 3),
        (16, 16 * GIB * 2 // 3),  # llama.cpp logs 10922.67 MB on 16 GB Macs
        (36, 24 * GIB),
        (48, 36 * GIB),
        (64, 48 * GIB),
        (192, 144 * GIB),
    ],
)
def test_default_metal_limit_is_two_thirds_up_to_36_gib_then_three_quarters(
    memory_gib: int, expected_bytes: int
) -> None:
    assert metal_working_set_limit(memory_gib * GIB) == expected_bytes


def test_sixteen_gib_limit_matches_what_llama_cpp_logs() -> None:
    assert metal_working_set_limit(16 * GIB) / MIB == pytest.approx(10922.67, abs=0.01)


def test_wired_limit_sysctl_overrides_the_default() -> None:
    assert metal_working_set_limit(32 * GIB, wired_limit_mb=28_000) == 28_000 * MIB
    # A value above RAM cannot give the GPU more than there is.
    assert metal_working_set_limit(32 * GIB, wired_limit_mb=64_000) == 32 * GIB


def test_system_profiler_json_gives_gpu_cores() -> None:
    assert parse_displays(DISPLAYS) == [("Apple M2 Pro", 19)]


def test_m2_pro_profile_with_a_metal_build(tmp_path: Path) -> None:
    profile = probe(tmp_path, sources=_mac(tmp_path, METAL_BUILD))
    assert profile.os == "Darwin" and profile.os_version == "14.5"
    assert profile.cpu.brand == "Apple M2 Pro"
    assert (profile.cpu.performance_cores, profile.cpu.efficiency_cores) == (8, 4)
    (gpu,) = profile.gpus
    assert (gpu.vendor, gpu.name, gpu.gpu_cores) == ("apple", "Apple M2 Pro", 19)
    assert gpu.unified_memory and gpu.total_memory_bytes == 32 * GIB
    assert gpu.working_set_limit_bytes == 32 * GIB * 2 // 3
    assert gpu.usable_by_backend
    assert profile.total_gpu_memory_bytes == gpu.working_set_limit_bytes
    assert profile.memory.bandwidth_gbps == 200.0
    assert not [d for d in profile.diagnostics if d.code.startswith("apple")]


def test_wired_limit_in_sysctl_output_is_honoured(tmp_path: Path) -> None:
    sysctl = SYSCTL.replace("iogpu.wired_limit_mb: 0", "iogpu.wired_limit_mb: 26624")
    profile = probe(tmp_path, sources=_mac(tmp_path, METAL_BUILD, sysctl))
    assert profile.gpus[0].working_set_limit_bytes == 26624 * MIB


def test_apple_silicon_without_metal_build_says_how_to_rebuild(tmp_path: Path) -> None:
    profile = probe(tmp_path, sources=_mac(tmp_path, CPU_BUILD))
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "apple-gpu-unused"]
    assert "without Metal" in diagnostic.message
    assert diagnostic.fix.endswith(
        'CMAKE_ARGS="-DGGML_METAL=on -DGGML_RPC=ON" pip install --force-reinstall --no-cache-dir '
        "llama-cpp-python==0.3.36"
    )


def test_x86_python_under_rosetta_is_reported(tmp_path: Path) -> None:
    sysctl = SYSCTL.replace("sysctl.proc_translated: 0", "sysctl.proc_translated: 1")
    profile = probe(tmp_path, sources=_mac(tmp_path, CPU_BUILD, sysctl))
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "apple-x86-python"]
    assert diagnostic.level == "error"
    assert "arm64" in diagnostic.fix
    assert profile.gpus[0].vendor == "apple"  # the GPU is still found


def test_missing_sysctl_values_degrade_without_an_apple_gpu(tmp_path: Path) -> None:
    profile = probe(
        tmp_path, sources=ProbeSources(system="Darwin", sysctl_output="", backend=CPU_BUILD)
    )
    assert profile.gpus == ()
    assert profile.cpu.logical_cores >= 1


def test_broken_system_profiler_output_is_a_diagnostic(tmp_path: Path) -> None:
    sources = ProbeSources(
        system="Darwin", sysctl_output=SYSCTL, displays_json="{not json", backend=METAL_BUILD
    )
    profile = probe(tmp_path, sources=sources)
    assert "apple-gpu-probe-failed" in [d.code for d in profile.diagnostics]


def test_bandwidth_table() -> None:
    assert memory_bandwidth_gbps("Apple M4 Max", 40) == 546.0
    assert memory_bandwidth_gbps("Apple M4 Max", 32) == 410.0
    assert memory_bandwidth_gbps("Apple M1", 8) == 68.25
    assert memory_bandwidth_gbps("Apple M9", 8) == 0.0
