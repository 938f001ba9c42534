"""Layouts that hold at real window sizes: every wizard step and every main-window page (each
tab of each page), at the window's default size, at its minimum size, and at the size it takes
on a 1366x768 and a 1024x600 screen (a 40 px task bar below), at 1x and at 2x scale
(``QT_SCALE_FACTOR=2``, in a child process).

:func:`window_problems` walks every visible widget of a window and names what a person would
see go wrong: a horizontal scroll bar (or content wider than its scroll area), a label whose text
is cut (one line wider than the label, a word wider than a wrapped label, wrapped lines taller
than the label), a button, spin box or drop-down narrower than its text, a widget running past
the part of the window that shows it, a log view opened scrolled sideways. The same walker runs
on a real X server in ``tests/ui/test_real_display.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.hub_repos import search_hub, starter_split_parts

__all__ = ["search_hub", "starter_split_parts"]  # fixtures

# The work areas of the two small screens the app must fit: 768 and 600 px tall screens with a
# 40 px task bar.
WORK_AREAS = {"1366x768": (1366, 728), "1024x600": (1024, 560)}


# --- the walker -------------------------------------------------------------------------------


def _name(widget) -> str:
    """How a problem names a widget: its text, else its object name, else its class."""
    for attribute in ("text", "currentText", "placeholderText", "windowTitle"):
        getter = getattr(widget, attribute, None)
        if callable(getter):
            try:
                text = getter()
            except TypeError:
                continue
            if isinstance(text, str) and text.strip():
                text = " ".join(text.split())
                return f"{type(widget).__name__} {text[:60]!r}"
    return f"{type(widget).__name__} {widget.objectName() or ''}".strip()


def _is_viewport(widget) -> bool:
    from PySide6.QtWidgets import QAbstractScrollArea

    parent = widget.parentWidget()
    return isinstance(parent, QAbstractScrollArea) and parent.viewport() is widget


def _internal(widget) -> bool:
    """A part Qt builds inside its own widgets (scroll bars, viewports, a spin box's editor, a
    line edit's clear button)."""
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QScrollBar, QTabBar

    if widget.objectName().startswith("qt_") or isinstance(widget, QScrollBar):
        return True
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, (QAbstractSpinBox, QComboBox, QLineEdit, QTabBar)):
            return True
        parent = parent.parentWidget()
    return False


def _label_problem(label) -> str | None:
    if not label.text() or (label.pixmap() is not None and not label.pixmap().isNull()):
        return None
    room = label.contentsRect()
    if not label.wordWrap():
        needed = label.sizeHint().width()
        if label.width() + 1 < needed:
            return f"is cut: {label.width()} px wide, its one line needs {needed}"
        return None
    widest_word = label.minimumSizeHint().width()
    if label.width() + 1 < widest_word:
        return f"is cut: {label.width()} px wide, its longest word needs {widest_word}"
    needed_height = label.heightForWidth(label.width())
    if room.height() + label.contentsMargins().top() + label.contentsMargins().bottom() + 1 < (
        needed_height
    ):
        return f"is cut: {label.height()} px tall, its wrapped lines need {needed_height}"
    return None


def _runs_past(widget) -> str | None:
    """Whether ``widget`` runs past its parent: it must lie inside it, and across (left to right)
    inside a scroll area's viewport, which scrolls only up and down. Each widget is checked
    against its own parent, so a whole window is checked link by link."""
    parent = widget.parentWidget()
    if parent is None:
        return None
    box, area = widget.geometry(), parent.rect()
    if _is_viewport(parent):
        if box.left() < area.left() - 1 or box.right() > area.right() + 1:
            return f"runs past the right edge of {_name(parent.parentWidget())}"
        return None
    if not area.adjusted(-1, -1, 1, 1).contains(box):
        return f"runs past {_name(parent)} ({box.getRect()} in {area.getRect()})"
    return None


