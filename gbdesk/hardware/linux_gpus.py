"""GPUs Linux shows in sysfs: AMD (amdgpu VRAM figures), Intel, and whether NVIDIA is there.

NVML gives the NVIDIA details; sysfs tells whether an NVIDIA card is present at all, so that a
missing or broken NVML can be reported instead of silently showing no GPU. The sysfs and procfs
roots are parameters so tests build a fake tree in a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

from gbdesk.hardware.profile import GpuInfo

VENDOR_NVIDIA = "0x10de"
VENDOR_AMD = "0x1002"
VENDOR_INTEL = "0x8086"
_VENDOR_NAMES = {VENDOR_AMD: "amd", VENDOR_INTEL: "intel"}
# PCI class 0x03xxxx: display controller (VGA 0x0300, 3D 0x0302).
_DISPLAY_CLASS_PREFIX = "0x03"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _read_int(path: Path) -> int:
    text = _read(path)
    return int(text) if text.isdigit() else 0


def nvidia_device_visible(
    sysfs_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    wsl_lib_dir: Path = Path("/usr/lib/wsl/lib"),
) -> bool:
    """True when the kernel shows an NVIDIA display device, whether or not NVML works.

    ``/proc/driver/nvidia`` exists once the NVIDIA kernel driver is loaded; the PCI device
    list shows the card even when no driver is. WSL 2 shows neither: there the Windows driver
    puts its NVML library in ``/usr/lib/wsl/lib``.
    """
    if (proc_root / "driver" / "nvidia").is_dir():
        return True
    if (wsl_lib_dir / "libnvidia-ml.so.1").exists():
        return True
    devices = sysfs_root / "bus" / "pci" / "devices"
    try:
        entries = list(devices.iterdir())
    except OSError:
        return False
    return any(
        _read(d / "vendor") == VENDOR_NVIDIA
        and _read(d / "class").startswith(_DISPLAY_CLASS_PREFIX)
        for d in entries
    )


def _pci_slot(device_dir: Path) -> str:
    for line in _read(device_dir / "uevent").splitlines():
        if line.startswith("PCI_SLOT_NAME="):
            return line.split("=", 1)[1]
    return ""


def probe_drm_gpus(sysfs_root: Path = Path("/sys")) -> list[GpuInfo]:
    """AMD and Intel GPUs under ``/sys/class/drm/card*`` (NVIDIA is left to NVML).

    amdgpu reports VRAM in ``mem_info_vram_total`` / ``mem_info_vram_used`` (bytes); Intel's
    integrated GPUs have none of their own and share system RAM.
    """
    drm = sysfs_root / "class" / "drm"
    try:
        cards = sorted(
            (p for p in drm.iterdir() if p.name.startswith("card") and p.name[4:].isdigit()),
            key=lambda p: int(p.name[4:]),
        )
    except OSError:
        return []
    gpus: list[GpuInfo] = []
    for card in cards:
        device = card / "device"
        vendor = _VENDOR_NAMES.get(_read(device / "vendor"))
        if vendor is None:
            continue
        device_id = _read(device / "device").removeprefix("0x")
        vendor_id = _read(device / "vendor").removeprefix("0x")
        name = _read(device / "product_name") or (
            f"{vendor.upper() if vendor == 'amd' else 'Intel'} GPU (PCI {vendor_id}:{device_id})"
        )
        total = _read_int(device / "mem_info_vram_total")
        used = _read_int(device / "mem_info_vram_used")
        gpus.append(
            GpuInfo(
                vendor=vendor,
                index=sum(1 for g in gpus if g.vendor == vendor),
                name=name,
                total_memory_bytes=total,
                used_memory_bytes=used,
                free_memory_bytes=max(total - used, 0),
                pci_bus_id=_pci_slot(device),
                unified_memory=vendor == "intel" and total == 0,
            )
        )
    return gpus
