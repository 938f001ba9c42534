"""`gbdesk probe` and `gbdesk probe --json`: in a real child process and through cli.main."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from gbdesk import cli
from gbdesk.hardware.probe import probe
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.hardware.summary import format_profile
from tests.hardware.fakes import RTX_4090, amd_and_intel_drm, linux_sources, make_fake_nvml

REPO_ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("System", "CPU", "Memory", "Disk", "GPUs", "Backend", "Diagnostics")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gbdesk", "probe", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )


def test_human_summary_in_a_child_process() -> None:
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    starts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert starts == list(SECTIONS)
    physical = psutil.cpu_count(logical=False)
    assert f"{physical} physical / {os.cpu_count()} logical cores" in done.stdout
    total_gib = psutil.virtual_memory().total / 1024**3
    assert f"RAM {total_gib:.1f} GiB total" in done.stdout
    if not probe().gpus:
        assert "GPUs         none found" in done.stdout


def test_json_in_a_child_process_is_the_profile() -> None:
    done = _run("--json", "--models-dir", str(REPO_ROOT))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    profile = HardwareProfile.from_json(data)
    assert profile.cpu.logical_cores == os.cpu_count()
    assert profile.memory.total_bytes == psutil.virtual_memory().total
    assert profile.disk.path == str(REPO_ROOT)
    assert data["schema_version"] == 1
    assert data["source"] == "probe"


def test_cli_main_prints_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["probe", "--json", "--models-dir", str(tmp_path / "models")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["disk"]["path"] == str(tmp_path / "models")
    assert data["backend"]["backends"] == list(probe().backend.backends)


def test_cli_main_load_backend_adds_llama_cpp_system_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["probe", "--load-backend"]) == 0
    out = capsys.readouterr().out
    backend_line = next(line for line in out.splitlines() if line.startswith("Backend"))
    assert "llama-cpp-python" in backend_line
    assert "CPU : " in out


def test_summary_lists_gpus_and_diagnostics_with_fixes(tmp_path: Path) -> None:
    nvml, _ = make_fake_nvml([RTX_4090])
    sources = linux_sources(tmp_path, nvml=nvml)
    amd_and_intel_drm(sources.sysfs_root)
    text = format_profile(probe(tmp_path, sources=sources))
    assert "[nvidia 0] NVIDIA GeForce RTX 4090" in text
    assert "  24.0 GiB total, 23.0 GiB free" in text
    assert "compute 8.9, 1008 GB/s peak, driver 550.54.14, CUDA 12.4, PCI 00000000:01:00.0" in text
    assert "[amd 0] AMD GPU (PCI 1002:744c)" in text
    assert "[intel 0] Intel GPU (PCI 8086:4680)" in text
    assert "shares system RAM" in text
    assert "[error] an NVIDIA GPU is present (NVIDIA GeForce RTX 4090)" in text
    assert (
        '  fix: with the CUDA toolkit (nvcc) installed, run: CMAKE_ARGS="-DGGML_CUDA=on'
        ' -DGGML_RPC=ON"'
    ) in text
    # Every line after a section label is indented to the same column.
    for line in text.splitlines():
        label, value = line[:13], line[13:]
        assert label.rstrip() in {*SECTIONS, ""} and label.endswith(" ")
        assert value.strip()
