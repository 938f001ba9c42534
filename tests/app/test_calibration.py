"""The first-run measurement of this computer (gbdesk.app.calibration): a real quick bench on
the starter model stores a calibration that the recommendations then use; a cancelled one
stores nothing; two never run at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gbdesk.app.calibration import MeasureProgress, calibration_needed, measure_this_computer
from gbdesk.app.recommendation import recommend_here
from gbdesk.fit.bench import QUICK_TYPES, bench_cases
from gbdesk.fit.calibration import BenchBusyError, bench_lock, calibration_path, load_calibration
from gbdesk.fit.measure import BenchCancelledError
from gbdesk.fit.measured import load_measured, measured_path
from gbdesk.hardware.probe import probe
from gbdesk.starter import STARTER_FILE, STARTER_ID


def test_the_quick_bench_times_the_catalogues_types() -> None:
    quick = bench_cases(quick=True)
    assert {case.spec.weights for case in quick} == set(QUICK_TYPES)
    assert quick[0].spec.name == "bench-rows"  # many rows: F16 where the rows cost most
    assert len(quick) < len(bench_cases())


@pytest.mark.model
@pytest.mark.slow
def test_the_first_measurement_calibrates_the_recommendations(starter_model: Path) -> None:
    profile = probe()
    assert calibration_needed(profile)
    before = {(r.model_id, r.quant): r for r in recommend_here(profile, online=False)}
    assert {r.speed_basis for r in before.values()} == {"guess"}
    seen: list[MeasureProgress] = []
    result = measure_this_computer(progress=seen.append, repeats=1)
    # progress went from nothing to every run done, in plain words
    assert seen[0].done == 0 and seen[-1].fraction == 1.0
    assert all(0 <= p.fraction <= 1 for p in seen) and "Timing" in seen[-1].text
    stored = load_calibration()
    assert stored == result.calibration and result.path == calibration_path()
    assert not calibration_needed(profile)
    assert stored.points == 1 + len(bench_cases(quick=True))
    assert {*QUICK_TYPES, "Q4_1"} <= set(stored.seconds_per_byte)
    assert stored.seconds_per_row > 0 and stored.seconds_per_attention > 0  # the guess's
    assert f"about {result.starter_tps:.0f} tokens per second" in result.sentence()
    assert load_measured()[STARTER_FILE].generation_tps == result.starter_tps
    after = recommend_here(profile, online=False)
    bases = {(r.model_id, r.quant): r.speed_basis for r in after}
    assert bases[(STARTER_ID, "Q4_1")] == "measured"
    others = {basis for key, basis in bases.items() if key[0] != STARTER_ID}
    assert others == {"calibrated"}
    # a type the quick bench did not time (Q5_K_M's Q5_K, Q2_K) still gets a calibrated figure
    assert any(r.quant in {"Q5_K_M", "Q2_K"} and r.fit.speed.calibrated for r in after)


@pytest.mark.model
@pytest.mark.slow
def test_a_cancelled_measurement_stores_nothing(starter_model: Path) -> None:
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def on_progress(progress: MeasureProgress) -> None:
        if progress.done >= 1:  # mid-bench: the first model is timed
            cancel.set()

    def run() -> None:
        try:
            measure_this_computer(cancel=cancel, progress=on_progress, repeats=1)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=240)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], BenchCancelledError)
    assert outcome[0].exit_code == 130
    assert not calibration_path().exists() and not measured_path().exists()
    assert not list(calibration_path().parent.glob(".calibration.json.*"))  # no temporary file
    with bench_lock():  # released
        pass


def test_two_measurements_never_run_at_once(starter_model: Path) -> None:
    with bench_lock():
        with pytest.raises(BenchBusyError) as caught:
            measure_this_computer(repeats=1)
        assert "already being measured" in caught.value.message
        with pytest.raises(BenchBusyError):  # another thread is refused too
            errors: list[BaseException] = []

            def other() -> None:
                try:
                    with bench_lock():
                        pass
                except BenchBusyError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            raise errors[0]
    assert not calibration_path().exists()


def test_a_damaged_calibration_is_measured_again(tmp_path: Path) -> None:
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json", encoding="utf-8")
    assert calibration_needed(probe())
