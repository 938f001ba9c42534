"""NVIDIA through a fake pynvml built on the real module's error classes and structures."""

from __future__ import annotations

import sys
from pathlib import Path

import pynvml as real_nvml
import pytest

from gbdesk.hardware.nvidia import cuda_version_text, probe_nvidia
from gbdesk.hardware.probe import ProbeSources, probe
from gbdesk.hardware.profile import BackendInfo
from tests.hardware.fakes import (
    RTX_3060,
    RTX_4090,
    FakeGpu,
    linux_sources,
    make_fake_nvml,
    nvidia_pci_device,
)

CPU_BUILD = BackendInfo(installed=True, version="0.3.36", backends=("cpu",))
CUDA_BUILD = BackendInfo(
    installed=True, version="0.3.36", gpu_offload=True, backends=("cpu", "cuda")
)


def test_one_gpu_is_read_in_full() -> None:
    nvml, state = make_fake_nvml([RTX_4090])
    result = probe_nvidia(nvml, nvidia_visible=True)
    assert result.diagnostics == []
    (gpu,) = result.gpus
    assert (gpu.vendor, gpu.index, gpu.name) == ("nvidia", 0, "NVIDIA GeForce RTX 4090")
    assert gpu.total_memory_bytes == 25_757_220_864
    assert gpu.used_memory_bytes == 1_073_741_824
    assert gpu.free_memory_bytes == 25_757_220_864 - 1_073_741_824
    assert (gpu.driver_version, gpu.cuda_version) == ("550.54.14", "12.4")
    assert gpu.compute_capability == "8.9"
    assert (gpu.memory_bus_width_bits, gpu.memory_clock_mhz) == (384, 10501)
    assert gpu.peak_bandwidth_gbps == pytest.approx(1008.1, abs=0.1)  # the 4090's 1008 GB/s
    assert gpu.pci_bus_id == "00000000:01:00.0"
    assert state.shutdowns == 1


def test_two_gpus_are_listed_separately_and_bytes_names_are_decoded() -> None:
    nvml, _ = make_fake_nvml([RTX_4090, RTX_3060], driver_version=b"535.183.01")
    result = probe_nvidia(nvml, nvidia_visible=True)
    assert [(g.index, g.name) for g in result.gpus] == [
        (0, "NVIDIA GeForce RTX 4090"),
        (1, "NVIDIA GeForce RTX 3060"),
    ]
    assert {g.driver_version for g in result.gpus} == {"535.183.01"}
    assert result.gpus[1].pci_bus_id == "00000000:02:00.0"
    assert result.gpus[1].peak_bandwidth_gbps == pytest.approx(360.0, abs=0.1)


def test_a_device_that_raises_is_left_out_with_a_diagnostic() -> None:
    lost = FakeGpu(name="NVIDIA A100", total=1, used=0, error=real_nvml.NVML_ERROR_GPU_IS_LOST)
    nvml, state = make_fake_nvml([RTX_4090, lost])
    result = probe_nvidia(nvml, nvidia_visible=True)
    assert [g.name for g in result.gpus] == ["NVIDIA GeForce RTX 4090"]
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "nvidia-device-error"
    assert "NVIDIA GPU 1" in diagnostic.message and "GPU is lost" in diagnostic.message
    assert "nvidia-smi" in diagnostic.fix
    assert state.shutdowns == 1


def test_unsupported_details_are_left_empty_without_a_diagnostic() -> None:
    old = FakeGpu(
        name="Tesla K80",
        total=12 * 1024**3,
        used=0,
        bus_width_error=real_nvml.NVML_ERROR_NOT_SUPPORTED,
    )
    nvml, _ = make_fake_nvml([old])
    result = probe_nvidia(nvml, nvidia_visible=True)
    assert result.diagnostics == []
    assert result.gpus[0].memory_bus_width_bits == 0
    assert result.gpus[0].peak_bandwidth_gbps == 0.0


