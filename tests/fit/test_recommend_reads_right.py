"""The recommender's figures read right: the longest chat never past the trained length (and
said when memory would hold more), what runs well (or faster) first, plain words."""

from __future__ import annotations

import pytest

from gbdesk.catalog import load_catalog
from gbdesk.catalog.presets import load_hardware, load_presets
from gbdesk.cli import main
from gbdesk.fit.estimator import FitSettings
from gbdesk.fit.recommend import RUNS_WELL_TPS, context_words, rank_key, recommend
from gbdesk.hardware.probe import probe

CATALOG = load_catalog()


@pytest.mark.parametrize("parallel", [1, 4, 8])
def test_no_max_context_is_past_the_trained_length(parallel: int) -> None:
    """On every preset and this machine: the context per chat is capped at the model's trained
    length (DeepSeek R1 Distill Qwen 1.5B showed 524288 = 4 x 131072)."""
    profiles = [preset.profile for preset in load_presets()] + [probe()]
    for profile in profiles:
        for rec in recommend(CATALOG, profile, FitSettings(n_parallel=parallel)):
            fit = rec.fit
            entry = CATALOG.require(rec.model_id)
            assert fit.n_ctx_train == entry.architecture.n_ctx_train
            assert fit.max_ctx_per_chat <= fit.n_ctx_train, rec.fit.model
            assert fit.max_ctx_per_chat == min(fit.max_ctx // parallel, fit.n_ctx_train)
            if fit.longer_ctx_fits:
                assert fit.max_ctx_per_chat == fit.n_ctx_train
                assert "memory would hold longer chats" in context_words(fit)
            assert f"{fit.max_ctx_per_chat:,} tokens per chat" in context_words(fit) or (
                not fit.runs
            )


def test_recommend_prints_the_context_per_chat_capped_and_says_more_fits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["recommend", "--hardware", "4x-rtx-3090-96gb", "--parallel", "4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "deepseek-r1-distill-qwen-1.5b:" in line)
    assert "max ctx  131072/chat" in lines[first] and "524288" not in out
    block = "\n".join(lines[first : first + 3])
    assert "context up to 131,072 tokens per chat (the length it was trained on" in block
    assert "memory would hold longer chats" in block

    assert main(["recommend", "--hardware", "4x-rtx-3090-96gb", "--parallel", "4", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["results"]
    for row in rows:
        fit = row["fit"]
        assert fit["max_ctx_per_chat"] <= fit["n_ctx_train"]


def test_what_runs_well_comes_first_and_the_slow_ones_fastest_first() -> None:
    """This machine (CPU only, like the report's): nothing that runs well comes after one that
    does not, and among the slow ones a faster model is never below a slower one
    (GLM-4-9B Q8_0 at ~1 tok/s came before Llama 3.2 3B at ~4.6)."""
    for profile in (probe(), load_hardware("rtx-3050-8gb")):
        ranking = recommend(CATALOG, profile)
        seen_slow = False
        slow_speeds: list[float] = []
        for rec in ranking:
            if rec.runs_well:
                assert not seen_slow, f"{rec.fit.model} runs well but comes after a slow one"
            elif rec.fit.runs:
                seen_slow = True
                slow_speeds.append(rec.fit.speed.generation_tps)
        assert slow_speeds == sorted(slow_speeds, reverse=True)
        keys = [rank_key(r, online=True) for r in ranking]
        assert keys == sorted(keys)


def test_the_reason_says_why_a_guess_is_slow_in_plain_words() -> None:
    for rec in recommend(CATALOG, probe()):
        if not rec.fit.runs or rec.runs_well or not rec.fit.fits_disk:
            continue
        assert "needs 10 tokens/s to count" not in rec.reason
        if rec.speed_basis == "guess":
            assert "a guessed speed is often too high" in rec.reason
            assert f"{RUNS_WELL_TPS * 2:g} tokens/s or more counts as running well" in rec.reason
