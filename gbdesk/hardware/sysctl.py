"""macOS ``sysctl``: read many values in one call and parse its ``name: value`` lines."""

from __future__ import annotations

import subprocess

# Everything the probe wants from macOS, asked for in one process. Names macOS does not know
# (iogpu.wired_limit_mb before Sonoma, hw.perflevel* on Intel) are reported on stderr and the
# others still print, so one unknown name never hides the rest.
SYSCTL_NAMES = (
    "kern.osproductversion",
    "machdep.cpu.brand_string",
    "hw.memsize",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.nperflevels",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
    "hw.optional",
    "iogpu.wired_limit_mb",
    "sysctl.proc_translated",
)


def parse_sysctl(text: str) -> dict[str, str]:
    """Turn ``sysctl`` output (``name: value`` per line) into a dict of strings."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name and " " not in name:
            values[name] = value.strip()
    return values


def sysctl_int(values: dict[str, str], name: str, default: int = 0) -> int:
    """An integer value, or ``default`` when it is missing or not a number."""
    try:
        return int(values[name])
    except (KeyError, ValueError):
        return default


def read_sysctl(names: tuple[str, ...] = SYSCTL_NAMES, *, timeout_s: float = 5.0) -> str:
    """Run ``/usr/sbin/sysctl`` for ``names`` and return its standard output.

    Raises:
        OSError: sysctl cannot be started.
        subprocess.TimeoutExpired: it did not answer within ``timeout_s``.
    """
    done = subprocess.run(
        ["/usr/sbin/sysctl", *names],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.stdout
