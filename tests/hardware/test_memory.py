"""Memory and disk: psutil's values against /proc/meminfo, and the low-disk findings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gbdesk.hardware.memory import GIB, disk_diagnostics, probe_disk, probe_memory
from gbdesk.hardware.profile import DiskInfo


def _meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) * 1024  # kB
    return values


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc")
def test_memory_matches_proc_meminfo() -> None:
    meminfo = _meminfo()
    memory = probe_memory()
    assert memory.total_bytes == meminfo["MemTotal"]
    assert memory.swap_total_bytes == meminfo["SwapTotal"]
    # Available moves between the two reads; other processes run on this machine too.
    assert abs(memory.available_bytes - meminfo["MemAvailable"]) < 512 * 1024**2
    assert 0 < memory.available_bytes <= memory.total_bytes


def test_disk_is_measured_at_the_nearest_existing_folder(tmp_path: Path) -> None:
    disk = probe_disk(tmp_path / "models" / "not-yet")
    usage = shutil.disk_usage(tmp_path)
    assert disk.path == str(tmp_path / "models" / "not-yet")
    assert disk.total_bytes == usage.total
    assert abs(disk.free_bytes - usage.free) < 256 * 1024**2


@pytest.mark.parametrize(
    ("free_gib", "expected"),
    [(1.5, ["disk-full"]), (6, ["disk-low"]), (40, [])],
)
def test_low_disk_findings(free_gib: float, expected: list[str]) -> None:
    disk = DiskInfo(path="/models", total_bytes=500 * GIB, free_bytes=int(free_gib * GIB))
    found = disk_diagnostics(disk)
    assert [d.code for d in found] == expected
    for diagnostic in found:
        assert "/models" in diagnostic.message
        assert "GBDESK_MODELS_DIR" in diagnostic.fix
