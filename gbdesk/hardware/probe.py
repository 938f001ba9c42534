"""Assemble a :class:`HardwareProfile` of this machine.

Every part is probed on its own and may fail on its own: a failure becomes less information
plus a diagnostic, never an exception out of :func:`probe`. What the probe reads from the
machine (the OS name, the sysfs and procfs roots, macOS command outputs, the NVML module, the
llama-cpp-python package) comes from a :class:`ProbeSources`, so tests can stand in for
machines we do not have with outputs in their real formats.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal, TypeVar

from gbdesk.hardware import apple, linux_gpus, nvidia
from gbdesk.hardware.advice import match_gpus_to_backend
from gbdesk.hardware.backend import load_backend_info, probe_backend
from gbdesk.hardware.cpu import probe_cpu
from gbdesk.hardware.memory import disk_diagnostics, probe_disk, probe_memory
from gbdesk.hardware.profile import (
    BackendInfo,
    CpuInfo,
    Diagnostic,
    DiskInfo,
    GpuInfo,
    HardwareProfile,
    MemoryInfo,
)
from gbdesk.hardware.sysctl import parse_sysctl, read_sysctl

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ProbeSources:
    """Where the probe reads the machine from. The defaults read this machine."""

    system: str = field(default_factory=platform.system)
    sysfs_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    wsl_lib_dir: Path = Path("/usr/lib/wsl/lib")
    # The pynvml module (tests pass a fake), None for "not installed", or "import" to import
    # it when an NVIDIA device may be there.
    nvml: ModuleType | Literal["import"] | None = "import"
    # macOS command outputs; None means "run the command".
    sysctl_output: str | None = None
    displays_json: str | None = None
    # llama-cpp-python: a BackendInfo to use as is, or None to probe the installed package.
    backend: BackendInfo | None = None


def _guarded(part: str, diagnostics: list[Diagnostic], fn: Callable[[], T], default: T) -> T:
    """Run one part of the probe; an unexpected failure becomes a diagnostic and ``default``."""
    try:
        return fn()
    except Exception as exc:  # the probe must never raise: report and carry on
        log.debug("the %s probe failed", part, exc_info=True)
        diagnostics.append(
            Diagnostic(
                code=f"{part.lower().replace(' ', '-')}-probe-failed",
                level="warning",
                message=f"the {part} could not be read ({type(exc).__name__}: {exc})",
                fix="run `gbdesk -v probe` and include its output when reporting this",
            )
        )
        return default


def _default_models_dir() -> Path:
    from gbdesk.paths import app_paths
    from gbdesk.settings import load_settings

    paths = app_paths()
    try:
        configured = load_settings(paths).models_dir
    except Exception:  # a broken settings file is reported by the commands that use it
        configured = ""
    return Path(configured).expanduser() if configured else paths.models_dir


def _probe_backend(sources: ProbeSources, load: bool, diagnostics: list[Diagnostic]) -> BackendInfo:
    if sources.backend is not None:
        return sources.backend
    from_files = _guarded("backend", diagnostics, probe_backend, BackendInfo(installed=False))
    if not load or not from_files.installed:
        return from_files
    loaded = _guarded("loaded backend", diagnostics, load_backend_info, from_files)
    if loaded.gpu_offload != from_files.gpu_offload:
        diagnostics.append(
            Diagnostic(
                code="backend-offload-mismatch",
                level="warning",
                message=(
                    f"llama-cpp-python's files name the backends {', '.join(from_files.backends)}"
                    f" but the loaded library reports GPU offload "
                    f"{'available' if loaded.gpu_offload else 'unavailable'}"
                ),
                fix="reinstall llama-cpp-python; check that the GPU runtime (CUDA, Vulkan) "
                "libraries it was built against are installed",
            )
        )
    return loaded


def _probe_apple(
    sources: ProbeSources, sysctl_values: dict[str, str], memory: MemoryInfo
) -> tuple[list[GpuInfo], MemoryInfo]:
    displays_json = sources.displays_json
    if displays_json is None:
        displays_json = apple.read_displays_json()
    displays = apple.parse_displays(displays_json) if displays_json.strip() else []
    gpu = apple.apple_gpu(sysctl_values, displays, memory.available_bytes)
    bandwidth = apple.memory_bandwidth_gbps(gpu.name, gpu.gpu_cores)
    if bandwidth:
        memory = dataclasses.replace(memory, bandwidth_gbps=bandwidth)
    return [gpu], memory


def _probe_gpus(
    sources: ProbeSources,
    sysctl_values: dict[str, str],
    memory: MemoryInfo,
    diagnostics: list[Diagnostic],
) -> tuple[list[GpuInfo], MemoryInfo]:
    """Every GPU: Apple's on a Mac, NVIDIA's through NVML, AMD's and Intel's from sysfs.

    Returns the memory too, because Apple Silicon's unified memory has a known bandwidth.
    """
    system = sources.system
    if system == "Darwin":
        if not apple.is_apple_silicon(sysctl_values):
            return [], memory
        return _guarded(
            "Apple GPU",
            diagnostics,
            lambda: _probe_apple(sources, sysctl_values, memory),
            (list[GpuInfo](), memory),
        )
    gpus: list[GpuInfo] = []
    visible = system == "Linux" and _guarded(
        "PCI device",
        diagnostics,
        lambda: linux_gpus.nvidia_device_visible(
            sources.sysfs_root, sources.proc_root, sources.wsl_lib_dir
        ),
        False,
    )
    # Linux shows whether an NVIDIA device is there: without one, NVML is not even imported
    # (tens of milliseconds). Windows does not tell, so NVML is always asked there.
    if sources.nvml != "import" or visible or system != "Linux":
        nvml = nvidia.import_pynvml() if sources.nvml == "import" else sources.nvml
        found = _guarded(
            "NVIDIA GPU",
            diagnostics,
            lambda: nvidia.probe_nvidia(nvml, nvidia_visible=visible),
            nvidia.NvidiaResult(),
        )
        gpus.extend(found.gpus)
        diagnostics.extend(found.diagnostics)
    if system == "Linux":
        drm = _guarded(
            "GPU",
            diagnostics,
            lambda: linux_gpus.probe_drm_gpus(sources.sysfs_root),
            list[GpuInfo](),
        )
        gpus.extend(drm)
    return gpus, memory


def probe(
    models_dir: Path | None = None,
    *,
    sources: ProbeSources | None = None,
    load_backend: bool = False,
) -> HardwareProfile:
    """Probe this machine. Never raises: failures become diagnostics.

    Args:
        models_dir: where models are stored (free disk is measured there); by default the
            ``models_dir`` setting or the data folder's ``models``.
        sources: where to read the machine from (tests); this machine when None.
        load_backend: also load llama-cpp-python and ask the library what it supports
            (half a second or more; the default tells the build from its files).
    """
    sources = sources or ProbeSources()
    system = sources.system
    diagnostics: list[Diagnostic] = []

    sysctl_values: dict[str, str] = {}
    if system == "Darwin":
        output = sources.sysctl_output
        if output is None:
            output = _guarded("sysctl", diagnostics, read_sysctl, "")
        sysctl_values = parse_sysctl(output)
        rosetta = apple.rosetta_diagnostic(sysctl_values)
        if rosetta:
            diagnostics.append(rosetta)

    logical = os.cpu_count() or 1
    cpu = _guarded(
        "CPU",
        diagnostics,
        lambda: probe_cpu(system, proc_root=str(sources.proc_root), sysctl_values=sysctl_values),
        CpuInfo(brand="", arch=platform.machine(), physical_cores=logical, logical_cores=logical),
    )
    memory = _guarded("memory", diagnostics, probe_memory, MemoryInfo(0, 0))
    disk_path = models_dir or _guarded("settings", diagnostics, _default_models_dir, Path.home())
    disk = _guarded(
        "disk", diagnostics, lambda: probe_disk(disk_path), DiskInfo(str(disk_path), 0, 0)
    )
    if disk.total_bytes:
        diagnostics.extend(disk_diagnostics(disk))

    gpus, memory = _probe_gpus(sources, sysctl_values, memory, diagnostics)
    backend = _probe_backend(sources, load_backend, diagnostics)
    gpus, advice = match_gpus_to_backend(gpus, backend, system)
    diagnostics.extend(advice)
    return HardwareProfile(
        os=system,
        os_version=_os_version(system, sysctl_values),
        cpu=cpu,
        memory=memory,
        disk=disk,
        gpus=tuple(gpus),
        backend=backend,
        diagnostics=tuple(diagnostics),
    )


def _os_version(system: str, sysctl_values: dict[str, str]) -> str:
    if system == "Darwin":
        return sysctl_values.get("kern.osproductversion") or platform.mac_ver()[0]
    return platform.release()
