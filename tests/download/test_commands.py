"""`gbdesk download` and `gbdesk models` through the real CLI entry point."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gbdesk.cli import main
from gbdesk.errors import ExitCode
from tests.download.conftest import FILENAME, REPO
from tests.support.hub_server import HubServer


def test_download_then_list_and_remove(
    hub: HubServer, capsys: pytest.CaptureFixture[str], starter_model: Path
) -> None:
    assert main(["download", f"{REPO}/{FILENAME}"]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.read_bytes()[:4] == b"GGUF" and path.stat().st_size == starter_model.stat().st_size
    assert "100%" in err and "MB/s" in err

    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["id"] for m in listed] == [f"{REPO}/{FILENAME}", "starter"]
    assert listed[0]["quant"] == "Q4_1"

    assert main(["models", "rm", f"{REPO}/{FILENAME}"]) == 0
    assert "GB freed" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "no models installed" not in out and f"{REPO}/{FILENAME}" not in out


def test_models_list_shows_the_starter_that_serve_uses(
    capsys: pytest.CaptureFixture[str], starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing downloaded: the list names the bundled starter (what `gbdesk serve` serves), not
    "no models"; only without a starter is the list empty."""
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "no models installed" not in out
    assert out.startswith("starter\tQ4_1\t") and "bundled with gbdesk" in out
    assert str(starter_model) in out
    assert main(["models", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["source"] == "bundled" and listed["path"] == str(starter_model)

    monkeypatch.setenv("GBDESK_STARTER_MODEL", str(starter_model.parent / "missing.gguf"))
    assert main(["models", "list"]) == 0
    assert "no models installed" in capsys.readouterr().out


def test_download_failures_exit_non_zero_with_a_fix(
    hub: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["download", f"{REPO}/missing.gguf"]) == ExitCode.DOWNLOAD
    err = capsys.readouterr().err
    assert "error: " in err and "has no file 'missing.gguf'" in err and "fix: " in err
    assert main(["download", "just-a-name/"]) == 2
    assert "OWNER/REPO/FILE" in capsys.readouterr().err


def test_gated_download_via_the_stored_token(
    hub_server: HubServer,
    starter_model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    secret = "hf_storedtoken_1234567890"
    hub_server.add_repo("test-org/gated", gated_token=secret)
    hub_server.add_file("test-org/gated", FILENAME, starter_model)

    assert main(["download", "--quiet", f"test-org/gated/{FILENAME}"]) == ExitCode.DOWNLOAD
    assert "accept the licence at" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert main(["models", "token", "--set"]) == 0
    assert main(["models", "token"]) == 0
    out = capsys.readouterr().out
    assert "token stored" in out and "stored by gbdesk" in out and secret not in out

    assert main(["download", "--quiet", f"test-org/gated/{FILENAME}"]) == 0
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert main(["models", "token", "--clear"]) == 0


def test_import_rejects_a_non_gguf_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], starter_model: Path
) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 a zip file")
    assert main(["models", "import", str(bad)]) == 2
    assert "not a GGUF model" in capsys.readouterr().err
    assert main(["models", "import", str(starter_model)]) == 0
    assert "imported local/" in capsys.readouterr().out


def test_download_by_catalogue_id(
    hub_server: HubServer, starter_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gbdesk.catalog.loader import load_catalog

    entry = load_catalog().require("smollm2-135m-instruct")
    (quant,) = entry.quants
    hub_server.add_file(entry.repo, quant.files[0], starter_model)
    assert main(["download", "--quiet", f"{entry.id}:{quant.name}"]) == 0
    assert Path(capsys.readouterr().out.strip()).name == quant.files[0]
    assert main(["download", "--quiet", entry.id]) == 0  # the only quant listed
    assert main(["download", f"{entry.id}:Q9_Z"]) == 2
    assert f"use {entry.id}:<QUANT> with one of: {quant.name}" in capsys.readouterr().err


def test_botservers_embedding_model_downloads_and_resolves(
    hub_server: HubServer, starter_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue's knowledge-base model, fetched from the (local) Hub by its id."""
    from gbdesk.backend.serve import resolve_model
    from gbdesk.catalog.loader import load_catalog

    entry = load_catalog().require("bge-small-en-v1.5")
    assert entry.is_embedding_model
    (quant,) = entry.quants
    assert (entry.repo, quant.name, quant.files) == (
        "CompendiumLabs/bge-small-en-v1.5-gguf",
        "F32",
        ("bge-small-en-v1.5-f32.gguf",),
    )
    hub_server.add_file(entry.repo, quant.files[0], starter_model)  # stands in for the file
    assert main(["download", "--quiet", entry.id]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "bge-small-en-v1.5-f32.gguf"
    assert resolve_model(entry.id) == path  # what `gbdesk serve --embedding-model` loads
