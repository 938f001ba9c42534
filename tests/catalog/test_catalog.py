"""The catalogue: every guide row present, user overrides, clear errors for bad user files."""

from __future__ import annotations

import json

import pytest

from gbdesk.catalog import CatalogError, load_catalog, user_catalog_path
from gbdesk.cli import main

GUIDE_ROWS = {
    ("glm-4-9b-chat", "Q2_K"): 3_990_000_000,
    ("glm-4-9b-chat", "Q4_K_M"): 5_700_000_000,
    ("glm-4-9b-chat", "Q6_K"): 8_260_000_000,
    ("glm-4-9b-chat", "Q8_0"): 9_990_000_000,
    ("deepseek-v3", "Q2_K"): 280_000_000_000,
    ("deepseek-v3", "Q4_K_M"): 409_000_000_000,
    ("deepseek-v3", "Q6_K"): 551_000_000_000,
    ("mistral-large-instruct-2407", "Q2_K"): 50_000_000_000,
    ("mistral-large-instruct-2407", "Q4_K_M"): 75_000_000_000,
    ("mistral-large-instruct-2407", "Q6_K"): 95_000_000_000,
    ("tinyllama-1.1b-chat", "Q4_K_M"): 670_000_000,
    ("phi-2", "Q4_K_M"): 1_600_000_000,
    ("gemma-2-2b-it", "Q4_K_M"): 1_400_000_000,
    ("llama-3.2-3b-instruct", "Q4_K_M"): 2_000_000_000,
    ("mistral-7b-instruct-v0.2", "Q4_K_M"): 4_100_000_000,
    ("llama-3.1-8b-instruct", "Q4_K_M"): 4_700_000_000,
}


def test_every_guide_row_is_in_the_catalogue() -> None:
    catalog = load_catalog()
    for (model_id, quant_name), size in GUIDE_ROWS.items():
        quant = catalog.require(model_id).quant(quant_name)
        assert quant is not None, (model_id, quant_name)
        assert quant.size_bytes == size
        assert quant.size_source == "guide-rounded"
    assert catalog.require("deepseek-v3").quant("Q4_K_M").is_split
    assert catalog.require("deepseek-v2-lite-chat").architecture.is_moe
    botserver = catalog.require("deepseek-r1-distill-qwen-1.5b").quant("Q3_K_M")
    assert botserver.files == ("DeepSeek-R1-Distill-Qwen-1.5B-Q3_K_M.gguf",)
    tiny = catalog.require("tinyllama-1.1b-chat")
    assert tiny.quants[0].files == ("tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",)
    assert tiny.source_of("n_layers") == "config"


def test_starter_figures_match_its_real_file(starter_model) -> None:
    from gbdesk.fit.layout import architecture_from_gguf
    from gbdesk.gguf import read_gguf

    entry = load_catalog().require("smollm2-135m-instruct")
    assert architecture_from_gguf(read_gguf(starter_model)) == entry.architecture
    assert entry.quants[0].size_bytes == starter_model.stat().st_size


def test_user_file_adds_and_overrides() -> None:
    path = user_catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "format_version": 1,
                "models": [
                    {"id": "phi-2", "quality_tier": 4, "architecture": {"n_ctx_train": 4096}},
                    {
                        "id": "my-model",
                        "name": "Mine",
                        "repo": "me/mine-GGUF",
                        "architecture": {
                            "arch": "llama",
                            "n_layers": 2,
                            "n_embd": 64,
                            "n_head": 4,
                            "n_head_kv": 2,
                            "head_dim_k": 16,
                            "head_dim_v": 16,
                            "n_ff": 128,
                            "n_vocab": 100,
                            "n_ctx_train": 512,
                        },
                        "quants": [{"name": "Q8_0", "files": ["m.gguf"], "size_bytes": 1000}],
                    },
                ],
            }
        )
    )
    catalog = load_catalog()
    phi = catalog.require("phi-2")
    assert phi.quality_tier == 4 and phi.architecture.n_ctx_train == 4096
    assert phi.architecture.n_layers == 32  # untouched figures stay
    assert catalog.require("my-model").origin == str(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot read the user catalogue"),
        ('{"models": {}}', "'models' list"),
        ('{"models": [{"id": "phi-2", "architecture": {"n_layers": -3}}]}', "'n_layers'"),
        ('{"models": [{"id": "x", "name": "X", "repo": "nope"}]}', "owner/name"),
        ('{"models": [{"id": "phi-2", "architecture": {"n_layerz": 3}}]}', "unknown"),
    ],
)
def test_bad_user_file_gives_a_clear_error(content: str, expected: str) -> None:
    path = user_catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(CatalogError) as info:
        load_catalog()
    assert expected in info.value.message
    assert info.value.fix


def test_catalog_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "list", "--json"]) == 0
    ids = [e["id"] for e in json.loads(capsys.readouterr().out)]
    assert "glm-4-9b-chat" in ids and "smollm2-135m-instruct" in ids
    assert main(["catalog", "show", "deepseek-v3"]) == 0
    out = capsys.readouterr().out
    assert "kv_lora_rank = 512 [config]" in out
    assert "-00001-of-" in out
    assert main(["catalog", "show", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
