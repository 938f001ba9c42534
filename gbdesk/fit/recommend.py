"""Recommender: every catalogue model x quant on one machine, best quality that runs well first."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gbdesk.catalog.loader import Catalog
from gbdesk.catalog.model import EMBEDDINGS_USE_CASE, CatalogEntry, Quant
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import Fit, FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog
from gbdesk.hardware.profile import HardwareProfile

# Generation speed below which a model "runs" but not "well" (tokens/s, a reading pace).
RUNS_WELL_TPS = 5.0
# How much a quantization costs in quality, on the catalogue's quality-tier scale.
QUANT_QUALITY = {
    "Q2_K": -0.6,
    "Q3_K_M": -0.3,
    "Q4_0": -0.15,
    "Q4_1": -0.1,
    "Q4_K_M": 0.0,
    "Q5_K_M": 0.1,
    "Q6_K": 0.15,
    "Q8_0": 0.2,
    "F16": 0.25,
}


@dataclass(frozen=True)
class Recommendation:
    """One model x quant on one machine: the fit and a sentence that explains it."""

    model_id: str
    model_name: str
    quant: str
    quality: float
    runs_well: bool
    fit: Fit
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "quant": self.quant,
            "quality": round(self.quality, 2),
            "runs_well": self.runs_well,
            "reason": self.reason,
            "fit": self.fit.to_json(),
        }


def quality_score(entry: CatalogEntry, quant: Quant) -> float:
    return entry.quality_tier + QUANT_QUALITY.get(quant.name.upper(), 0.0)


def _sentence(fit: Fit, runs_well: bool) -> str:
    speed = f"~{fit.speed.generation_tps:.1f} tokens/s"
    if not fit.runs:
        return fit.reasons[0]
    text = f"{fit.reasons[0]}; {speed}"
    if not runs_well:
        text += f" (below {RUNS_WELL_TPS:g} tokens/s: slow)"
    if not fit.fits_disk:
        text += "; the download does not fit the free disk space"
    return text


def recommend(
    catalog: Catalog,
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    use_case: str | None = None,
    calibration: Calibration | None = None,
) -> tuple[Recommendation, ...]:
    """Rank every entry x quant for ``profile``.

    Order: runs well (best quality first, then faster), then runs slowly, then does not fit.

    Raises:
        UsageError: the settings are out of range.
    """
    settings = settings or FitSettings()
    results = []
    for entry in catalog.entries:
        if use_case and use_case not in entry.use_cases:
            continue
        if entry.is_embedding_model and use_case != EMBEDDINGS_USE_CASE:
            continue  # an embedding model answers no chat: only listed when asked for
        for quant in entry.quants:
            layout = layout_from_catalog(entry, quant)
            fit = estimate_fit(layout, profile, settings, calibration=calibration)
            fit = replace(fit, model=f"{entry.id}:{quant.name}")
            well = fit.runs and fit.fits_disk and fit.speed.generation_tps >= RUNS_WELL_TPS
            results.append(
                Recommendation(
                    model_id=entry.id,
                    model_name=entry.name,
                    quant=quant.name,
                    quality=quality_score(entry, quant),
                    runs_well=well,
                    fit=fit,
                    reason=_sentence(fit, well),
                )
            )

    def rank(item: Recommendation) -> tuple[int, float, float]:
        group = 0 if item.runs_well else 1 if item.fit.runs else 2
        return (group, -item.quality, -item.fit.speed.generation_tps)

    return tuple(sorted(results, key=rank))
