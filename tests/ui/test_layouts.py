"""Layouts that hold: every main-window page at the window's minimum size and at 800x600, at
1x and at 2x scale (``QT_SCALE_FACTOR=2``, in a child process), with no button clipped below
what it needs to show its text and no widget running past its page (pages scroll instead)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SIZES = ((800, 600), None)  # None: the window's minimum size


def layout_problems(sizes=SIZES) -> list[str]:
    """What does not hold, per page and size (empty when every page holds)."""
    from PySide6.QtWidgets import QAbstractButton, QApplication, QScrollArea

    from gbdesk.ui.main_window import MINIMUM_SIZE, PAGES, MainWindow
    from gbdesk.ui.state import AppState

    app = QApplication.instance()
    state = AppState()
    window = MainWindow(state)
    window.show()
    problems: list[str] = []
    try:
        hint = window.minimumSizeHint()
        if hint.width() > MINIMUM_SIZE.width() or hint.height() > MINIMUM_SIZE.height():
            problems.append(
                f"the window needs {hint.width()}x{hint.height()}, more than its minimum"
            )
        for size in sizes:
            width, height = size or (MINIMUM_SIZE.width(), MINIMUM_SIZE.height())
            window.resize(width, height)
            for spec in PAGES:
                page = window.show_page(spec.key)
                for _ in range(5):
                    app.processEvents()
                where = f"{spec.key} at {width}x{height}"
                if window.width() > width or window.height() > height:
                    problems.append(
                        f"{where}: the window grew to {window.width()}x{window.height()}"
                    )
                page_rect = page.rect()
                for button in page.findChildren(QAbstractButton):
                    if not button.isVisible() or _scrolls(button, QScrollArea):
                        continue
                    needed = button.minimumSizeHint().width()
                    if button.width() + 1 < needed:
                        problems.append(
                            f"{where}: {button.text()!r} is {button.width()} px wide,"
                            f" it needs {needed}"
                        )
                    box = button.rect().translated(button.mapTo(page, button.rect().topLeft()))
                    if not page_rect.contains(box):
                        problems.append(f"{where}: {button.text()!r} runs past the page")
    finally:
        window.close()
        state.shutdown()
    return problems


def _scrolls(widget, scroll_area_type) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, scroll_area_type):
            return True
        parent = parent.parentWidget()
    return False


def test_every_page_holds_at_1x(qtbot, configured_state) -> None:
    assert layout_problems() == []


@pytest.mark.slow
def test_every_page_holds_at_2x() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2"}
    script = (
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from gbdesk.ui.theme import apply_theme\n"
        "apply_theme(app, dark=False)\n"
        "assert app.primaryScreen().devicePixelRatio() == 2\n"
        "from tests.ui.test_layouts import layout_problems\n"
        "problems = layout_problems()\n"
        "print('\\n'.join(problems))\n"
        "raise SystemExit(1 if problems else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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
