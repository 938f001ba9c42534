"""RAM, swap and free disk space where models are stored."""

from __future__ import annotations

from pathlib import Path

from gbdesk.hardware.profile import Diagnostic, DiskInfo, MemoryInfo

GIB = 1024**3
# Below this a single small quantised model (1-3B at Q4) plus its partial download does not fit.
DISK_CRITICAL_BYTES = 2 * GIB
# Below this most 7-8B quants (4-6 GiB) plus a second model or an update will not fit.
DISK_LOW_BYTES = 10 * GIB


def probe_memory() -> MemoryInfo:
    """RAM total and available, swap total and free (psutil)."""
    import psutil

    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryInfo(
        total_bytes=vm.total,
        available_bytes=vm.available,
        swap_total_bytes=swap.total,
        swap_free_bytes=swap.free,
    )


def probe_disk(path: Path) -> DiskInfo:
    """Free space on the file system that will hold ``path`` (its nearest existing parent).

    Raises:
        OSError: the file system cannot be queried.
    """
    import psutil

    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = psutil.disk_usage(str(existing))
    return DiskInfo(path=str(path), total_bytes=usage.total, free_bytes=usage.free)


def disk_diagnostics(disk: DiskInfo) -> list[Diagnostic]:
    """A finding when the models folder's file system is nearly full."""
    free_gib = disk.free_bytes / GIB
    if disk.free_bytes < DISK_CRITICAL_BYTES:
        return [
            Diagnostic(
                code="disk-full",
                level="error",
                message=(
                    f"only {free_gib:.1f} GiB is free where models are stored ({disk.path}): "
                    "not even a small model fits"
                ),
                fix="free some space, or choose a models folder on a larger disk in Settings "
                "(GBDESK_MODELS_DIR)",
            )
        ]
    if disk.free_bytes < DISK_LOW_BYTES:
        return [
            Diagnostic(
                code="disk-low",
                level="warning",
                message=(
                    f"only {free_gib:.1f} GiB is free where models are stored ({disk.path}): "
                    "enough for small models only"
                ),
                fix="free some space, or choose a models folder on a larger disk in Settings "
                "(GBDESK_MODELS_DIR)",
            )
        ]
    return []
