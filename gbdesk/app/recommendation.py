"""Use case: rank the catalogue for this machine with everything it knows (the wizard and the
CLI share it): the models already on disk (the starter, the model library), `gbdesk bench`'s
calibration and the speeds measured here."""

from __future__ import annotations

from pathlib import Path

from gbdesk.download.hub import hub_endpoint, hub_reachable
from gbdesk.download.library import ModelLibrary
from gbdesk.fit.estimator import FitSettings
from gbdesk.fit.recommend import Recommendation, recommend_for_machine
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.settings import load_settings
from gbdesk.starter import starter_model_path


def files_on_disk() -> set[str]:
    """File names of the GGUFs this machine holds: the starter and every installed model.

    Raises:
        LibraryError: the model library cannot be read.
    """
    names = {Path(model.path).name for model in ModelLibrary().list_models()}
    starter = starter_model_path()
    if starter is not None:
        names.add(starter.name)
    return names


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

    Raises:
        CatalogError: the user's catalogue file is invalid.
        ConfigError: the calibration or measured-speed file is damaged.
        LibraryError: the model library cannot be read.
        UsageError: the settings are out of range.
    """
    if online is None:
        online = hub_is_reachable()
    return recommend_for_machine(
        profile, settings, use_case=use_case, on_disk=files_on_disk(), online=online
    )


def hub_is_reachable(endpoint_setting: str | None = None) -> bool:
    """Whether the Hub (the ``hub_endpoint`` setting, else ``HF_ENDPOINT``, else
    huggingface.co) answers within 2 s; False in offline mode.

    Raises:
        ConfigError: the settings file is invalid (only read when no setting is passed).
    """
    if endpoint_setting is None:
        endpoint_setting = load_settings().hub_endpoint
    return hub_reachable(hub_endpoint(endpoint_setting))
