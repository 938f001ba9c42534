"""Small GGUF models of every catalogue architecture for tests (random weights, a few MB each).

The writer is gbdesk's own :mod:`gbdesk.fit.synthetic` (built on the ``gguf`` package's
GGUFWriter), so `gbdesk bench` and the tests time and measure the same files.
"""

from __future__ import annotations

from pathlib import Path

from gbdesk.fit.synthetic import SPECS, SyntheticSpec, write_synthetic

__all__ = ["SPECS", "SyntheticSpec", "write_all"]


def write_all(folder: Path) -> dict[str, Path]:
    """Every spec of :data:`SPECS` written under ``folder``, by spec name."""
    return {spec.name: write_synthetic(folder / f"{spec.name}.gguf", spec) for spec in SPECS}
