"""Stand-ins for hardware this machine lacks: an NVML module and a sysfs tree.

The fake ``pynvml`` is built from the real one: its error classes (``NVMLError`` and the
per-code subclasses it generates), its constants and its ctypes structures are the real
objects; only the functions that would talk to a driver are replaced by ones that answer from
a list of :class:`FakeGpu`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pynvml as real_nvml

from gbdesk.hardware.probe import ProbeSources


@dataclass
class FakeGpu:
    """One GPU as NVML would describe it. ``name`` is bytes where old pynvml returns bytes."""

    name: str | bytes
    total: int
    used: int
    capability: tuple[int, int] = (8, 9)
    bus_width_bits: int = 384
    max_memory_clock_mhz: int = 10501
    bus_id: bytes = b"00000000:01:00.0"
    # An NVML error code every call about this device raises (a GPU fallen off the bus).
    error: int | None = None
    # An NVML error code only the bus-width query raises (older GPUs: NOT_SUPPORTED).
    bus_width_error: int | None = None


@dataclass
class FakeNvmlState:
    init_error: int | None = None
    shutdowns: int = 0
    calls: list[str] = field(default_factory=list)


def make_fake_nvml(
    gpus: list[FakeGpu],
    *,
    init_error: int | None = None,
    driver_version: str | bytes = "550.54.14",
    cuda_version: int = 12040,
) -> tuple[ModuleType, FakeNvmlState]:
    """A module with pynvml's API answering from ``gpus``, and its call record."""
    state = FakeNvmlState(init_error=init_error)
    module = ModuleType("pynvml")
    for name in dir(real_nvml):
        if name.startswith(("NVMLError", "NVML_")):
            setattr(module, name, getattr(real_nvml, name))
    module.c_nvmlMemory_t = real_nvml.c_nvmlMemory_t
    module.nvmlPciInfo_t = real_nvml.nvmlPciInfo_t

    def check(gpu: FakeGpu) -> None:
        if gpu.error is not None:
            raise real_nvml.NVMLError(gpu.error)

    def nvmlInit() -> None:
        state.calls.append("init")
        if state.init_error is not None:
            raise real_nvml.NVMLError(state.init_error)

    def nvmlShutdown() -> None:
        state.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:
        if index >= len(gpus):
            raise real_nvml.NVMLError(real_nvml.NVML_ERROR_INVALID_ARGUMENT)
        check(gpus[index])
        return gpus[index]

    def nvmlDeviceGetMemoryInfo(gpu: FakeGpu) -> real_nvml.c_nvmlMemory_t:
        check(gpu)
        return real_nvml.c_nvmlMemory_t(total=gpu.total, free=gpu.total - gpu.used, used=gpu.used)

    def nvmlDeviceGetPciInfo(gpu: FakeGpu) -> real_nvml.nvmlPciInfo_t:
        check(gpu)
        info = real_nvml.nvmlPciInfo_t()
        info.busId = gpu.bus_id
        return info

    def nvmlDeviceGetMemoryBusWidth(gpu: FakeGpu) -> int:
        check(gpu)
        if gpu.bus_width_error is not None:
            raise real_nvml.NVMLError(gpu.bus_width_error)
        return gpu.bus_width_bits

    def nvmlDeviceGetMaxClockInfo(gpu: FakeGpu, clock_type: int) -> int:
        check(gpu)
        assert clock_type == real_nvml.NVML_CLOCK_MEM
        return gpu.max_memory_clock_mhz

    def nvmlDeviceGetCudaComputeCapability(gpu: FakeGpu) -> tuple[int, int]:
        check(gpu)
        return gpu.capability

    def nvmlDeviceGetName(gpu: FakeGpu) -> str | bytes:
        check(gpu)
        return gpu.name

    module.nvmlInit = nvmlInit
    module.nvmlShutdown = nvmlShutdown
    module.nvmlSystemGetDriverVersion = lambda: driver_version
    module.nvmlSystemGetCudaDriverVersion = lambda: cuda_version
    module.nvmlDeviceGetCount = lambda: len(gpus)
    module.nvmlDeviceGetHandleByIndex = nvmlDeviceGetHandleByIndex
    module.nvmlDeviceGetName = nvmlDeviceGetName
    module.nvmlDeviceGetMemoryInfo = nvmlDeviceGetMemoryInfo
    module.nvmlDeviceGetPciInfo = nvmlDeviceGetPciInfo
    module.nvmlDeviceGetMemoryBusWidth = nvmlDeviceGetMemoryBusWidth
    module.nvmlDeviceGetMaxClockInfo = nvmlDeviceGetMaxClockInfo
    module.nvmlDeviceGetCudaComputeCapability = nvmlDeviceGetCudaComputeCapability
    return module, state


