"""Fixtures for the GGUF reader tests: small written models and a split starter model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gguf.builders import EVERY_VALUE_TYPE, write_small_model
from tests.support.gguf_split import split_gguf


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    """A tiny valid GGUF v3 with every value type and three tensors."""
    return write_small_model(tmp_path / "small.gguf", extra_kv=EVERY_VALUE_TYPE)


@pytest.fixture(scope="session")
def split_starter(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The starter model split into three parts, llama-gguf-split style."""
    return split_gguf(starter_model, tmp_path_factory.mktemp("split"), parts=3)
