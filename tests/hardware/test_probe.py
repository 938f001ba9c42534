"""The whole probe: every part fails on its own, and the profile survives JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gbdesk.hardware.probe import probe
from gbdesk.hardware.profile import HardwareProfile
from tests.hardware.fakes import (
    RTX_3060,
    RTX_4090,
    amd_and_intel_drm,
    linux_sources,
    make_fake_nvml,
)


def test_this_machine_probes_without_diagnostics_of_failure() -> None:
    profile = probe()
    assert profile.cpu.logical_cores >= 1
    assert profile.memory.total_bytes > 0
    assert profile.disk.total_bytes > 0
    assert profile.backend.installed
    assert not [d for d in profile.diagnostics if d.code.endswith("probe-failed")]


def test_a_missing_proc_cpuinfo_becomes_a_diagnostic(tmp_path: Path) -> None:
    sources = linux_sources(tmp_path, proc_root=tmp_path / "empty")
    profile = probe(tmp_path, sources=sources)
    (diagnostic,) = [d for d in profile.diagnostics if d.code == "cpu-probe-failed"]
    assert "FileNotFoundError" in diagnostic.message
    assert profile.cpu.logical_cores >= 1  # the fallback still counts cores


def test_an_nvml_that_raises_something_unexpected_becomes_a_diagnostic(tmp_path: Path) -> None:
    nvml, _ = make_fake_nvml([RTX_4090])

    def broken() -> int:
        raise RuntimeError("ctypes went wrong")

    nvml.nvmlDeviceGetCount = broken
    profile = probe(tmp_path, sources=linux_sources(tmp_path, nvml=nvml))
    assert "nvidia-gpu-probe-failed" in [d.code for d in profile.diagnostics]
    assert profile.gpus == ()


def test_probe_never_imports_qt_or_llama_cpp() -> None:
    import subprocess

    code = (
        "import sys; from gbdesk.hardware.probe import probe; probe(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'llama_cpp')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    nvml, _ = make_fake_nvml([RTX_4090, RTX_3060])
    sources = linux_sources(tmp_path, nvml=nvml)
    amd_and_intel_drm(sources.sysfs_root)
    profile = probe(tmp_path, sources=sources)
    assert len(profile.gpus) == 4
    text = json.dumps(profile.to_json())
    assert HardwareProfile.from_json(json.loads(text)) == profile


@pytest.mark.parametrize("field", ["os", "cpu", "memory", "disk", "gpus", "backend", "diagnostics"])
def test_json_has_the_documented_top_level_fields(field: str) -> None:
    assert field in probe().to_json()
