"""`gbdesk bench` on the real starter model, and the calibration used afterwards."""

from __future__ import annotations

import pytest

from gbdesk.catalog import load_catalog
from gbdesk.cli import main
from gbdesk.fit.bench import MEASURED_TYPES, bench_cases
from gbdesk.fit.calibration import load_calibration
from gbdesk.fit.estimator import estimate_fit
from gbdesk.fit.layout import layout_from_catalog
from gbdesk.fit.measured import load_measured
from gbdesk.hardware.probe import probe
from gbdesk.starter import STARTER_FILE


@pytest.mark.model
@pytest.mark.slow
def test_bench_calibrates_later_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    entry = load_catalog().require("llama-3.1-8b-instruct")
    layout = layout_from_catalog(entry, entry.quants[0])
    before = estimate_fit(layout, probe())
    assert not before.speed.calibrated
    assert main(["bench", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s generating" in out and "weights stream at (GB/s) " in out
    calibration = load_calibration()
    assert calibration is not None and calibration.measured_generation_tps > 0
    assert 50 * (1 << 20) < calibration.measured_rss_growth_bytes < 1 << 30
    # The starter and the bench's models: every measured type and the starter's own get a
    # cost per byte; the fixed terms are physical.
    assert calibration.points == 1 + len(bench_cases())
    assert {*MEASURED_TYPES, "Q4_1"} <= set(calibration.seconds_per_byte)
    assert all(cost > 0 for cost in calibration.seconds_per_byte.values())
    assert calibration.seconds_per_layer >= 0 and calibration.seconds_per_row >= 0
    assert calibration.seconds_per_attention + calibration.seconds_per_kv_byte > 0
    assert calibration.cpu_generation_efficiency > 0
    after = estimate_fit(layout, probe(), calibration=calibration)
    assert after.speed.calibrated and after.speed.basis == "calibrated"
    assert after.speed.generation_tps != before.speed.generation_tps
    # The starter's own figure is kept and shown as measured.
    assert load_measured()[STARTER_FILE].generation_tps == calibration.measured_generation_tps
    assert main(["recommend", "--use-case", "qa"]) == 0
    out = capsys.readouterr().out
    assert "(calibrated)" in out
    assert main(["recommend"]) == 0
    assert "(measured)" in capsys.readouterr().out


def test_bench_quick_while_another_bench_runs_says_so(
    capsys: pytest.CaptureFixture[str], starter_model: object
) -> None:
    from gbdesk.fit.calibration import bench_lock, calibration_path

    with bench_lock():  # the app's first-run measurement, say
        code = main(["bench", "--quick"])
    err = capsys.readouterr().err
    assert code == 1
    assert "already being measured" in err and "fix:" in err and "Traceback" not in err
    assert not calibration_path().exists()
