"""Use case: rank the catalogue for this machine with everything it knows (the wizard and the
CLI share it): the models already on disk (the starter, the model library), `gbdesk bench`'s
calibration and the speeds measured here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath

from gbdesk.download.hub import hub_endpoint, hub_reachable
from gbdesk.download.library import InstalledModel, ModelLibrary
from gbdesk.fit.calibration import Calibration
from gbdesk.fit.estimator import FitSettings
from gbdesk.fit.measured import MeasuredSpeed
from gbdesk.fit.recommend import (
    QUANT_QUALITY,
    Recommendation,
    rank_key,
    recommend,
    recommend_layout,
)
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.settings import load_settings
from gbdesk.starter import starter_model_path

log = logging.getLogger(__name__)


def recommend_here(
    profile: HardwareProfile,
    settings: FitSettings | None = None,
    *,
    use_case: str | None = None,
    online: bool | None = None,
) -> tuple[Recommendation, ...]:
    """The ranking for ``profile``: measured > calibrated > guess, what is on disk first when
    ``online`` is False (the Hub cannot be reached). ``online=None`` tests the Hub endpoint of
    the settings (see :func:`hub_is_reachable`).

    The model library is read once: a catalogue quant whose file it holds gets that file's
    ``path``; an installed model the catalogue does not know (imported, or downloaded from the
    Hub browser) is ranked too, from its own GGUF header, with ``on_disk`` and ``path`` set and
    the library id as ``model_id`` (its quality counts only the quant, so among equals the
    catalogue's models come first). A file whose header cannot be read is left out (logged).

    Raises:
        CatalogError: the user's catalogue file is invalid.
        ConfigError: the calibration or measured-speed file is damaged.
        LibraryError: the model library cannot be read.
        UsageError: the settings are out of range.
    """
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.measured import load_measured

    if online is None:
        online = hub_is_reachable()
    settings = settings or FitSettings()
    installed = {Path(model.path).name: model for model in ModelLibrary().list_models()}
    names = set(installed)
    starter = starter_model_path()
    if starter is not None:
        names.add(starter.name)
    catalog = load_catalog()
    calibration = load_calibration()
    measured = load_measured()
    ranking = [
        replace(rec, path=installed[rec.model_file].path) if rec.model_file in installed else rec
        for rec in recommend(
            catalog,
            profile,
            settings,
            use_case=use_case,
            calibration=calibration,
            measured=measured,
            on_disk=names,
            online=online,
        )
    ]
    known = {
        PurePosixPath(name).name
        for entry in catalog.entries
        for quant in entry.quants
        for name in quant.files
    }
    for name, model in installed.items():
        if name in known:
            continue
        rec = _installed_recommendation(model, profile, settings, calibration, measured)
        if rec is not None:
            ranking.append(rec)
    return tuple(sorted(ranking, key=lambda item: rank_key(item, online=online)))


def _installed_recommendation(
    model: InstalledModel,
    profile: HardwareProfile,
    settings: FitSettings,
    calibration: Calibration | None,
    measured: Mapping[str, MeasuredSpeed],
) -> Recommendation | None:
    from gbdesk.fit.layout import layout_from_gguf
    from gbdesk.gguf.local import read_gguf
    from gbdesk.gguf.model import GGUFError

    try:
        layout = layout_from_gguf(read_gguf(model.path), model.name)
    except GGUFError as exc:
        log.warning("%s is left out of the ranking: %s", model.id, exc.message)
        return None
    rec = recommend_layout(
        layout,
        profile,
        settings,
        model_id=model.id,
        model_name=model.name.removesuffix(".gguf"),
        quant=model.quant,
        quality=QUANT_QUALITY.get(model.quant.upper(), 0.0),
        model_file=Path(model.path).name,
        on_disk=True,
        calibration=calibration,
        measured=measured,
    )
    return replace(rec, path=model.path)


def hub_is_reachable(endpoint_setting: str | None = None) -> bool:
    """Whether the Hub (the ``hub_endpoint`` setting, else ``HF_ENDPOINT``, else
    huggingface.co) answers within 2 s; False in offline mode.

    Raises:
        ConfigError: the settings file is invalid (only read when no setting is passed).
    """
    if endpoint_setting is None:
        endpoint_setting = load_settings().hub_endpoint
    return hub_reachable(hub_endpoint(endpoint_setting))
