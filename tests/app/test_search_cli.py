"""`gbdesk search` against the local Hub: text, JSON, the gated message, offline."""

from __future__ import annotations

import json

import pytest

from gbdesk.cli import main
from gbdesk.errors import ExitCode
from tests.support import hub_repos as hr
from tests.support.hub_server import HubServer


def test_search_prints_each_repo_and_quant_with_its_verdict(
    search_hub: HubServer, capsys: pytest.CaptureFixture[str]
):
    assert main(["search", "llama", "--sort", "downloads"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{hr.QUANTS_REPO}  5.0k downloads  120 likes  updated 2025-11-20")
    assert "licence llama3.2" in lines[0]
    q4 = next(line for line in lines if line.strip().startswith("Q4_K_M"))
    assert "tokens/s (" in q4 and "context up to" in q4 and "llama" in q4
    assert any("gated: accept the licence" in line for line in lines)
    gated_row = out[out.index(hr.GATED_REPO) :]
    assert "no verdict" in gated_row and "fix: accept the licence at" in gated_row
    assert hr.NO_GGUF_REPO not in out


def test_search_json_has_every_quant(search_hub: HubServer, capsys: pytest.CaptureFixture[str]):
    assert main(["search", "", "--json", "--limit", "3", "--sort", "likes"]) == 0
    repos = json.loads(capsys.readouterr().out)
    assert [r["repo"] for r in repos] == [hr.STARTER_REPO, hr.QUANTS_REPO, hr.BIG_REPO]
    quants = {q["quant"]: q for q in repos[1]["quants"]}
    assert set(quants) == {"Q4_K_M", "Q8_0", "F16"}
    for quant in quants.values():
        assert quant["verdict"] in {"full-gpu", "partial-gpu", "cpu-only", "does-not-fit"}
        assert quant["architecture"] == "llama" and quant["params"] > 2e9
        assert quant["speed_source"] in {"calibrated", "guess"} and quant["header_bytes"] > 0
        assert quant["size_bytes"] == search_hub.file(hr.QUANTS_REPO, quant["files"][0]).size


def test_search_offline_says_the_hub_is_unreachable(
    search_hub: HubServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["search", "llama"]) == ExitCode.HUB_SEARCH
    err = capsys.readouterr().err
    assert f"error: the Hub is unreachable (mirror: {search_hub.url})" in err
    assert "fix:" in err and "Traceback" not in err


def test_search_rejects_a_bad_limit(capsys: pytest.CaptureFixture[str]):
    assert main(["search", "llama", "--limit", "500"]) == 2
    assert "limit" in capsys.readouterr().err
