"""Estimator against hand-computed numbers, and the guide's GPU matrix checked by arithmetic."""

from __future__ import annotations

import json

import pytest

from gbdesk.catalog import load_catalog
from gbdesk.catalog.presets import load_presets
from gbdesk.cli import main
from gbdesk.fit.estimator import FitSettings, estimate_fit
from gbdesk.fit.layout import layout_from_catalog, layout_from_gguf
from gbdesk.fit.memory import MIB, kv_cells
from gbdesk.fit.recommend import recommend
from gbdesk.gguf import read_gguf
from gbdesk.hardware.probe import probe

PRESETS = {p.id: p for p in load_presets()}


def _fit(model: str, quant: str, preset: str, **settings: int):
    entry = load_catalog().require(model)
    layout = layout_from_catalog(entry, entry.quant(quant))
    return estimate_fit(layout, PRESETS[preset].profile, FitSettings(**settings))


def test_starter_kv_cache_by_hand(starter_model) -> None:
    layout = layout_from_gguf(read_gguf(starter_model))
    cpu_only = probe()
    # 30 layers x 3 KV heads x (64 + 64) x 2 bytes (f16) = 23,040 bytes per cell;
    # llama.cpp logged 45.00 MiB for 2048 cells and 180.00 MiB for 8192.
    for n_ctx, parallel, mib in [
        (2048, 1, 45.0),
        (8192, 1, 180.0),
        (2048, 4, 45.0),
        (1000, 3, 33.75),
    ]:
        fit = estimate_fit(layout, cpu_only, FitSettings(n_ctx=n_ctx, n_parallel=parallel))
        assert fit.cpu.kv_cache == pytest.approx(mib * MIB)
    assert kv_cells(layout.architecture, 1000, 3).total == 1536  # 3 x pad(333) = 3 x 512
    assert layout.weight_bytes == 96_576_768  # sum of the 272 tensors' bytes


def test_gemma2_sliding_window_layers() -> None:
    arch = load_catalog().require("gemma-2-2b-it").architecture
    cells = kv_cells(arch, 8192, 1, swa_full=False)
    assert (cells.total, cells.total_swa) == (8192, 4608)  # pad(4096 + 512)
    assert arch.is_swa_layer(0) and not arch.is_swa_layer(1)


def test_placement_counts_the_output_layer() -> None:
    fit = _fit("glm-4-9b-chat", "Q4_K_M", "rtx-3060-12gb", gpu_layers=40)
    assert fit.verdict == "partial-gpu"  # 40 repeating layers on GPU, output head on CPU
    assert fit.devices[1].layers == 40
    full = _fit("glm-4-9b-chat", "Q4_K_M", "rtx-3060-12gb", gpu_layers=41)
    assert full.verdict == "full-gpu"
    assert full.cpu.weights < fit.cpu.weights


