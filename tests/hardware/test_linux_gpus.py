"""AMD and Intel GPUs from a sysfs tree, and NVIDIA presence without NVML."""

from __future__ import annotations

from pathlib import Path

from gbdesk.hardware.linux_gpus import nvidia_device_visible, probe_drm_gpus
from gbdesk.hardware.probe import probe
from gbdesk.hardware.profile import BackendInfo
from tests.hardware.fakes import amd_and_intel_drm, linux_sources, nvidia_pci_device, write_files

CPU_BUILD = BackendInfo(installed=True, version="0.3.36", backends=("cpu",))
VULKAN_BUILD = BackendInfo(
    installed=True, version="0.3.36", gpu_offload=True, backends=("cpu", "vulkan")
)


def test_amdgpu_vram_and_intel_igpu_are_read(tmp_path: Path) -> None:
    amd_and_intel_drm(tmp_path)
    amd, intel = probe_drm_gpus(tmp_path)
    assert (amd.vendor, amd.index, amd.name) == ("amd", 0, "AMD GPU (PCI 1002:744c)")
    assert amd.total_memory_bytes == 25753026560
    assert amd.used_memory_bytes == 1073741824
    assert amd.free_memory_bytes == 25753026560 - 1073741824
    assert amd.pci_bus_id == "0000:03:00.0"
    assert (intel.vendor, intel.total_memory_bytes, intel.unified_memory) == ("intel", 0, True)


def test_product_name_is_preferred(tmp_path: Path) -> None:
    amd_and_intel_drm(tmp_path)
    write_files(tmp_path / "class/drm/card0/device", {"product_name": "Radeon RX 7900 XTX\n"})
    assert probe_drm_gpus(tmp_path)[0].name == "Radeon RX 7900 XTX"


def test_no_drm_folder_means_no_gpus(tmp_path: Path) -> None:
    assert probe_drm_gpus(tmp_path) == []


def test_nvidia_visibility(tmp_path: Path) -> None:
    sysfs, proc, wsl = tmp_path / "sys", tmp_path / "proc", tmp_path / "wsl"
    assert not nvidia_device_visible(sysfs, proc, wsl)
    # An NVIDIA audio function (class 0x0403) is not a GPU.
    write_files(sysfs / "bus/pci/devices/0000:01:00.1", {"vendor": "0x10de", "class": "0x040300"})
    assert not nvidia_device_visible(sysfs, proc, wsl)
    nvidia_pci_device(sysfs)
    assert nvidia_device_visible(sysfs, proc, wsl)
    assert nvidia_device_visible(tmp_path / "none", tmp_path / "none", _with_file(wsl))
    (proc / "driver" / "nvidia").mkdir(parents=True)
    assert nvidia_device_visible(tmp_path / "none", proc, tmp_path / "none")


def _with_file(wsl: Path) -> Path:
    write_files(wsl, {"libnvidia-ml.so.1": ""})
    return wsl


def test_amd_gpu_with_a_cpu_build_gets_a_note_and_advice(tmp_path: Path) -> None:
    sources = linux_sources(tmp_path, backend=CPU_BUILD)
    amd_and_intel_drm(sources.sysfs_root)
    profile = probe(tmp_path, sources=sources)
    assert profile.cpu.brand == "Intel(R) Core(TM) i5-7200U CPU @ 2.50GHz"
    amd = next(g for g in profile.gpus if g.vendor == "amd")
    assert not amd.usable_by_backend
    assert (
        amd.note
        == "not used: llama-cpp-python is built with cpu, this GPU needs ROCm/HIP or Vulkan"
    )
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "amd-gpu-unused"]
    assert diagnostic.level == "info"
    assert "built without ROCm/HIP or Vulkan (it has: cpu)" in diagnostic.message
    # The integrated Intel GPU gets a note but no advice: it is rarely faster than the CPU.
    intel = next(g for g in profile.gpus if g.vendor == "intel")
    assert intel.note.startswith("not used:")
    assert "intel-gpu-unused" not in [d.code for d in profile.diagnostics]
    assert 'CMAKE_ARGS="-DGGML_VULKAN=on -DGGML_RPC=ON"' in diagnostic.fix


def test_vulkan_build_uses_amd_and_intel(tmp_path: Path) -> None:
    sources = linux_sources(tmp_path, backend=VULKAN_BUILD)
    amd_and_intel_drm(sources.sysfs_root)
    profile = probe(tmp_path, sources=sources)
    assert [(g.vendor, g.usable_by_backend) for g in profile.gpus] == [
        ("amd", True),
        ("intel", True),
    ]
    assert profile.gpus[0].note == "used through Vulkan"
    assert not [d for d in profile.diagnostics if d.code.endswith("gpu-unused")]
