"""CPU: brand, cores and the instruction-set features llama.cpp's kernels use.

Parsing is done by pure functions fed with text (``/proc/cpuinfo``, ``sysctl`` output), so tests
feed them real outputs of machines we do not have. Feature names are the same on every OS:
the Linux x86 flag names (``sse3`` for ``pni``), and ``neon``, ``fp16``, ``dotprod``, ``i8mm``,
``sve``, ``sve2``, ``bf16``, ``sme`` on Arm.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Mapping
from typing import Any

from gbdesk.hardware.profile import CpuInfo
from gbdesk.hardware.sysctl import sysctl_int

# Linux /proc/cpuinfo flag -> canonical name, in the order they are reported.
_X86_FLAGS = {
    "pni": "sse3",
    "ssse3": "ssse3",
    "sse4_1": "sse4_1",
    "sse4_2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "bmi2": "bmi2",
    "avx_vnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512dq": "avx512dq",
    "avx512cd": "avx512cd",
    "avx512vbmi": "avx512_vbmi",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx512_fp16": "avx512_fp16",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}

# Linux aarch64 "Features" names -> canonical name.
_ARM_FLAGS = {
    "asimd": "neon",
    "asimdhp": "fp16",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "sve": "sve",
    "sve2": "sve2",
    "bf16": "bf16",
    "sme": "sme",
}

# macOS hw.optional.* -> canonical name (Apple Silicon and Intel Macs).
_MACOS_FLAGS = {
    "hw.optional.AdvSIMD": "neon",
    "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.sse3": "sse3",
    "hw.optional.supplementalsse3": "ssse3",
    "hw.optional.sse4_1": "sse4_1",
    "hw.optional.sse4_2": "sse4_2",
    "hw.optional.avx1_0": "avx",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma",
    "hw.optional.f16c": "f16c",
    "hw.optional.bmi2": "bmi2",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx512bw": "avx512bw",
    "hw.optional.avx512vl": "avx512vl",
    "hw.optional.avx512dq": "avx512dq",
    "hw.optional.avx512cd": "avx512cd",
    "hw.optional.avx512vbmi": "avx512_vbmi",
}

# Windows IsProcessorFeaturePresent constants (winnt.h) -> canonical name.
_WINDOWS_FEATURES = {
    13: "sse3",  # PF_SSE3_INSTRUCTIONS_AVAILABLE
    36: "ssse3",  # PF_SSSE3_INSTRUCTIONS_AVAILABLE
    37: "sse4_1",  # PF_SSE4_1_INSTRUCTIONS_AVAILABLE
    38: "sse4_2",  # PF_SSE4_2_INSTRUCTIONS_AVAILABLE
    39: "avx",  # PF_AVX_INSTRUCTIONS_AVAILABLE
    40: "avx2",  # PF_AVX2_INSTRUCTIONS_AVAILABLE
    41: "avx512f",  # PF_AVX512F_INSTRUCTIONS_AVAILABLE
    19: "neon",  # PF_ARM_NEON_INSTRUCTIONS_AVAILABLE
    43: "dotprod",  # PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
    46: "sve",  # PF_ARM_SVE_INSTRUCTIONS_AVAILABLE
    47: "sve2",  # PF_ARM_SVE2_INSTRUCTIONS_AVAILABLE
}

# /proc/cpuinfo on Arm names no model: "CPU implementer" and "CPU part" do.
_ARM_IMPLEMENTERS = {
    "0x41": "ARM",
    "0x42": "Broadcom",
    "0x48": "HiSilicon",
    "0x4e": "NVIDIA",
    "0x51": "Qualcomm",
    "0x61": "Apple",
    "0xc0": "Ampere",
}
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}


def _ordered(found: set[str], table: Mapping[Any, str]) -> tuple[str, ...]:
    """The canonical names in ``found``, in the table's order, without repeats."""
    return tuple(dict.fromkeys(name for name in table.values() if name in found))


