"""The human-readable summary `gbdesk probe` prints: one aligned section per part."""

from __future__ import annotations

import platform
import textwrap

from gbdesk.hardware.profile import GpuInfo, HardwareProfile

GIB = 1024**3
_LABEL_WIDTH = 13


def gib(size_bytes: int) -> str:
    """``size_bytes`` in GiB with one decimal (``15.6 GiB``)."""
    return f"{size_bytes / GIB:.1f} GiB"


def _section(label: str, lines: list[str]) -> list[str]:
    pad = " " * _LABEL_WIDTH
    return [f"{label:<{_LABEL_WIDTH}}{lines[0]}", *(pad + line for line in lines[1:])]


def _gpu_lines(gpu: GpuInfo) -> list[str]:
    head = f"[{gpu.vendor} {gpu.index}] {gpu.name}"
    if gpu.unified_memory and gpu.vendor == "apple":
        lines = [
            head,
            f"  {gpu.gpu_cores or '?'} GPU cores, unified memory {gib(gpu.total_memory_bytes)}, "
            f"Metal limit {gib(gpu.working_set_limit_bytes)}",
        ]
    else:
        memory = (
            f"  {gib(gpu.total_memory_bytes)} total, {gib(gpu.free_memory_bytes)} free"
            if gpu.total_memory_bytes
            else "  shares system RAM"
        )
        lines = [head, memory]
        details = []
        if gpu.compute_capability:
            details.append(f"compute {gpu.compute_capability}")
        if gpu.peak_bandwidth_gbps:
            details.append(f"{gpu.peak_bandwidth_gbps:.0f} GB/s peak")
        if gpu.driver_version:
            cuda = f", CUDA {gpu.cuda_version}" if gpu.cuda_version else ""
            details.append(f"driver {gpu.driver_version}{cuda}")
        if gpu.pci_bus_id:
            details.append(f"PCI {gpu.pci_bus_id}")
        if details:
            lines.append("  " + ", ".join(details))
    if gpu.note:
        lines.append(f"  {gpu.note}")
    return lines


def format_profile(profile: HardwareProfile) -> str:
    """The profile as aligned text sections, sizes in GiB, diagnostics with their fixes."""
    cpu, memory, disk, backend = profile.cpu, profile.memory, profile.disk, profile.backend
    out: list[str] = []
    out += _section(
        "System",
        [f"{profile.os} {profile.os_version} ({cpu.arch}), Python {platform.python_version()}"],
    )
    cores = f"{cpu.physical_cores} physical / {cpu.logical_cores} logical cores"
    if cpu.performance_cores or cpu.efficiency_cores:
        cores += f" ({cpu.performance_cores} performance + {cpu.efficiency_cores} efficiency)"
    out += _section(
        "CPU",
        [
            cpu.brand or "unknown",
            cores,
            *textwrap.wrap(
                "features: " + (" ".join(cpu.features) or "none found"),
                width=80 - _LABEL_WIDTH,
                subsequent_indent="  ",
            ),
        ],
    )
    memory_lines = [
        f"RAM {gib(memory.total_bytes)} total, {gib(memory.available_bytes)} available",
        f"swap {gib(memory.swap_total_bytes)} total, {gib(memory.swap_free_bytes)} free",
    ]
    if memory.bandwidth_gbps:
        memory_lines.append(f"bandwidth {memory.bandwidth_gbps:.0f} GB/s peak")
    out += _section("Memory", memory_lines)
    out += _section(
        "Disk", [f"{gib(disk.free_bytes)} free of {gib(disk.total_bytes)} at {disk.path}"]
    )
    gpu_lines = [line for gpu in profile.gpus for line in _gpu_lines(gpu)] or ["none found"]
    out += _section("GPUs", gpu_lines)
    if backend.installed:
        kind = "GPU offload" if backend.gpu_offload else "CPU only"
        backend_lines = [
            f"llama-cpp-python {backend.version}: {', '.join(backend.backends) or '?'} ({kind})"
        ]
        if backend.system_info:
            backend_lines.append(backend.system_info)
    else:
        backend_lines = ["llama-cpp-python not installed"]
    out += _section("Backend", backend_lines)
    if profile.diagnostics:
        lines = []
        for diagnostic in profile.diagnostics:
            # Messages wrap; fixes do not, so a command can be copied whole.
            lines += textwrap.wrap(
                f"[{diagnostic.level}] {diagnostic.message}",
                width=100 - _LABEL_WIDTH,
                subsequent_indent="  ",
            )
            if diagnostic.fix:
                lines.append(f"  fix: {diagnostic.fix}")
        out += _section("Diagnostics", lines)
    else:
        out += _section("Diagnostics", ["none"])
    return "\n".join(out)
