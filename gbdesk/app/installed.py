"""Use case: the models this computer can serve, as both faces list them: the model library
(downloads and imports), then the bundled starter model, which `gbdesk serve` and the app serve
when no model is set (so a list that left it out would say "no models" while it serves)."""

from __future__ import annotations

import os

from gbdesk.download.library import InstalledModel, ModelLibrary
from gbdesk.starter import STARTER_FILE, starter_model_path

STARTER_LIBRARY_ID = "starter"


def installed_models(library: ModelLibrary | None = None) -> list[InstalledModel]:
    """The library's models, then the bundled starter (id ``starter``, source ``bundled``) when
    it is installed and not already one of them.

    Raises:
        LibraryError: the model library cannot be read.
    """
    models = (library or ModelLibrary()).list_models()
    starter = starter_model_path()
    if starter is None:
        return models
    real = os.path.realpath(starter)
    if any(os.path.realpath(model.path) == real for model in models):
        return models
    bundled = InstalledModel(
        id=STARTER_LIBRARY_ID,
        name=f"{STARTER_FILE} (bundled starter)",
        path=str(starter),
        paths=(str(starter),),
        size=starter.stat().st_size,
        quant="Q4_1",
        source="bundled",
    )
    return [*models, bundled]
