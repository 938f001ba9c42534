"""Tokens/s measured on this machine, per model file: once a model has run here, its own figure
replaces the prediction (the recommender shows it as "measured").

Stored in ``<data dir>/measured_speed.json`` as {file name: record}. A record is used only on
the machine it was measured on (same CPU brand and core count) and for the same placement
(layers on the GPU), since both change the speed.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbdesk.atomic import write_json_atomic
from gbdesk.errors import ConfigError
from gbdesk.paths import app_paths

FILE_NAME = "measured_speed.json"
# Single-sequence decode steps a served model needs before its speed is kept.
MIN_STEPS = 16


@dataclass(frozen=True)
class MeasuredSpeed:
    """One model timed on one machine."""

    model_file: str  # the GGUF's file name (the first part of a split model)
    generation_tps: float
    prompt_tps: float
    cpu_brand: str
    physical_cores: int
    gpu_layers: int
    created: str
    source: str = "bench"  # "bench" (gbdesk bench --model) or "serve" (the backend's figures)

    def matches(self, cpu_brand: str, physical_cores: int, gpu_layers: int) -> bool:
        return (
            self.cpu_brand == cpu_brand
            and self.physical_cores == physical_cores
            and self.gpu_layers == gpu_layers
        )


def measured_path() -> Path:
    return app_paths().data_dir / FILE_NAME


def load_measured(path: Path | None = None) -> dict[str, MeasuredSpeed]:
    """Every stored measurement by file name ({} when none).

    Raises:
        ConfigError: the file exists but is not one gbdesk wrote.
    """
    path = path or measured_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = {name: MeasuredSpeed(**item) for name, item in data.items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"cannot read the measured speeds in {path}: {exc}",
            fix="delete the file; models are timed again the next time they run",
        ) from exc
    for record in records.values():
        if not (record.generation_tps > 0 and record.prompt_tps >= 0):
            raise ConfigError(
                f"{path} holds a speed that is not positive for {record.model_file}",
                fix="delete the file; models are timed again the next time they run",
            )
    return records


def record_measured(
    model_file: str,
    *,
    generation_tps: float,
    prompt_tps: float,
    cpu_brand: str,
    physical_cores: int,
    gpu_layers: int = 0,
    source: str = "bench",
    path: Path | None = None,
) -> MeasuredSpeed:
    """Store (or replace) the measurement of ``model_file`` on this machine, atomically.

    Raises:
        ValueError: the speed is not positive.
        ConfigError: the existing file is damaged.
        OSError: the data folder cannot be written.
    """
    if not generation_tps > 0:
        raise ValueError(f"a measured speed must be positive, not {generation_tps}")
    path = path or measured_path()
    records = load_measured(path)
    record = MeasuredSpeed(
        model_file=Path(model_file).name,
        generation_tps=generation_tps,
        prompt_tps=prompt_tps,
        cpu_brand=cpu_brand,
        physical_cores=physical_cores,
        gpu_layers=gpu_layers,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        source=source,
    )
    records[record.model_file] = record
    data: dict[str, Any] = {name: dataclasses.asdict(item) for name, item in records.items()}
    write_json_atomic(path, data)
    return record
