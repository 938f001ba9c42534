"""Recommender: every catalogue model x quant on one machine, best quality that runs well first.

A speed figure is trusted in this order: measured (the model ran here, `gbdesk.fit.measured`),
calibrated (the speed model with `gbdesk bench`'s figures), guess (the speed model's
defaults). The first pick runs well by a measured or calibrated figure where one exists, fits
the disk, and, when the Hub cannot be reached, is a model already on disk.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from gbdesk.catalog.loader import Catalog
from gbdesk.catalog.model import EMBEDDINGS_USE_CASE, CatalogEntry, Quant
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import Fit, FitSettings, estimate_fit
from gbdesk.fit.layout import ModelLayout, layout_from_catalog
from gbdesk.fit.measured import MeasuredSpeed
from gbdesk.fit.speed import SpeedEstimate
from gbdesk.hardware.profile import HardwareProfile

# Generation speed below which a model "runs" but not "well" (tokens/s, a reading pace).
RUNS_WELL_TPS = 5.0
# An uncalibrated guess must clear the bar by this factor: on this project's 2-core machine the
# guess was about 2x optimistic for the starter (99.6 predicted, 49.7 measured in the app).
GUESS_MARGIN = 2.0
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
    on_disk: bool = False
    model_file: str = ""
    path: str = ""  # the file to serve, when it is on disk and its place is known

    @property
    def speed_basis(self) -> str:
        """measured, calibrated or guess."""
        return self.fit.speed.basis

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "quant": self.quant,
            "quality": round(self.quality, 2),
            "runs_well": self.runs_well,
            "reason": self.reason,
            "speed_basis": self.speed_basis,
            "on_disk": self.on_disk,
            "fit": self.fit.to_json(),
        }


def quality_score(entry: CatalogEntry, quant: Quant) -> float:
    return entry.quality_tier + QUANT_QUALITY.get(quant.name.upper(), 0.0)


_BASIS_WORDS = {
    "measured": "measured here",
    "calibrated": "calibrated estimate",
    # Both faces show it: the app measures the computer by itself, the CLI says how below.
    "guess": "a guess until this computer is measured",
}
# Trust order of speed figures (lower ranks first).
BASIS_RANK = {"measured": 0, "calibrated": 1, "guess": 2}


def _sentence(fit: Fit, runs_well: bool, on_disk: bool) -> str:
    speed = f"~{fit.speed.generation_tps:.1f} tokens/s ({_BASIS_WORDS[fit.speed.basis]})"
    if not fit.runs:
        return fit.reasons[0]
    text = f"{fit.reasons[0]}; {speed}"
    if not runs_well and fit.speed.basis == "guess":
        text += (
            f"; may be slow: a guessed speed is often too high, so only a guess of "
            f"{RUNS_WELL_TPS * GUESS_MARGIN:g} tokens/s or more counts as running well "
            f"({RUNS_WELL_TPS:g} tokens/s is about reading speed)"
        )
    elif not runs_well:
        text += f"; slow: below {RUNS_WELL_TPS:g} tokens/s, slower than you read"
    if on_disk:
        text += "; already on disk"
    elif not fit.fits_disk:
        text += "; the download does not fit the free disk space"
    return text


def context_words(fit: Fit) -> str:
    """The longest chat that fits, in words: per chat, at most the length the model was
    trained on, and saying so when memory would hold longer chats."""
    if not fit.runs or fit.max_ctx <= 0:
        return "no context fits"
    per_chat = fit.max_ctx_per_chat
    text = f"context up to {per_chat:,} tokens per chat"
    if fit.longer_ctx_fits:
        text += (
            " (the length it was trained on; memory would hold longer chats, but answers "
            "may degrade past it)"
        )
    elif fit.n_ctx_train and per_chat >= fit.n_ctx_train:
        text += " (the length it was trained on)"
    return text


def _measured_speed(
    fit: Fit, record: MeasuredSpeed | None, profile: HardwareProfile
) -> SpeedEstimate | None:
    """The stored figure for this placement on this machine, if any."""
    if record is None or not fit.runs:
        return None
    if not record.matches(profile.cpu.brand, profile.cpu.physical_cores, fit.gpu_layers):
        return None
    return replace(
        fit.speed,
        generation_tps=record.generation_tps,
        prompt_tps=record.prompt_tps or fit.speed.prompt_tps,
        calibrated=True,
        basis="measured",
    )


def recommend(
    catalog: Catalog,
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    use_case: str | None = None,
    calibration: Calibration | None = None,
    measured: Mapping[str, MeasuredSpeed] | None = None,
    on_disk: Collection[str] = (),
    online: bool = True,
) -> tuple[Recommendation, ...]:
    """Rank every entry x quant for ``profile``.

    ``measured`` maps GGUF file names to speeds timed here; ``on_disk`` holds the file names
    already downloaded (or bundled, as the starter). Order: fits and runs well by a measured or
    calibrated figure; runs well by a guess (which must reach twice the bar, GUESS_MARGIN); runs
    slowly; does not fit. Offline (``online``
    False) what is on disk comes first within each group, and what is not cannot be fetched.
    Within a group: best quality first, then the more trusted figure, then faster; among the
    slow ones the fastest first (see :func:`rank_key`).

    Raises:
        UsageError: the settings are out of range.
    """
    settings = settings or FitSettings()
    disk_names = {PurePosixPath(name).name for name in on_disk}
    results = []
    for entry in catalog.entries:
        if use_case and use_case not in entry.use_cases:
            continue
        if entry.is_embedding_model and use_case != EMBEDDINGS_USE_CASE:
            continue  # an embedding model answers no chat: only listed when asked for
        for quant in entry.quants:
            model_file = PurePosixPath(quant.files[0]).name if quant.files else ""
            results.append(
                recommend_layout(
                    layout_from_catalog(entry, quant),
                    profile,
                    settings,
                    model_id=entry.id,
                    model_name=entry.name,
                    quant=quant.name,
                    quality=quality_score(entry, quant),
                    model_file=model_file,
                    on_disk=model_file in disk_names,
                    calibration=calibration,
                    measured=measured,
                )
            )
    return tuple(sorted(results, key=lambda item: rank_key(item, online=online)))


def recommend_layout(
    layout: ModelLayout,
    profile: HardwareProfile,
    settings: FitSettings,
    *,
    model_id: str,
    model_name: str,
    quant: str,
    quality: float,
    model_file: str,
    on_disk: bool,
    calibration: Calibration | None = None,
    measured: Mapping[str, MeasuredSpeed] | None = None,
) -> Recommendation:
    """One model's fit, speed (measured where ``measured`` has its file) and reason.

    Raises:
        UsageError: the settings are out of range.
    """
    fit = estimate_fit(layout, profile, settings, calibration=calibration)
    fit = replace(fit, model=f"{model_id}:{quant}")
    if on_disk:  # nothing to download
        fit = replace(fit, download_bytes=0)
    speed = _measured_speed(fit, (measured or {}).get(model_file), profile)
    if speed is not None:
        fit = replace(fit, speed=speed)
    bar = RUNS_WELL_TPS * (GUESS_MARGIN if fit.speed.basis == "guess" else 1.0)
    well = fit.runs and fit.fits_disk and fit.speed.generation_tps >= bar
    return Recommendation(
        model_id=model_id,
        model_name=model_name,
        quant=quant,
        quality=quality,
        runs_well=well,
        fit=fit,
        reason=_sentence(fit, well, on_disk),
        on_disk=on_disk,
        model_file=model_file,
    )


def rank_key(item: Recommendation, *, online: bool) -> tuple[int, int, float, int, float]:
    """The sort key of :func:`recommend`'s order (lower first).

    Among models that run well, the best quality comes first. Among those that run but slowly,
    the fastest comes first: at ~1 token/s a better model is not usable, while one at ~4.6 is
    (GLM-4-9B Q8_0 must not come before Llama 3.2 3B).
    """
    basis = BASIS_RANK[item.speed_basis]
    speed = item.fit.speed.generation_tps
    unreachable = 0 if online or item.on_disk else 1
    if item.runs_well:
        group = 0 if basis < BASIS_RANK["guess"] else 1
        return (unreachable, group, -item.quality, basis, -speed)
    if item.fit.runs:
        return (unreachable, 2, -speed, basis, -item.quality)
    return (unreachable, 3, -item.quality, basis, -speed)


def recommend_for_machine(
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    use_case: str | None = None,
    on_disk: Collection[str] = (),
    online: bool = True,
) -> tuple[Recommendation, ...]:
    """:func:`recommend` with what this machine has stored: the catalogue (user file included),
    `gbdesk bench`'s calibration and the speeds measured here. ``on_disk``: the GGUF file names
    already here (:func:`gbdesk.app.recommendation.recommend_here` adds the starter and the
    model library's files).

    Raises:
        CatalogError: the user's catalogue file is invalid.
        ConfigError: the calibration or measured-speed file is damaged.
        UsageError: the settings are out of range.
    """
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.measured import load_measured

    names = {PurePosixPath(name).name for name in on_disk}
    return recommend(
        load_catalog(),
        profile,
        settings,
        use_case=use_case,
        calibration=load_calibration(),
        measured=load_measured(),
        on_disk=names,
        online=online,
    )
