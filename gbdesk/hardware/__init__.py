"""Hardware probe: CPU, memory, disk, NVIDIA (NVML), Apple Silicon, other GPUs, backend build."""

from gbdesk.hardware.profile import (
    BackendInfo,
    CpuInfo,
    Diagnostic,
    DiskInfo,
    GpuInfo,
    HardwareProfile,
    MemoryInfo,
)

__all__ = [
    "BackendInfo",
    "CpuInfo",
    "Diagnostic",
    "DiskInfo",
    "GpuInfo",
    "HardwareProfile",
    "MemoryInfo",
]
