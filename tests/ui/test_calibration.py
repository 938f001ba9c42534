"""The app's first-run measurement of this computer in the wizard: the hardware step shows
"Measuring this computer…" while a real quick bench runs in the background, then the result in
words; the model step's figures follow it; Quit in the middle stores nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.stall import StallMonitor


def _next(qtbot, wizard) -> None:
    qtbot.waitUntil(wizard.next_button.isEnabled, timeout=60_000)
    qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)


@pytest.mark.model
@pytest.mark.slow
def test_the_wizard_shows_the_measurement_then_its_result(qtbot, state, starter_model) -> None:
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.starter import STARTER_ID
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from gbdesk.ui.wizard.hardware import HardwarePage

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    _next(qtbot, wizard)
    hardware = wizard.current_page()
    assert isinstance(hardware, HardwarePage)
    assert not hardware.measuring.isVisible()  # nothing measured, nothing said
    qtbot.waitUntil(lambda: state.profile is not None, timeout=30_000)

    runner = state.calibration
    assert runner.start_if_needed(state.profile, repeats=1)
    assert not runner.start_if_needed(state.profile)  # one at a time
    assert hardware.measuring.isVisible()
    assert "Measuring this computer…" in hardware.measuring.text()
    shares: list[float] = []
    said: list[str] = []
    runner.changed.connect(
        lambda view: (shares.append(view.fraction), said.append(hardware.measuring.text()))
    )
    with StallMonitor() as monitor:  # the GUI thread keeps running while it measures
        qtbot.waitUntil(lambda: runner.view.phase != "running", timeout=300_000)
    assert runner.view.phase == "done", runner.view.text
    assert any(0 < share < 1 for share in shares)  # progress on the way
    assert any("Measuring this computer…" in line and "% done" in line for line in said)
    text = hardware.measuring.text()
    assert text.startswith("Measured: this computer generates about ")
    assert "tokens per second with the starter model" in text
    assert monitor.largest_ms < 2000  # a sanity bound: the bench runs in other processes
    calibration = load_calibration()
    assert calibration is not None and calibration.model == starter_model.name

    # The model step's figures rest on the measurement.
    _next(qtbot, wizard)
    choose = wizard.current_page()
    assert isinstance(choose, ChooseModelPage)
    qtbot.waitUntil(lambda: bool(choose.recommendations), timeout=60_000)
    bases = {r.model_id: r.speed_basis for r in choose.recommendations}
    assert bases[STARTER_ID] == "measured"
    assert "calibrated" in bases.values() and "guess" not in bases.values()
    # Nothing to measure on the next start: the calibration of this CPU is stored.
    assert runner.start_if_needed(state.profile)  # checks in its worker ...
    qtbot.waitUntil(lambda: not runner.running, timeout=30_000)
    assert runner.view.phase == "idle" and not hardware.measuring.isVisible()


@pytest.mark.model
@pytest.mark.slow
def test_quitting_mid_measurement_stores_nothing(qtbot, state, starter_model) -> None:
    from gbdesk.fit.calibration import calibration_path
    from gbdesk.fit.measured import measured_path
    from gbdesk.ui.wizard.hardware import HardwarePage

    page = HardwarePage(state)
    qtbot.addWidget(page)
    page.show()
    runner = state.calibration
    assert runner.start_if_needed(repeats=1)
    qtbot.waitUntil(lambda: runner.view.fraction > 0, timeout=240_000)  # a model is timed
    assert page.measuring.isVisible()
    state.shutdown()  # Quit: cancels every task and waits for them
    qtbot.waitUntil(lambda: not runner.running, timeout=5_000)
    assert not calibration_path().exists() and not measured_path().exists()
    assert not page.measuring.isVisible()  # back to idle, nothing claimed
