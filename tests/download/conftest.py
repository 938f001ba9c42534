"""Fixtures of the download tests: the local Hub serving the real starter GGUF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gbdesk.download.hub import HubConfig, hub_cache_dir
from gbdesk.download.manager import DownloadManager
from tests.support.gguf_split import split_gguf
from tests.support.hub_server import HubServer, hub_server

__all__ = ["hub_server"]

REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPLIT_REPO = "test-org/SmolLM2-split-GGUF"


@pytest.fixture(scope="session")
def split_parts(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The starter model split in two llama.cpp-style parts."""
    return split_gguf(starter_model, tmp_path_factory.mktemp("split"), parts=2)


@pytest.fixture
def hub(hub_server: HubServer, starter_model: Path) -> HubServer:
    """The local Hub with the starter GGUF in REPO."""
    hub_server.add_file(REPO, FILENAME, starter_model)
    return hub_server


@pytest.fixture
def hub_config(hub_server: HubServer) -> HubConfig:
    return HubConfig(endpoint=hub_server.url, cache_dir=hub_cache_dir())


@pytest.fixture
def manager(hub_config: HubConfig) -> Iterator[DownloadManager]:
    with DownloadManager(hub=hub_config) as download_manager:
        yield download_manager