RTX_4090 = FakeGpu(name="NVIDIA GeForce RTX 4090", total=25_757_220_864, used=1_073_741_824)
RTX_3060 = FakeGpu(
    name=b"NVIDIA GeForce RTX 3060",
    total=12_884_901_888,
    used=268_435_456,
    capability=(8, 6),
    bus_width_bits=192,
    max_memory_clock_mhz=7501,
    bus_id=b"00000000:02:00.0",
)


def write_files(root: Path, files: dict[str, str]) -> None:
    """Create ``files`` (relative path -> content) under ``root``."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def nvidia_pci_device(sysfs: Path, slot: str = "0000:01:00.0") -> None:
    """An NVIDIA VGA controller in a fake ``/sys/bus/pci/devices``, as the kernel lists it."""
    write_files(
        sysfs / "bus" / "pci" / "devices" / slot,
        {"vendor": "0x10de\n", "device": "0x2684\n", "class": "0x030000\n"},
    )


def amd_and_intel_drm(sysfs: Path) -> None:
    """A Radeon RX 7900 XTX (amdgpu, 24 GiB) and an Intel iGPU under a fake ``/sys/class/drm``."""
    write_files(
        sysfs / "class" / "drm",
        {
            "card0/device/vendor": "0x1002\n",
            "card0/device/device": "0x744c\n",
            "card0/device/mem_info_vram_total": "25753026560\n",
            "card0/device/mem_info_vram_used": "1073741824\n",
            "card0/device/uevent": "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:744C\n"
            "PCI_SLOT_NAME=0000:03:00.0\n",
            "card0-DP-1/status": "connected\n",
            "card1/device/vendor": "0x8086\n",
            "card1/device/device": "0x4680\n",
            "card1/device/uevent": "DRIVER=i915\nPCI_SLOT_NAME=0000:00:02.0\n",
            "renderD128/dev": "226:128\n",
            "version": "drm 1.1.0 20060810\n",
        },
    )
    # A non-display vendor's card entry (a virtual display adapter) is skipped.
    write_files(sysfs / "class" / "drm", {"card2/device/vendor": "0x1af4\n"})


SAMPLES = Path(__file__).parent / "samples"


def linux_sources(tmp_path: Path, **overrides: object) -> ProbeSources:
    """Probe sources for a Linux machine whose /sys and /proc live under ``tmp_path``.

    ``/proc/cpuinfo`` is the i5-7200U sample; sysfs is empty until a test adds devices to
    ``tmp_path / "sys"``. Nothing of the real machine's GPUs leaks in.
    """
    write_files(tmp_path / "proc", {"cpuinfo": (SAMPLES / "cpuinfo-x86-i5-7200u.txt").read_text()})
    (tmp_path / "sys").mkdir(exist_ok=True)
    settings: dict = {
        "system": "Linux",
        "sysfs_root": tmp_path / "sys",
        "proc_root": tmp_path / "proc",
        "wsl_lib_dir": tmp_path / "wsl",
    }
    settings.update(overrides)
    return ProbeSources(**settings)
