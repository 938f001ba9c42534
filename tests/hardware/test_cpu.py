"""CPU: /proc/cpuinfo and sysctl parsing on real outputs, and this machine's real values."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from gbdesk.hardware.cpu import (
    cpu_from_sysctl,
    parse_proc_cpuinfo,
    probe_cpu,
    windows_features,
)
from gbdesk.hardware.sysctl import parse_sysctl

SAMPLES = Path(__file__).parent / "samples"


def test_x86_cpuinfo_gives_brand_cores_and_features() -> None:
    text = (SAMPLES / "cpuinfo-x86-i5-7200u.txt").read_text()
    brand, features, physical, logical = parse_proc_cpuinfo(text)
    assert brand == "Intel(R) Core(TM) i5-7200U CPU @ 2.50GHz"
    assert (physical, logical) == (2, 4)
    assert features == ("sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")


def test_aarch64_cpuinfo_names_the_core_and_arm_features() -> None:
    text = (SAMPLES / "cpuinfo-aarch64-graviton3.txt").read_text()
    brand, features, physical, logical = parse_proc_cpuinfo(text)
    assert brand == "ARM Neoverse-V1"
    assert (physical, logical) == (4, 4)
    assert features == ("neon", "fp16", "dotprod", "i8mm", "sve", "bf16")


def test_unknown_arm_part_is_named_by_its_ids() -> None:
    text = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x99\nCPU part\t: 0x123\n"
    brand, features, _, _ = parse_proc_cpuinfo(text)
    assert brand == "implementer 0x99 part 0x123"
    assert features == ("neon",)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc")
def test_this_machine_matches_proc_cpuinfo_and_os_cpu_count() -> None:
    text = Path("/proc/cpuinfo").read_text()
    _, features, physical, logical = parse_proc_cpuinfo(text)
    cpu = probe_cpu("Linux")
    assert cpu.logical_cores == os.cpu_count() == logical
    assert cpu.physical_cores == psutil.cpu_count(logical=False) == physical
    flags = next(line for line in text.splitlines() if line.startswith(("flags", "Features")))
    assert ("avx2" in cpu.features) == (" avx2 " in flags + " ")
    assert cpu.features == features
    assert cpu.brand


def test_apple_m2_pro_sysctl_gives_performance_and_efficiency_cores() -> None:
    values = parse_sysctl((SAMPLES / "sysctl-m2-pro-32gb.txt").read_text())
    cpu = cpu_from_sysctl(values, "arm64")
    assert cpu.brand == "Apple M2 Pro"
    assert (cpu.physical_cores, cpu.logical_cores) == (12, 12)
    assert (cpu.performance_cores, cpu.efficiency_cores) == (8, 4)
    assert cpu.features == ("neon", "fp16", "dotprod", "i8mm", "bf16")  # FEAT_SME is 0


def test_intel_mac_sysctl_gives_x86_features_and_no_core_split() -> None:
    text = (
        "machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\n"
        "hw.physicalcpu: 8\nhw.logicalcpu: 16\n"
        "hw.optional.sse3: 1\nhw.optional.avx1_0: 1\nhw.optional.avx2_0: 1\n"
        "hw.optional.fma: 1\nhw.optional.f16c: 1\nhw.optional.avx512f: 0\n"
    )
    cpu = cpu_from_sysctl(parse_sysctl(text), "x86_64")
    assert (cpu.physical_cores, cpu.logical_cores) == (8, 16)
    assert (cpu.performance_cores, cpu.efficiency_cores) == (0, 0)
    assert cpu.features == ("sse3", "avx", "avx2", "fma", "f16c")


def test_windows_feature_codes_map_to_names() -> None:
    present = {13, 39, 40}  # PF_SSE3, PF_AVX, PF_AVX2
    assert windows_features(lambda code: code in present) == ("sse3", "avx", "avx2")
