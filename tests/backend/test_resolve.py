from __future__ import annotations

import pytest

from gbdesk.backend.errors import ModelLoadError
from gbdesk.backend.serve import resolve_model


def test_the_starter_model_resolves_by_its_catalogue_id(starter_model) -> None:
    assert resolve_model("smollm2-135m-instruct") == starter_model


def test_a_catalogue_quant_not_downloaded_says_how_to_get_it() -> None:
    with pytest.raises(ModelLoadError, match="not downloaded yet") as caught:
        resolve_model("llama-3.2-3b-instruct:Q4_K_M")
    assert caught.value.fix == "download it first: gbdesk download llama-3.2-3b-instruct:Q4_K_M"


def test_an_unknown_name_points_to_the_model_list() -> None:
    with pytest.raises(ModelLoadError, match="no model file") as caught:
        resolve_model("no-such-model")
    assert "gbdesk models list" in (caught.value.fix or "")
