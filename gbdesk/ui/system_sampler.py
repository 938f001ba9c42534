"""Samples of CPU, RAM and (NVIDIA) VRAM use for the dashboard's live charts.

Runs in a worker once a second. NVML is initialised once and kept; machines without an NVIDIA
GPU (or driver) simply have no VRAM series.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import psutil

_nvml_lock = threading.Lock()
_nvml: Any = None
_nvml_tried = False


@dataclass(frozen=True)
class SystemSample:
    cpu_percent: float
    ram_percent: float
    ram_used_bytes: int
    ram_total_bytes: int
    # None when no NVIDIA GPU is visible.
    vram_percent: float | None = None
    vram_used_bytes: int = 0
    vram_total_bytes: int = 0
    # The backend child's own share of all CPUs (None when it is not running).
    backend_cpu_percent: float | None = None


_processes: dict[int, psutil.Process] = {}


def process_cpu_percent(pid: int | None) -> float | None:
    """CPU use of process ``pid`` since the previous call, as a share of all CPUs (0-100)."""
    if pid is None:
        return None
    process = _processes.get(pid)
    try:
        if process is None:
            _processes.clear()  # one backend at a time: forget the previous one
            process = _processes[pid] = psutil.Process(pid)
        return process.cpu_percent(interval=None) / (psutil.cpu_count() or 1)
    except psutil.Error:  # it exited between two samples
        _processes.pop(pid, None)
        return None


def _nvml_module() -> Any:
    global _nvml, _nvml_tried  # noqa: PLW0603 - NVML is initialised once per process
    with _nvml_lock:
        if not _nvml_tried:
            _nvml_tried = True
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml = pynvml
            except Exception:  # no driver, no GPU, no library: no VRAM series
                _nvml = None
        return _nvml


def sample_system(backend_pid: int | None = None) -> SystemSample:
    """One sample; CPU use is measured since the previous call (the first returns 0)."""
    memory = psutil.virtual_memory()
    vram_used = vram_total = 0
    nvml = _nvml_module()
    if nvml is not None:
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                info = nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(index))
                vram_used += int(info.used)
                vram_total += int(info.total)
        except Exception:
            vram_total = 0
    return SystemSample(
        cpu_percent=psutil.cpu_percent(interval=None),
        ram_percent=memory.percent,
        ram_used_bytes=memory.total - memory.available,
        ram_total_bytes=memory.total,
        vram_percent=100 * vram_used / vram_total if vram_total else None,
        vram_used_bytes=vram_used,
        vram_total_bytes=vram_total,
        backend_cpu_percent=process_cpu_percent(backend_pid),
    )
