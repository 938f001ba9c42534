"""Measured efficiency of this machine, written by `gbdesk bench` and read by the estimator.

The speed model predicts tokens/s from bandwidth and compute peaks times an efficiency factor.
A bench run measures the real tokens/s of the starter model and stores the factor that would
have predicted it, so later estimates for other models on this machine use the measured value.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbdesk.atomic import write_json_atomic
from gbdesk.errors import ConfigError
from gbdesk.paths import app_paths

FILE_NAME = "calibration.json"


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

    def matches(self, cpu_brand: str, physical_cores: int) -> bool:
        """Whether this calibration was measured on a machine with this CPU."""
        return self.cpu_brand == cpu_brand and self.physical_cores == physical_cores

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        if not all(isinstance(n, (int, float)) and n > 0 for n in numbers):
            raise ValueError("efficiencies must be positive numbers")
        return calibration
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the calibration file {path}: {exc}",
            fix="run `gbdesk bench` again, or delete the file",
        ) from exc


def save_calibration(calibration: Calibration, path: Path | None = None) -> Path:
    """Write the calibration atomically.

    Raises:
        OSError: the data folder cannot be written.
    """
    path = path or calibration_path()
    write_json_atomic(path, calibration.to_json())
    return path