@pytest.mark.parametrize(
    ("error", "visible", "code"),
    [
        (real_nvml.NVML_ERROR_LIBRARY_NOT_FOUND, True, "nvml-library-missing"),
        (real_nvml.NVML_ERROR_LIBRARY_NOT_FOUND, False, None),
        (real_nvml.NVML_ERROR_DRIVER_NOT_LOADED, True, "nvidia-driver-not-loaded"),
        (real_nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, True, "nvidia-driver-mismatch"),
        (real_nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, False, "nvidia-driver-mismatch"),
        (real_nvml.NVML_ERROR_NO_PERMISSION, True, "nvml-init-failed"),
    ],
)
def test_init_errors_become_diagnostics(error: int, visible: bool, code: str | None) -> None:
    nvml, _ = make_fake_nvml([RTX_4090], init_error=error)
    result = probe_nvidia(nvml, nvidia_visible=visible)
    assert result.gpus == []
    assert [d.code for d in result.diagnostics] == ([code] if code else [])
    for diagnostic in result.diagnostics:
        assert diagnostic.fix


def test_the_real_pynvml_without_a_driver_reports_nothing_when_no_gpu_is_visible() -> None:
    # This machine has no NVIDIA driver: the real nvmlInit raises NVMLError_LibraryNotFound.
    result = probe_nvidia(real_nvml, nvidia_visible=False)
    assert (result.gpus, result.diagnostics) == ([], [])


def test_cuda_version_text() -> None:
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(11080) == "11.8"
    assert cuda_version_text(0) == ""


def test_nvml_not_installed_with_an_nvidia_card_in_sysfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    sources = linux_sources(tmp_path, backend=CPU_BUILD)
    nvidia_pci_device(sources.sysfs_root)
    profile = probe(tmp_path, sources=sources)
    codes = [d.code for d in profile.diagnostics]
    assert "nvml-python-missing" in codes
    assert profile.nvidia_gpus == ()


def test_cpu_only_build_with_an_nvidia_gpu_says_how_to_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed llama-cpp-python here is a real CPU build: the probe reads its files."""
    import importlib.metadata

    nvml, _ = make_fake_nvml([RTX_4090])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sources = linux_sources(tmp_path)
    nvidia_pci_device(sources.sysfs_root)
    profile = probe(tmp_path, sources=sources)
    version = importlib.metadata.version("llama-cpp-python")
    assert profile.backend.backends == ("cpu", "rpc")
    (gpu,) = profile.gpus
    assert not gpu.usable_by_backend
    assert "CUDA" in gpu.note
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "nvidia-gpu-unused"]
    assert diagnostic.level == "error"
    assert "NVIDIA GeForce RTX 4090" in diagnostic.message
    assert "built without CUDA" in diagnostic.message
    assert diagnostic.fix.endswith(
        'CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=ON" pip install --force-reinstall --no-cache-dir '
        f"llama-cpp-python=={version}"
    )
    assert profile.total_gpu_memory_bytes == 0


def test_cuda_build_uses_every_nvidia_gpu(tmp_path: Path) -> None:
    nvml, _ = make_fake_nvml([RTX_4090, RTX_3060])
    sources = linux_sources(tmp_path, nvml=nvml, backend=CUDA_BUILD)
    profile = probe(tmp_path, sources=sources)
    assert [g.usable_by_backend for g in profile.gpus] == [True, True]
    assert not [d for d in profile.diagnostics if d.code.startswith("nvidia")]
    assert profile.total_gpu_memory_bytes == sum(g.free_memory_bytes for g in profile.gpus)


def test_windows_fix_uses_powershell_syntax(tmp_path: Path) -> None:
    nvml, _ = make_fake_nvml([RTX_3060])
    sources = ProbeSources(system="Windows", nvml=nvml, backend=CPU_BUILD)
    profile = probe(tmp_path, sources=sources)
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "nvidia-gpu-unused"]
    assert '$env:CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=ON"; pip install' in diagnostic.fix
