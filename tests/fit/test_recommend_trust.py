"""A recommendation a user can trust: measured > calibrated > guess, said in the reason; offline
the first pick is on disk; a served model's speed is kept and used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gbdesk.app.recommendation import recommend_here
from gbdesk.catalog import load_catalog
from gbdesk.fit.calibration import Calibration, save_calibration
from gbdesk.fit.measured import load_measured, record_measured
from gbdesk.fit.recommend import recommend
from gbdesk.hardware.probe import probe
from gbdesk.starter import STARTER_FILE, STARTER_ID
from tests.free_ports import free_port

CATALOG = load_catalog()
GIB = 1 << 30


def _calibration(**figures: float) -> Calibration:
    cpu = probe().cpu
    return Calibration(
        cpu_brand=cpu.brand,
        physical_cores=cpu.physical_cores,
        cpu_generation_efficiency=figures.get("efficiency", 0.5),
        cpu_prompt_efficiency=0.2,
        measured_generation_tps=40.0,
        measured_prompt_tps=400.0,
        measured_rss_growth_bytes=140 << 20,
        model=STARTER_FILE,
        created="2026-12-01T00:00:00+00:00",
        seconds_per_layer=figures.get("per_layer", 200e-6),
        points=3,
    )


def test_every_reason_says_what_the_speed_rests_on() -> None:
    profile = probe()
    guesses = recommend(CATALOG, profile)
    assert all(r.speed_basis == "guess" for r in guesses)
    assert all("a guess" in r.reason for r in guesses if r.fit.runs)
    # A guess counts as running well only at twice the bar (it was 2x optimistic here).
    assert all(r.fit.speed.generation_tps >= 10 for r in guesses if r.runs_well)
    slow_guesses = [r for r in guesses if r.fit.runs and not r.runs_well]
    assert all("may be slow" in r.reason for r in slow_guesses if r.fit.fits_disk)
    calibrated = recommend(CATALOG, profile, calibration=_calibration())
    assert all(r.speed_basis == "calibrated" for r in calibrated)
    assert all("calibrated estimate" in r.reason for r in calibrated if r.fit.runs)
    # A calibration from another CPU is not used.
    other = replace(_calibration(), cpu_brand="another CPU")
    assert all(r.speed_basis == "guess" for r in recommend(CATALOG, profile, calibration=other))


def test_a_measured_speed_replaces_the_prediction_and_ranks_first() -> None:
    profile = probe()
    record = record_measured(
        STARTER_FILE,
        generation_tps=48.0,
        prompt_tps=500.0,
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
    )
    results = recommend(CATALOG, profile, measured={STARTER_FILE: record})
    starter = next(r for r in results if r.model_id == STARTER_ID)
    assert starter.speed_basis == "measured" and starter.fit.speed.generation_tps == 48.0
    assert "~48.0 tokens/s (measured here)" in starter.reason
    # Only guesses elsewhere: the measured pick comes first.
    assert results[0] is starter
    # A measurement with another offload does not describe this placement.
    moved = replace(record, gpu_layers=5)
    assert recommend(CATALOG, profile, measured={STARTER_FILE: moved})[0].speed_basis == "guess"


def test_the_first_pick_runs_well_by_a_trusted_figure_and_fits_the_disk() -> None:
    profile = probe()
    small_disk = replace(profile, disk=replace(profile.disk, free_bytes=1 * GIB))
    results = recommend(CATALOG, small_disk, calibration=_calibration())
    first = results[0]
    assert first.runs_well and first.fit.fits_disk and first.speed_basis == "calibrated"
    assert first.fit.download_bytes <= 1 * GIB
    assert first.fit.speed.generation_tps >= 5.0


def test_offline_the_first_pick_is_on_disk() -> None:
    profile = replace(probe(), memory=replace(probe().memory, available_bytes=64 * GIB))
    online = recommend(CATALOG, profile, on_disk={STARTER_FILE})
    assert online[0].model_id != STARTER_ID  # with the Hub, something better may be fetched
    offline = recommend(CATALOG, profile, on_disk={STARTER_FILE}, online=False)
    assert offline[0].model_id == STARTER_ID and offline[0].on_disk
    assert "already on disk" in offline[0].reason
    assert offline[0].fit.download_bytes == 0


def test_recommend_here_finds_the_starter_calibration_and_measurements(
    starter_model: Path,
) -> None:
    profile = probe()
    save_calibration(_calibration())
    record_measured(
        STARTER_FILE,
        generation_tps=30.0,
        prompt_tps=300.0,
        cpu_brand=profile.cpu.brand,
        physical_cores=profile.cpu.physical_cores,
    )
    results = recommend_here(profile, online=False)
    assert results[0].model_id == STARTER_ID and results[0].speed_basis == "measured"
    assert {r.speed_basis for r in results[1:]} == {"calibrated"}


def test_a_calibration_predicts_a_model_it_was_not_fitted_on() -> None:
    """The fixed cost makes a small model's time not proportional to its bytes."""
    profile = replace(probe(), gpus=())
    calibration = _calibration(per_layer=300e-6, efficiency=0.5)
    entry = CATALOG.require("tinyllama-1.1b-chat")
    from gbdesk.fit.estimator import estimate_fit
    from gbdesk.fit.layout import layout_from_catalog
    from gbdesk.fit.speed import cpu_stream_gbps

    layout = layout_from_catalog(entry, entry.quants[0])
    fit = estimate_fit(layout, profile, calibration=calibration)
    n_bytes = layout.active_bytes_per_token()
    seconds = 1 / fit.speed.generation_tps
    fixed = entry.architecture.n_layers * 300e-6
    assert seconds > fixed + n_bytes / (cpu_stream_gbps(profile) * 1e9 * 0.5)  # + KV reads
    assert seconds < fixed + 1.2 * n_bytes / (cpu_stream_gbps(profile) * 1e9 * 0.5)