def window_problems(window, where: str) -> list[str]:
    """What does not hold in ``window`` as it is shown now (empty when everything holds)."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractScrollArea,
        QAbstractSpinBox,
        QComboBox,
        QLabel,
        QScrollArea,
        QWidget,
    )

    problems: list[str] = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.isWindow() or _internal(widget):
            continue
        name = f"{where}: {_name(widget)}"
        if isinstance(widget, QAbstractScrollArea):
            bar = widget.horizontalScrollBar()
            sideways = bool(widget.property("scrollsSideways"))
            if bar.isVisible() and not sideways:
                problems.append(f"{name} shows a horizontal scroll bar")
            if sideways and bar.value() != bar.minimum():
                problems.append(f"{name} opens scrolled sideways ({bar.value()} px)")
            content = widget.widget() if isinstance(widget, QScrollArea) else None
            if content is not None and widget.widgetResizable():
                need = content.minimumSizeHint().expandedTo(content.minimumSize()).width()
                if need > widget.viewport().width() + 1:
                    problems.append(
                        f"{name}: its content needs {need} px, the view is "
                        f"{widget.viewport().width()}"
                    )
        if isinstance(widget, QLabel) and (problem := _label_problem(widget)):
            problems.append(f"{name} {problem}")
        if isinstance(widget, (QAbstractButton, QAbstractSpinBox)):
            needed = widget.sizeHint().width()
            if widget.width() + 1 < needed:
                problems.append(f"{name} is {widget.width()} px wide, its text needs {needed}")
        if isinstance(widget, QComboBox):
            needed = widget.minimumSizeHint().width()
            if widget.width() + 1 < needed:
                problems.append(f"{name} is {widget.width()} px wide, it needs {needed}")
        layout = widget.layout()
        if layout is not None and not isinstance(widget, QAbstractScrollArea):
            need = layout.minimumSize()
            if widget.width() + 1 < need.width() or (
                widget.height() + 1 < need.height() and not layout.hasHeightForWidth()
            ):
                problems.append(
                    f"{name} is squeezed to {widget.width()}x{widget.height()}, its layout "
                    f"needs {need.width()}x{need.height()}"
                )
        if problem := _runs_past(widget):
            problems.append(f"{name} {problem}")
    return problems


def fits_work_areas(window, what: str) -> list[str]:
    """The window's minimum size, and the size it opens at, inside each small screen's work
    area (with room for the window manager's title bar)."""
    from gbdesk.ui.screen_fit import FRAME_ALLOWANCE

    problems = []
    for screen, (width, height) in WORK_AREAS.items():
        room_w, room_h = width - FRAME_ALLOWANCE.width(), height - FRAME_ALLOWANCE.height()
        minimum = window.minimumSize()
        if minimum.width() > room_w or minimum.height() > room_h:
            problems.append(
                f"{what}: its minimum size {minimum.width()}x{minimum.height()} does not fit a "
                f"{screen} screen ({room_w}x{room_h} inside the frame)"
            )
    return problems


Sizes = list[tuple[str, int, int]]


def _sizes(window, preferred, *, real_screen: bool) -> Sizes:
    """Default, minimum, and the sizes the window takes on the small screens; on a real screen,
    the size the window opened at (fitted to that screen) and its minimum."""
    from PySide6.QtCore import QSize

    from gbdesk.ui.screen_fit import fitted_size

    minimum = window.minimumSize()
    at_minimum = ("minimum", minimum.width(), minimum.height())
    if real_screen:
        return [("as opened", window.width(), window.height()), at_minimum]
    sizes = [("default", preferred.width(), preferred.height()), at_minimum]
    for screen, (width, height) in WORK_AREAS.items():
        size = fitted_size(preferred, QSize(width, height))
        sizes.append((f"on a {screen} screen", size.width(), size.height()))
    return sizes


def on_screen(window, what: str) -> list[str]:
    """The window lies inside its screen's work area (a real screen: the window manager's)."""
    area = window.screen().availableGeometry()
    frame = window.frameGeometry()
    if not area.contains(frame):
        return [f"{what} at {frame.getRect()} does not fit the work area {area.getRect()}"]
    return []


def _settle(app, rounds: int = 6) -> None:
    for _ in range(rounds):
        app.processEvents()


def _wait(app, condition: Callable[[], object], seconds: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the page did not finish its work in time"
        app.processEvents()
        time.sleep(0.01)


def _each_tab(page) -> Iterator[str]:
    """Show each tab of each tab widget on ``page`` in turn (the tab's name), or just the page."""
    from PySide6.QtWidgets import QTabWidget

    tabs = [t for t in page.findChildren(QTabWidget) if t.isVisible()]
    if not tabs:
        yield ""
        return
    for tab_widget in tabs:
        current = tab_widget.currentIndex()
        for index in range(tab_widget.count()):
            tab_widget.setCurrentIndex(index)
            yield f" ({tab_widget.tabText(index)} tab)"
        tab_widget.setCurrentIndex(current)


# --- the wizard ---------------------------------------------------------------------------------


def wizard_problems(
    *, real_screen: bool = False, shot: Callable[[str], None] | None = None
) -> list[str]:
    """Every wizard step, after its work is done, at each size (see :func:`_sizes`); ``shot``
    is called with a name once each step is shown at the size it opened at."""
    from PySide6.QtWidgets import QApplication

    from gbdesk.options import STARTER
    from gbdesk.ui.app import create_first_window
    from gbdesk.ui.state import AppState
    from gbdesk.ui.wizard.backend import BackendPage, botserver_values
    from gbdesk.ui.wizard.base import WIZARD_SIZE
    from gbdesk.ui.wizard.choose_model import ChooseModelPage

    app = QApplication.instance()
    state = AppState()
    wizard = create_first_window(state, force_wizard=True)
    sizes = _sizes(wizard, WIZARD_SIZE, real_screen=real_screen)
    wizard.show()
    _settle(app)
    problems = fits_work_areas(wizard, "the wizard") + on_screen(wizard, "the wizard")
    try:
        for index, page in enumerate(wizard.pages):
            wizard.go_to(index)
            if index == 1:
                _wait(app, lambda: state.profile is not None)
            if isinstance(page, ChooseModelPage):
                _wait(app, lambda page=page: bool(page.recommendations))
            for size_name, width, height in sizes:
                wizard.resize(width, height)
                _settle(app)
                step = f"wizard step {index + 1} ({page.step_title})"
                where = f"{step} at {size_name} {width}x{height}"
                problems += window_problems(wizard, where)
                if isinstance(page, BackendPage):
                    problems += _start_in_view(page, where)
                if shot is not None and size_name == sizes[0][0]:
                    shot(f"wizard-{index + 1}")
            if isinstance(page, BackendPage):
                # botserver's settings as they are shown once the backend is ready.
                page._show_values(botserver_values(STARTER, "sk-layout-test"))
                page.botserver_card.setVisible(True)
                for size_name, width, height in sizes:
                    wizard.resize(width, height)
                    _settle(app)
                    where = f"wizard step 5 with botserver's settings at {size_name}"
                    problems += window_problems(wizard, where)
                page.botserver_card.setVisible(False)
    finally:
        wizard.close()
        state.shutdown()
    return problems


def _start_in_view(page, where: str) -> list[str]:
    """The backend step's Start button is on screen without scrolling."""
    from PySide6.QtWidgets import QScrollArea

    button = page.start_button
    scroll = page.findChild(QScrollArea)
    viewport = scroll.viewport()
    box = button.rect().translated(button.mapTo(viewport, button.rect().topLeft()))
    if not button.isVisible() or not viewport.rect().contains(box):
        return [f"{where}: Start is not in view ({box.getRect()} in {viewport.rect().getRect()})"]
    return []


# --- the main window ----------------------------------------------------------------------------


def main_window_problems(
    *, real_screen: bool = False, shot: Callable[[str], None] | None = None
) -> list[str]:
    """Every page (each tab) at each size (see :func:`_sizes`), the Logs page with a line
    wider than the window."""
    from PySide6.QtWidgets import QApplication

    from gbdesk.paths import app_paths
    from gbdesk.ui.app import create_first_window
    from gbdesk.ui.main_window import PAGES, WINDOW_SIZE
    from gbdesk.ui.state import AppState

    app = QApplication.instance()
    state = AppState()
    # A log line wider than any window: the Logs page must still open at its left edge.
    log_file = app_paths().ensure().log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(
        "2026-01-01 10:00:00 INFO gbdesk.test: " + "a long log line " * 40 + "\n"
        "2026-01-01 10:00:01 INFO gbdesk.test: the last line\n",
        encoding="utf-8",
    )
    window = create_first_window(state)
    sizes = _sizes(window, WINDOW_SIZE, real_screen=real_screen)
    window.show()
    _settle(app)
    problems = fits_work_areas(window, "the main window") + on_screen(window, "the main window")
    try:
        for spec in PAGES:
            page = window.show_page(spec.key)
            if spec.key == "models":
                _wait(app, lambda page=page: bool(page.recommendations) and bool(page.installed))
            if spec.key == "chat":
                _wait(app, lambda page=page: bool(page._models))
            if spec.key == "logs":
                _wait(app, lambda page=page: "the last line" in page.app_log.toPlainText())
            for size_name, width, height in sizes:
                window.resize(width, height)
                _settle(app)
                if window.width() > width or window.height() > height:
                    problems.append(
                        f"{spec.key} at {size_name}: the window grew to "
                        f"{window.width()}x{window.height()}"
                    )
                for tab in _each_tab(page):
                    _settle(app, 3)
                    where = f"{spec.key}{tab} at {size_name} {width}x{height}"
                    problems += window_problems(window, where)
                    if shot is not None and size_name == sizes[0][0]:
                        shot(f"main-{spec.key}{tab.split(' tab')[0].replace(' (', '-')}")
    finally:
        window.close()
        state.shutdown()
    return problems


# --- the tests ----------------------------------------------------------------------------------


def test_every_wizard_step_holds_at_1x(qtbot, starter_model) -> None:
    assert wizard_problems() == []


def test_every_page_holds_at_1x(qtbot, configured_state, starter_model) -> None:
    assert main_window_problems() == []


def test_the_walker_sees_cut_text_a_side_scroll_and_a_hidden_button(qtbot) -> None:
    """The walker itself: each defect it looks for, made on purpose, is named."""
    from PySide6.QtWidgets import (
        QHBoxLayout,
        QLabel,
        QPushButton,
        QScrollArea,
        QVBoxLayout,
        QWidget,
    )

    window = QWidget()
    qtbot.addWidget(window)
    layout = QVBoxLayout(window)
    cut = QLabel("a sentence far too long to fit in the narrow window it is shown in")
    layout.addWidget(cut)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    wide = QWidget()
    wide.setMinimumWidth(900)
    scroll.setWidget(wide)
    layout.addWidget(scroll)
    row = QHBoxLayout()
    for text in ("One", "Two", "Three", "Start"):
        row.addWidget(QPushButton(text))
    layout.addLayout(row)
    window.setMinimumSize(1, 1)
    window.show()
    window.resize(160, 200)
    qtbot.wait(50)
    found = "\n".join(window_problems(window, "test"))
    assert "QLabel 'a sentence far too long" in found and "is cut" in found
    assert "shows a horizontal scroll bar" in found
    assert "its content needs 900 px" in found
    assert "QPushButton 'Start'" in found


@pytest.mark.qt_log_ignore("does not support raise")  # the tooltip, on the offscreen platform
def test_the_model_box_shows_the_whole_name_when_there_is_room(qtbot, configured_state) -> None:
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent

    from gbdesk.ui.main_window import MINIMUM_SIZE, MainWindow

    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.show()
    chat = window.show_page("chat")
    qtbot.waitUntil(lambda: chat.model_picker.count() > 0, timeout=30_000)
    picker = chat.model_picker
    name = picker.currentText()
    window.resize(1366, 700)
    qtbot.wait(50)
    assert picker.width() >= picker.sizeHint().width()
    assert picker.shown_text() == name
    # A model whose name is longer than the narrow window has room for: "…", the name in the
    # tooltip.
    long_name = "Meta-Llama-3.1-70B-Instruct-abliterated-uncensored.IQ2_XXS-00001-of-00002.gguf"
    picker.addItem(long_name, "/models/long.gguf")
    picker.setCurrentIndex(picker.count() - 1)
    window.resize(MINIMUM_SIZE)
    qtbot.wait(50)
    assert picker.shown_text() != long_name and picker.shown_text().endswith("…")
    assert long_name in picker.full_tooltip()
    help_event = QHelpEvent(QEvent.Type.ToolTip, QPoint(5, 5), picker.mapToGlobal(QPoint(5, 5)))
    assert picker.event(help_event)  # shows that tooltip
    assert window_problems(window, "chat with a long model name") == []


def test_hub_search_results_hold_on_the_models_page_and_in_the_wizard(
    qtbot, configured_state, search_hub
) -> None:
    """The Hub browser with results (long facts lines, memory bars, Download buttons) on the
    Models page and in the wizard's model step, at the default and the minimum sizes."""
    from gbdesk.hardware.probe import probe
    from gbdesk.ui.main_window import MINIMUM_SIZE, WINDOW_SIZE, MainWindow
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.base import WIZARD_MINIMUM_SIZE, WIZARD_SIZE
    from gbdesk.ui.wizard.choose_model import ChooseModelPage

    configured_state.set_profile(probe())
    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("models")
    page.tabs.setCurrentWidget(page.hub_browser)
    wizard = FirstRunWizard(configured_state)
    qtbot.addWidget(wizard)
    wizard.show()
    choose = wizard.page_of(ChooseModelPage)
    wizard.go_to(wizard.pages.index(choose))
    choose.hub_panel.toggle.setChecked(True)
    problems: list[str] = []
    for where, top, browser, sizes in (
        ("Models page", window, page.hub_browser, (WINDOW_SIZE, MINIMUM_SIZE)),
        ("wizard", wizard, choose.hub_panel.browser, (WIZARD_SIZE, WIZARD_MINIMUM_SIZE)),
    ):
        browser.query.setText("llama")
        browser.search()
        qtbot.waitUntil(lambda b=browser: bool(b.cards) and not b.is_busy(), timeout=60_000)
        for size in sizes:
            top.resize(size)
            qtbot.wait(100)
            qtbot.waitUntil(lambda b=browser: not b.is_busy(), timeout=60_000)
            problems += window_problems(
                top, f"Hub results, {where}, {size.width()}x{size.height()}"
            )
    assert problems == []


def test_the_window_sizes_fit_small_screens() -> None:
    from PySide6.QtCore import QSize

    from gbdesk.ui.main_window import MINIMUM_SIZE, WINDOW_SIZE
    from gbdesk.ui.screen_fit import FRAME_ALLOWANCE, fitted_size
    from gbdesk.ui.wizard.base import WIZARD_MINIMUM_SIZE, WIZARD_SIZE

    for width, height in WORK_AREAS.values():
        area = QSize(width, height)
        for preferred, minimum in ((WINDOW_SIZE, MINIMUM_SIZE), (WIZARD_SIZE, WIZARD_MINIMUM_SIZE)):
            size = fitted_size(preferred, area)
            assert size.width() + FRAME_ALLOWANCE.width() <= width
            assert size.height() + FRAME_ALLOWANCE.height() <= height
            assert size.width() >= minimum.width() and size.height() >= minimum.height()
    # A big screen gets the preferred size.
    assert fitted_size(WIZARD_SIZE, QSize(2560, 1400)) == WIZARD_SIZE


def _child(script: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


CHILD_SCRIPT = (
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication(['gbdesk', '-style', 'Fusion'])\n"
    "from gbdesk.ui.theme import apply_theme\n"
    "apply_theme(app, dark=False)\n"
    "from gbdesk.settings import Settings, save_settings\n"
    "from tests.ui.test_layouts import main_window_problems, wizard_problems\n"
    "problems = wizard_problems()\n"
    "save_settings(Settings(first_run_done=True))\n"
    "problems += main_window_problems()\n"
    "print('\\n'.join(problems))\n"
    "raise SystemExit(1 if problems else 0)\n"
)


@pytest.mark.slow
def test_every_step_and_page_holds_at_2x(tmp_path, starter_model) -> None:
    """At 2x on a 1366x768 screen (2732x1536 pixels)."""
    import json

    screen = tmp_path / "screen.json"
    screen.write_text(
        json.dumps({"screens": [{"name": "2x", "width": 2732, "height": 1536, "dpr": 1}]}),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": f"offscreen:configfile={screen}",
        "QT_SCALE_FACTOR": "2",
    }
    script = CHILD_SCRIPT.replace(
        "apply_theme(app, dark=False)\n",
        "apply_theme(app, dark=False)\nassert app.primaryScreen().devicePixelRatio() == 2\n",
    )
    done = _child(script, env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_part_that_does_not_fit_is_drawn_and_named_in_the_error_colour(qtbot) -> None:
    from PySide6.QtGui import QColor

    from gbdesk.ui.theme import current_palette
    from gbdesk.ui.widgets import MemoryBar, MemorySegment

    bar = MemoryBar()
    qtbot.addWidget(bar)
    bar.resize(400, 40)
    gib = 1024**3
    segments = [
        MemorySegment("weights", 3 * gib, "weights"),
        MemorySegment("KV cache", 3 * gib, "kv_cache"),
    ]
    bar.set_usage(segments, 4 * gib, "RAM")
    assert "does not fit: 2.0 GiB too much" in bar.summary()
    image = bar.grab().toImage()
    error = QColor(current_palette().error)
    kv = QColor(current_palette().kv_cache)
    # The last third of the bar (past the 4 of 6 GiB budget) shows the error colour, not the
    # KV cache's colour under a tint.
    row = [image.pixelColor(x, 8) for x in range(300, 395)]
    assert any(abs(c.red() - error.red()) + abs(c.green() - error.green()) < 20 for c in row)
    assert not any(c == kv for c in row)
