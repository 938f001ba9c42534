"""Measured figures of this machine, written by `gbdesk bench` and read by the estimator.

The speed model predicts a generated token's time from its costs per layer, per weight row, per
attention product and KV byte, and per byte of weights in each ggml type
(gbdesk.fit.speed.cpu_generation_seconds); a bench run times several models and stores the
figures that predict them, so later estimates for other models on this machine use measured
values instead of the defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbdesk.atomic import write_json_atomic
from gbdesk.errors import ConfigError, GbdeskError
from gbdesk.paths import app_paths

FILE_NAME = "calibration.json"
LOCK_NAME = "calibration.lock"


class BenchBusyError(GbdeskError):
    """Another bench (the app's first-run measurement or `gbdesk bench`) is timing this
    computer: two at once would each measure the other's load."""


@dataclass(frozen=True)
class Calibration:
    """Efficiency factors measured on one machine (identified by CPU brand and core count)."""

    cpu_brand: str
    physical_cores: int
    cpu_generation_efficiency: float
    cpu_prompt_efficiency: float
    measured_generation_tps: float
    measured_prompt_tps: float
    measured_rss_growth_bytes: int
    model: str
    created: str
    # The speed model's fixed costs (seconds per generated token), fitted from several models.
    seconds_per_layer: float = 0.0
    seconds_per_token: float = 0.0
    points: int = 1  # how many measured runs the fit rests on
    # Seconds one byte of weights of each measured ggml type costs a generated token on the
    # CPU ({"Q4_K": 9.4e-11, "F16": 3.7e-11, ...}); empty in files written before there
    # was a cost per type (one bandwidth efficiency for every type).
    seconds_per_byte: dict[str, float] = field(default_factory=dict)
    # Seconds per weight row read (a dot product's set-up), per attention multiply-add (a query
    # head x a KV cell x a dimension) and per byte of KV cells read; 0: not measured.
    seconds_per_row: float = 0.0
    seconds_per_attention: float = 0.0
    seconds_per_kv_byte: float = 0.0

    def matches(self, cpu_brand: str, physical_cores: int) -> bool:
        """Whether this calibration was measured on a machine with this CPU."""
        return self.cpu_brand == cpu_brand and self.physical_cores == physical_cores

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _number(value: object) -> bool:
    """A finite int or float (JSON has no other numbers; true/false are not figures)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def calibration_path() -> Path:
    return app_paths().data_dir / FILE_NAME


def load_calibration(path: Path | None = None) -> Calibration | None:
    """The stored calibration, or None when `gbdesk bench` has not run.

    Raises:
        ConfigError: the file exists but is not a calibration written by gbdesk.
    """
    path = path or calibration_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(Calibration)}
        if not isinstance(data, dict) or set(data) - known:
            raise ValueError("unexpected fields")
        calibration = Calibration(**data)
        numbers = (calibration.cpu_generation_efficiency, calibration.cpu_prompt_efficiency)
        if not all(_number(n) and n > 0 for n in numbers):
            raise ValueError("efficiencies must be positive numbers")
        costs = calibration.seconds_per_byte
        if not isinstance(costs, dict) or not all(
            isinstance(k, str) and _number(v) and v > 0 for k, v in costs.items()
        ):
            raise ValueError("seconds_per_byte must map type names to positive numbers")
        fixed = ("layer", "token", "row", "attention", "kv_byte")
        for name in (f"seconds_per_{term}" for term in fixed):
            value = getattr(calibration, name)
            if not _number(value) or value < 0:
                raise ValueError(f"{name} must be a number, 0 or more")
        return calibration
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the calibration file {path}: {exc}",
            fix="run `gbdesk bench` again, or delete the file",
        ) from exc


@contextlib.contextmanager
def bench_lock(folder: Path | None = None) -> Iterator[None]:
    """Hold the machine's bench lock (a lock file in the data folder) for the block.

    Raises:
        BenchBusyError: another process or thread holds it.
        OSError: the data folder cannot be written.
    """
    from filelock import FileLock, Timeout

    folder = folder or app_paths().data_dir
    folder.mkdir(parents=True, exist_ok=True)
    # A new FileLock each time: an OS lock on its own open file, so another thread of this
    # process finds it taken too, not only another process.
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BenchBusyError(
            "this computer is already being measured (by gbdesk's first-run measurement or "
            "another `gbdesk bench`)",
            fix="wait for it to finish (about a minute); its figures are used as soon as it ends",
        ) from None
    try:
        yield
    finally:
        lock.release()


def save_calibration(calibration: Calibration, path: Path | None = None) -> Path:
    """Write the calibration atomically.

    Raises:
        OSError: the data folder cannot be written.
    """
    path = path or calibration_path()
    write_json_atomic(path, calibration.to_json())
    return path


def describe(calibration: Calibration) -> str:
    """The fitted speed model in one line: the fixed cost and how fast each type streams."""
    parts = [f"{calibration.seconds_per_layer * 1e6:.0f} us per layer and token"]
    if calibration.seconds_per_byte:
        rates = ", ".join(
            f"{name} {1e-9 / cost:.1f}"
            for name, cost in sorted(calibration.seconds_per_byte.items(), key=lambda kv: kv[1])
        )
        parts.append(f"weights stream at (GB/s) {rates}")
    else:
        parts.append(f"bytes at {calibration.cpu_generation_efficiency:.3f} of the bandwidth peak")
    if calibration.seconds_per_row > 0:
        parts.append(f"{calibration.seconds_per_row * 1e9:.1f} ns per weight row")
    if calibration.seconds_per_attention > 0:
        parts.append(f"{calibration.seconds_per_attention * 1e12:.0f} ps per attention product")
    if calibration.seconds_per_kv_byte > 0:
        parts.append(f"KV cells at {1e-9 / calibration.seconds_per_kv_byte:.1f} GB/s")
    parts.append(f"prompt at {calibration.cpu_prompt_efficiency:.3f} of the compute peak")
    return "; ".join(parts)