@pytest.mark.model
@pytest.mark.slow
def test_a_served_model_keeps_its_measured_speed(starter_model: Path) -> None:
    from tests.backend.conftest import start_backend

    backend = start_backend(starter_model, parallel=1)
    try:
        status, body = backend.post(
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "Count from one to thirty."}],
                "max_tokens": 40,
                "temperature": 0,
            },
        )
        assert status == 200, body
    finally:
        backend.stop.set()
        backend.thread.join(30)
    record = load_measured()[starter_model.name]
    assert record.source == "serve" and record.generation_tps > 0
    first = recommend_here(probe(), online=False)[0]
    assert first.model_id == STARTER_ID and first.speed_basis == "measured"


def test_recommend_here_ranks_installed_models_the_catalogue_does_not_know(
    starter_model: Path, tmp_path: Path
) -> None:
    from gbdesk.download.library import ModelLibrary

    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + b"\0" * 16)
    copy = tmp_path / "renamed-copy.gguf"
    copy.write_bytes(starter_model.read_bytes())
    imported = ModelLibrary().import_file(copy)
    # A header that breaks after the import check (the file changed on disk) is left out.
    (ModelLibrary().models_dir / damaged.name).write_bytes(damaged.read_bytes())
    results = recommend_here(probe(), online=False)
    mine = [r for r in results if r.model_id == imported.id]
    assert len(mine) == 1, [r.model_id for r in results]
    rec = mine[0]
    assert rec.on_disk and rec.path == imported.path and rec.fit.runs
    assert rec.fit.download_bytes == 0 and "already on disk" in rec.reason
    assert rec.model_name == "renamed-copy" and rec.quant == imported.quant == "Q4_1"
    assert not any("damaged" in r.model_id for r in results)
    # Offline, on-disk models come before every model that would need a download.
    assert all(r.on_disk for r in results[: results.index(rec) + 1])
    # The starter bundled with gbdesk has no library path: its Download step offers the copy.
    starter = next(r for r in results if r.model_id == STARTER_ID)
    assert starter.on_disk and starter.path == ""


def test_gbdesk_recommend_tests_the_hub_and_puts_disk_first_when_it_cannot_be_reached(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from gbdesk.cli import main
    from tests.support.hub_server import HubServer

    # Nothing listens on this port: the Hub cannot be reached, as on a machine offline.
    closed_port = free_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    assert main(["recommend"]) == 0
    text = capsys.readouterr().out
    assert "the Hub cannot be reached" in text
    assert main(["recommend", "--json"]) == 0
    offline = json.loads(capsys.readouterr().out)["results"]
    assert offline[0]["model_id"] == STARTER_ID
    # With a Hub that answers, a better model to download may come first.
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert main(["recommend", "--json"]) == 0
    online = json.loads(capsys.readouterr().out)["results"]
    assert online[0]["model_id"] != STARTER_ID
