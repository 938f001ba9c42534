"""NVIDIA GPUs through NVML (the ``pynvml`` module of the nvidia-ml-py package).

Every NVML call can fail on its own: the library may be missing, the kernel driver may not be
loaded or may not match the library, one GPU may have fallen off the bus. Each failure becomes
less information plus a :class:`Diagnostic`; nothing escapes :func:`probe_nvidia`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from gbdesk.hardware.profile import Diagnostic, GpuInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

# NVML return codes (nvml.h), used where the error class tells what to do.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_CLOCK_MEM = 2


@dataclass
class NvidiaResult:
    gpus: list[GpuInfo] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _text(value: str | bytes) -> str:
    """NVML strings are bytes in older pynvml releases and str in newer ones."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def cuda_version_text(version: int) -> str:
    """NVML's CUDA driver version integer (12040) as ``12.4``."""
    return f"{version // 1000}.{version % 1000 // 10}" if version > 0 else ""


def _init_diagnostic(error: Exception, nvidia_visible: bool) -> Diagnostic | None:
    code = getattr(error, "value", None)
    if code == NVML_ERROR_LIBRARY_NOT_FOUND:
        if not nvidia_visible:
            return None  # no NVIDIA GPU and no NVIDIA driver: nothing to report
        return Diagnostic(
            code="nvml-library-missing",
            level="error",
            message="an NVIDIA GPU is present but the NVIDIA driver's NVML library "
            "(libnvidia-ml) cannot be loaded, so its memory cannot be read",
            fix="install the NVIDIA driver for this GPU (on Ubuntu: "
            "`sudo ubuntu-drivers install`), then check that `nvidia-smi` works",
        )
    if code == NVML_ERROR_DRIVER_NOT_LOADED:
        return Diagnostic(
            code="nvidia-driver-not-loaded",
            level="error" if nvidia_visible else "warning",
            message="the NVIDIA kernel driver is not loaded, so no NVIDIA GPU can be used",
            fix="load it with `sudo modprobe nvidia` or reboot; if Secure Boot is on, enroll the "
            "driver's key; then check that `nvidia-smi` works",
        )
    if code == NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return Diagnostic(
            code="nvidia-driver-mismatch",
            level="error",
            message="the NVIDIA driver library and the loaded kernel module are different "
            "versions (usually after a driver update without a reboot)",
            fix="reboot, then check that `nvidia-smi` works",
        )
    return Diagnostic(
        code="nvml-init-failed",
        level="warning",
        message=f"NVML could not start: {error}",
        fix="check that `nvidia-smi` works; reinstall the NVIDIA driver if it does not",
    )


def _optional(call: Callable[[], T], default: T, nvml: ModuleType) -> T:
    """A detail some GPUs do not report (bus width on old cards): ``default`` on failure."""
    try:
        return call()
    except nvml.NVMLError as exc:
        if getattr(exc, "value", None) != NVML_ERROR_NOT_SUPPORTED:
            log.debug("optional NVML query failed: %s", exc)
        return default


def _read_device(nvml: Any, index: int, driver: str, cuda: str) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    capability = _optional(lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle), None, nvml)
    bus_id = _optional(lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId), "", nvml)
    return GpuInfo(
        vendor="nvidia",
        index=index,
        name=name,
        total_memory_bytes=int(memory.total),
        free_memory_bytes=int(memory.free),
        used_memory_bytes=int(memory.used),
        driver_version=driver,
        cuda_version=cuda,
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else "",
        memory_bus_width_bits=int(
            _optional(lambda: nvml.nvmlDeviceGetMemoryBusWidth(handle), 0, nvml)
        ),
        memory_clock_mhz=int(
            _optional(lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, NVML_CLOCK_MEM), 0, nvml)
        ),
        pci_bus_id=bus_id,
    )


def import_pynvml() -> ModuleType | None:
    """The ``pynvml`` module, or None when nvidia-ml-py is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def probe_nvidia(nvml: ModuleType | None, *, nvidia_visible: bool) -> NvidiaResult:
    """Every NVIDIA GPU NVML lists, each read on its own.

    Args:
        nvml: the ``pynvml`` module (tests pass a fake one), or None when it is not installed.
        nvidia_visible: the OS shows an NVIDIA device (decides whether a missing NVML matters).
    """
    result = NvidiaResult()
    if nvml is None:
        if nvidia_visible:
            result.diagnostics.append(
                Diagnostic(
                    code="nvml-python-missing",
                    level="error",
                    message="an NVIDIA GPU is present but the nvidia-ml-py package is missing, "
                    "so its memory cannot be read",
                    fix="pip install nvidia-ml-py",
                )
            )
        return result
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        diagnostic = _init_diagnostic(exc, nvidia_visible)
        if diagnostic:
            result.diagnostics.append(diagnostic)
        return result
    try:
        driver = _optional(lambda: _text(nvml.nvmlSystemGetDriverVersion()), "", nvml)
        cuda = cuda_version_text(_optional(nvml.nvmlSystemGetCudaDriverVersion, 0, nvml))
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            result.diagnostics.append(_init_diagnostic(exc, nvidia_visible) or _device_error(exc))
            return result
        for index in range(count):
            try:
                result.gpus.append(_read_device(nvml, index, driver, cuda))
            except nvml.NVMLError as exc:
                result.diagnostics.append(_device_error(exc, index))
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)
    return result


def _device_error(error: Exception, index: int | None = None) -> Diagnostic:
    which = f"NVIDIA GPU {index}" if index is not None else "the NVIDIA GPU list"
    return Diagnostic(
        code="nvidia-device-error",
        level="warning",
        message=f"{which} could not be read ({error}); it is left out",
        fix="run `nvidia-smi`; if it reports the GPU as lost or in error, reboot or reseat it",
    )
