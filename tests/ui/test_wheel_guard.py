"""Scrolling never changes a setting: every spin box and combo box of every page and wizard step
ignores the mouse wheel until it has the focus, and passes it on to the page, which scrolls."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QWidget


def _wheel(widget: QWidget, steps: int) -> QWheelEvent:
    """A real wheel event over ``widget``'s middle, ``steps`` notches (120 each; up is +)."""
    position = QPointF(widget.rect().center())
    event = QWheelEvent(
        position,
        QPointF(widget.mapToGlobal(position.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)
    return event


def _value(box: QWidget) -> object:
    return box.currentIndex() if isinstance(box, QComboBox) else box.text()


def _boxes(root: QWidget) -> list[QWidget]:
    return [*root.findChildren(QAbstractSpinBox), *root.findChildren(QComboBox)]


def _assert_wheel_changes_nothing(root: QWidget, where: str) -> int:
    """Wheel each unfocused box of ``root`` both ways; returns how many boxes there were."""
    boxes = _boxes(root)
    for box in boxes:
        box.clearFocus()
        QApplication.processEvents()
        before = _value(box)
        for steps in (1, -1, 3, -3):
            _wheel(box, steps)
        QApplication.processEvents()
        assert _value(box) == before, f"{where}: the wheel changed {box!r}"
        # A real wheel turn must not give it the focus either (and then change it).
        assert box.focusPolicy() != Qt.FocusPolicy.WheelFocus, f"{where}: {box!r}"
    return len(boxes)


def test_no_page_of_the_main_window_changes_a_box_under_the_wheel(qtbot, configured_state) -> None:
    from gbdesk.ui.main_window import PAGES, MainWindow

    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.show()
    counted = 0
    for spec in PAGES:
        page = window.show_page(spec.key)
        qtbot.waitUntil(page.isVisible)
        counted += _assert_wheel_changes_nothing(page, spec.key)
    assert counted >= 8  # Settings alone has eight; Chat has the model, temperature, max tokens

    # The same wheel over a focused box does change it: the events above were real ones.
    settings = window.show_page("settings")
    parallel = settings.parallel
    parallel.setValue(4)
    window.activateWindow()
    parallel.setFocus()
    qtbot.waitUntil(parallel.hasFocus)
    _wheel(parallel, 1)
    assert parallel.value() == 5


def test_an_unfocused_box_passes_the_wheel_to_the_page_which_scrolls(
    qtbot, configured_state
) -> None:
    """The Settings page's report: scrolling over Parallel chats scrolled the page, nothing else."""
    from gbdesk.ui.pages.settings import SettingsPage

    page = SettingsPage(configured_state)
    qtbot.addWidget(page)
    page.resize(700, 260)  # short: the page must scroll
    page.show()
    page.parallel.setValue(4)
    area = page.findChild(QScrollArea)
    assert area is not None
    bar = area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    area.ensureWidgetVisible(page.parallel)
    start = bar.value()
    _wheel(page.parallel, -1)  # down: the page scrolls down
    assert page.parallel.value() == 4 and page.parallel.text() != "Automatic"
    assert bar.value() > start or bar.value() == bar.maximum()


def test_no_wizard_step_changes_a_box_under_the_wheel(qtbot, state) -> None:
    from gbdesk.ui.wizard import FirstRunWizard

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    counted = 0
    for page in wizard.pages:
        counted += _assert_wheel_changes_nothing(page, type(page).__name__)
    assert counted >= 4  # the model step's context and parallel, the backend step's too
