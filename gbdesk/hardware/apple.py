"""Apple Silicon: chip, unified memory, GPU cores and Metal's working-set limit.

The limit. llama.cpp's Metal backend refuses (or slows to a crawl) past
``MTLDevice.recommendedMaxWorkingSetSize``, the part of unified memory macOS lets the GPU wire.
That value is only readable through Metal, so gbdesk computes it with the rule macOS follows:

* ``iogpu.wired_limit_mb`` set (non-zero, macOS 14+): that many MiB. Metal reports exactly this
  value once it is set.
* otherwise 2/3 of RAM on machines with at most 36 GiB, 3/4 above.

Evidence for the default: llama.cpp logs ``recommendedMaxWorkingSetSize = 10922.67 MB`` on 16 GiB
Macs (exactly 2/3; abetlen/llama-cpp-python#687) and about 48 GiB on 64 GiB Macs (3/4;
ggml-org/llama.cpp#1870). It is a lower bound on recent macOS for the largest machines
(107.5 GiB measured on a 128 GiB Mac on macOS 26, antirez/ds4#893), so gbdesk errs on the safe side.
"""

from __future__ import annotations

import json
import subprocess

from gbdesk.hardware.profile import Diagnostic, GpuInfo
from gbdesk.hardware.sysctl import sysctl_int

MIB = 1024**2
GIB = 1024**3
SMALL_MACHINE_LIMIT_BYTES = 36 * GIB

# Peak unified-memory bandwidth in GB/s from Apple's published specifications. Keyed by chip
# name; where the figure depends on the GPU configuration, by (chip, GPU cores).
_BANDWIDTH_GBPS: dict[str | tuple[str, int], float] = {
    "Apple M1": 68.25,
    "Apple M1 Pro": 200.0,
    "Apple M1 Max": 400.0,
    "Apple M1 Ultra": 800.0,
    "Apple M2": 100.0,
    "Apple M2 Pro": 200.0,
    "Apple M2 Max": 400.0,
    "Apple M2 Ultra": 800.0,
    "Apple M3": 100.0,
    "Apple M3 Pro": 150.0,
    ("Apple M3 Max", 30): 300.0,
    ("Apple M3 Max", 40): 400.0,
    "Apple M3 Ultra": 819.0,
    "Apple M4": 120.0,
    "Apple M4 Pro": 273.0,
    ("Apple M4 Max", 32): 410.0,
    ("Apple M4 Max", 40): 546.0,
}


def metal_working_set_limit(memory_bytes: int, wired_limit_mb: int = 0) -> int:
    """Bytes Metal lets the GPU use (see the module docstring for the rule and its sources)."""
    if wired_limit_mb > 0:
        return min(wired_limit_mb * MIB, memory_bytes)
    if memory_bytes <= SMALL_MACHINE_LIMIT_BYTES:
        return memory_bytes * 2 // 3
    return memory_bytes * 3 // 4


def memory_bandwidth_gbps(chip: str, gpu_cores: int) -> float:
    """Peak memory bandwidth of an Apple chip, 0.0 when it is not in the table."""
    return _BANDWIDTH_GBPS.get((chip, gpu_cores)) or _BANDWIDTH_GBPS.get(chip, 0.0)


def parse_displays(profiler_json: str) -> list[tuple[str, int]]:
    """(name, GPU cores) of each GPU in ``system_profiler SPDisplaysDataType -json`` output.

    Raises:
        ValueError: the text is not system_profiler's JSON.
    """
    data = json.loads(profiler_json)
    gpus: list[tuple[str, int]] = []
    for entry in data.get("SPDisplaysDataType", []):
        name = entry.get("sppci_model") or entry.get("_name") or ""
        cores = str(entry.get("sppci_cores", "0"))
        gpus.append((name, int(cores) if cores.isdigit() else 0))
    return gpus


def read_displays_json(*, timeout_s: float = 10.0) -> str:
    """Run ``system_profiler SPDisplaysDataType -json``.

    Raises:
        OSError: system_profiler cannot be started.
        subprocess.TimeoutExpired: it did not finish within ``timeout_s``.
    """
    done = subprocess.run(
        ["/usr/sbin/system_profiler", "SPDisplaysDataType", "-json"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.stdout


def is_apple_silicon(sysctl_values: dict[str, str]) -> bool:
    """True on an M-series Mac, also when this Python runs translated by Rosetta."""
    return (
        sysctl_values.get("hw.optional.arm64") == "1"
        or sysctl_values.get("sysctl.proc_translated") == "1"
    )


def apple_gpu(
    sysctl_values: dict[str, str], displays: list[tuple[str, int]], available_bytes: int
) -> GpuInfo:
    """The Apple Silicon GPU: chip name, cores, unified memory and Metal's limit."""
    memory = sysctl_int(sysctl_values, "hw.memsize")
    chip = sysctl_values.get("machdep.cpu.brand_string", "")
    apple = [d for d in displays if d[0].startswith("Apple")]
    name, cores = apple[0] if apple else (chip or "Apple GPU", 0)
    limit = metal_working_set_limit(memory, sysctl_int(sysctl_values, "iogpu.wired_limit_mb"))
    return GpuInfo(
        vendor="apple",
        index=0,
        name=name,
        total_memory_bytes=memory,
        free_memory_bytes=min(available_bytes, limit),
        used_memory_bytes=max(memory - available_bytes, 0),
        gpu_cores=cores,
        unified_memory=True,
        working_set_limit_bytes=limit,
    )


def rosetta_diagnostic(sysctl_values: dict[str, str]) -> Diagnostic | None:
    """A finding when this Python is an x86_64 build translated by Rosetta 2."""
    if sysctl_values.get("sysctl.proc_translated") != "1":
        return None
    return Diagnostic(
        code="apple-x86-python",
        level="error",
        message="this Python is an Intel (x86_64) build running under Rosetta on Apple Silicon: "
        "llama-cpp-python cannot use Metal and runs several times slower",
        fix="install an arm64 Python (the python.org installer or Homebrew in /opt/homebrew), "
        'then reinstall gbdesk with it; `python3 -c "import platform; '
        'print(platform.machine())"` must print arm64',
    )