def parse_proc_cpuinfo(text: str) -> tuple[str, tuple[str, ...], int, int]:
    """Brand, features, physical and logical core counts from Linux ``/proc/cpuinfo``.

    Physical cores count distinct (physical id, core id) pairs on x86; Arm lists no core ids,
    so there every processor is a core. Logical cores count the ``processor`` entries.
    """
    brand = ""
    flags: set[str] = set()
    implementer = part = ""
    logical = 0
    cores: set[tuple[str, str]] = set()
    physical_id = "0"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and not brand:
            brand = value
        elif key in {"flags", "Features"} and not flags:
            flags = set(value.split())
        elif key == "CPU implementer" and not implementer:
            implementer = value.lower()
        elif key == "CPU part" and not part:
            part = value.lower()
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
    if not brand and implementer:
        maker = _ARM_IMPLEMENTERS.get(implementer, f"implementer {implementer}")
        brand = f"{maker} {_ARM_PARTS.get(part, f'part {part}')}".strip()
    table = _X86_FLAGS if "avx" in flags or "sse2" in flags or "pni" in flags else _ARM_FLAGS
    features = _ordered({table[f] for f in flags if f in table}, table)
    physical = len(cores) or logical
    return brand, features, physical, logical


def cpu_from_sysctl(values: dict[str, str], arch: str) -> CpuInfo:
    """A :class:`CpuInfo` from parsed macOS ``sysctl`` values (see :mod:`.sysctl`)."""
    found = {name for key, name in _MACOS_FLAGS.items() if values.get(key) == "1"}
    logical = sysctl_int(values, "hw.logicalcpu", os.cpu_count() or 1)
    has_levels = sysctl_int(values, "hw.nperflevels") >= 2
    return CpuInfo(
        brand=values.get("machdep.cpu.brand_string", ""),
        arch=arch,
        physical_cores=sysctl_int(values, "hw.physicalcpu", logical),
        logical_cores=logical,
        features=_ordered(found, _MACOS_FLAGS),
        performance_cores=sysctl_int(values, "hw.perflevel0.physicalcpu") if has_levels else 0,
        efficiency_cores=sysctl_int(values, "hw.perflevel1.physicalcpu") if has_levels else 0,
    )


def windows_features(is_present: Callable[[int], bool]) -> tuple[str, ...]:
    """Feature names from Windows' ``IsProcessorFeaturePresent`` (passed in for tests)."""
    found = {name for code, name in _WINDOWS_FEATURES.items() if is_present(code)}
    return _ordered(found, _WINDOWS_FEATURES)


def _windows_cpu(arch: str, physical: int, logical: int) -> CpuInfo:
    if sys.platform != "win32":  # only called there; the test tells the type checker too
        raise OSError("the Windows registry exists only on Windows")
    import ctypes
    import winreg

    kernel32 = ctypes.windll.kernel32
    brand = platform.processor()
    try:
        key = winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
        )
        with key:
            brand = str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    except OSError:
        pass
    return CpuInfo(
        brand=brand,
        arch=arch,
        physical_cores=physical,
        logical_cores=logical,
        features=windows_features(lambda code: bool(kernel32.IsProcessorFeaturePresent(code))),
    )


def probe_cpu(
    system: str,
    *,
    proc_root: str = "/proc",
    sysctl_values: dict[str, str] | None = None,
) -> CpuInfo:
    """The CPU of this machine.

    Args:
        system: ``platform.system()`` (Linux, Darwin, Windows).
        proc_root: where ``cpuinfo`` lives on Linux (tests point it elsewhere).
        sysctl_values: parsed ``sysctl`` output on macOS.

    Raises:
        OSError: a system file cannot be read (the caller turns it into a diagnostic).
    """
    import psutil

    arch = platform.machine()
    logical = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    if system == "Darwin" and sysctl_values:
        return cpu_from_sysctl(sysctl_values, arch)
    if system == "Windows":
        return _windows_cpu(arch, physical, logical)
    if system == "Linux":
        with open(os.path.join(proc_root, "cpuinfo"), encoding="utf-8", errors="replace") as fh:
            brand, features, _, _ = parse_proc_cpuinfo(fh.read())
        return CpuInfo(
            brand=brand or platform.processor() or arch,
            arch=arch,
            physical_cores=physical,
            logical_cores=logical,
            features=features,
        )
    return CpuInfo(
        brand=platform.processor() or arch,
        arch=arch,
        physical_cores=physical,
        logical_cores=logical,
    )


def physical_cores() -> int:
    """llama.cpp's thread count for this machine: the physical cores (hyper-threads do not help).

    llama.cpp's own default (4 threads) oversubscribes a 2-core machine and runs several times
    slower there, so every place that starts llama.cpp passes this instead.
    """
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