# The guide's compatibility matrix / price table, cell by cell: (model, quant, preset) ->
# the verdict the arithmetic gives. Where it differs from the guide, docs/guide-deviations.md
# explains it with the numbers.
MATRIX = [
    ("glm-4-9b-chat", "Q8_0", "rtx-3050-8gb", "partial-gpu"),  # guide: Q8_0 "Perfect"
    ("glm-4-9b-chat", "Q8_0", "rtx-3060-12gb", "full-gpu"),
    ("glm-4-9b-chat", "Q8_0", "rtx-4060-ti-16gb", "full-gpu"),
    ("glm-4-9b-chat", "Q8_0", "rtx-3090-24gb", "full-gpu"),
    ("glm-4-9b-chat", "Q8_0", "rtx-4090-24gb", "full-gpu"),
    ("glm-4-9b-chat", "Q8_0", "rtx-4080-super-16gb", "full-gpu"),
    ("glm-4-9b-chat", "Q6_K", "rtx-3070-8gb", "partial-gpu"),  # guide: Q6_K fits 8 GB
    ("glm-4-9b-chat", "Q4_K_M", "rtx-3070-8gb", "full-gpu"),
    ("deepseek-v3", "Q2_K", "rtx-3050-8gb", "does-not-fit"),
    ("deepseek-v3", "Q2_K", "rtx-3060-12gb", "does-not-fit"),  # guide: CPU offload
    ("deepseek-v3", "Q2_K", "rtx-3090-24gb", "does-not-fit"),  # guide: CPU offload usable
    ("deepseek-v3", "Q4_K_M", "2x-rtx-3090-48gb", "does-not-fit"),  # guide: Q4_K_M good
    ("deepseek-v3", "Q6_K", "4x-rtx-3090-96gb", "does-not-fit"),  # guide: Q6_K excellent
    ("mistral-large-instruct-2407", "Q4_K_M", "rtx-3050-8gb", "does-not-fit"),
    ("mistral-large-instruct-2407", "Q4_K_M", "rtx-3060-12gb", "does-not-fit"),  # guide: offload
    ("mistral-large-instruct-2407", "Q2_K", "rtx-3090-24gb", "partial-gpu"),  # guide: fits
    ("mistral-large-instruct-2407", "Q4_K_M", "2x-rtx-3090-48gb", "partial-gpu"),  # "Perfect"
    ("mistral-large-instruct-2407", "Q6_K", "4x-rtx-3090-96gb", "partial-gpu"),
]


@pytest.mark.parametrize(("model", "quant", "preset", "verdict"), MATRIX)
def test_guide_matrix_by_arithmetic(model: str, quant: str, preset: str, verdict: str) -> None:
    fit = _fit(model, quant, preset)
    assert fit.verdict == verdict, fit.reasons


def test_recommend_on_every_preset_and_this_machine() -> None:
    catalog = load_catalog()
    for preset in [*PRESETS.values(), None]:
        profile = preset.profile if preset else probe()
        results = recommend(catalog, profile)
        chat = [e for e in catalog.entries if not e.is_embedding_model]
        assert len(results) == sum(len(e.quants) for e in chat)
        groups = [0 if r.runs_well else 1 if r.fit.runs else 2 for r in results]
        assert groups == sorted(groups)
        assert all(r.reason for r in results)
        embedders = recommend(catalog, profile, use_case="embeddings")
        assert [r.model_id for r in embedders] == ["bge-small-en-v1.5"]
    # the starter runs everywhere; DeepSeek-V3 Q6_K nowhere
    assert results[-1].fit.verdict == "does-not-fit"
    assert any(r.model_id == "smollm2-135m-instruct" and r.fit.runs for r in results)
    best_3090 = recommend(catalog, PRESETS["rtx-3090-24gb"].profile)[0]
    assert best_3090.fit.verdict == "full-gpu" and best_3090.runs_well


def test_use_case_filter() -> None:
    results = recommend(load_catalog(), probe(), use_case="customer-service")
    assert {r.model_id for r in results} >= {"phi-2", "gemma-2-2b-it"}
    assert "deepseek-v3" not in {r.model_id for r in results}


def test_plan_lists_cheapest_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "glm-4-9b-chat:Q8_0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["preset"] for r in rows]
    assert "rtx-3050-8gb" not in names and names[0] == "rtx-3060-12gb"
    prices = [r["price_brl"]["used"][0] for r in rows if r["price_brl"]["used"]]
    assert prices == sorted(prices)
    assert main(["plan", "glm-4-9b-chat:Q9"]) == 2


def test_recommend_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--hardware", "rtx-3060-12gb", "--ctx", "8192", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hardware"] == "preset:rtx-3060-12gb"
    assert data["results"][0]["fit"]["verdict"] == "full-gpu"
    assert main(["recommend", "--hardware", "rtx-3060-12gb"]) == 0
    assert "glm-4-9b-chat:Q8_0" in capsys.readouterr().out
    assert main(["recommend", "--hardware", "no-such-machine"]) == 2
    assert "neither a hardware preset nor a file" in capsys.readouterr().err
