"""`gbdesk catalog refresh` against the local HF-compatible server (real HTTP, real GGUF)."""

from __future__ import annotations

import json

import pytest

from gbdesk.catalog import load_catalog, user_catalog_path
from gbdesk.cli import main
from gbdesk.starter import STARTER_FILE, STARTER_REPO
from tests.support.hub_server import HubServer, hub_server

__all__ = ["hub_server"]


def test_refresh_reads_sizes_and_headers(
    hub_server: HubServer, starter_model, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_server.add_file(STARTER_REPO, STARTER_FILE, starter_model)
    hub_server.add_file(STARTER_REPO, "README.md", b"# readme\n")
    # Pretend the catalogue had a wrong size, to see the refresh fix it.
    user_catalog_path().parent.mkdir(parents=True, exist_ok=True)
    user_catalog_path().write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "smollm2-135m-instruct",
                        "quants": [
                            {
                                "name": "Q4_1",
                                "files": [STARTER_FILE],
                                "size_bytes": 1,
                                "size_source": "estimate",
                            }
                        ],
                    }
                ]
            }
        )
    )
    assert main(["catalog", "refresh", STARTER_REPO]) == 0
    out = capsys.readouterr().out
    assert "Q4_1 size: 1 -> 98362432" in out
    entry = load_catalog().require("smollm2-135m-instruct")
    assert entry.quants[0].size_bytes == starter_model.stat().st_size
    assert entry.quants[0].size_source == "hub"
    assert entry.source_of("n_layers") == "gguf-header"
    assert entry.architecture.n_layers == 30
    # only the header was read, never the whole 98 MB file
    assert hub_server.bytes_sent(STARTER_REPO, STARTER_FILE) < 8 * (1 << 20)


def test_refresh_unknown_repo_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "refresh", "nobody/nothing"]) == 2
    assert "no catalogue entry" in capsys.readouterr().err
