"""Fixtures of the fit tests: the synthetic models of every architecture, written once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.synthetic_gguf import write_all


@pytest.fixture(scope="session")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("synthetic"))
