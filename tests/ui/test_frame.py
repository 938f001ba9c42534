"""The app's frame: main window, lazy pages, shortcuts, theme, icons, wizard navigation."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

ROOT = Path(__file__).resolve().parents[2]


def test_resources_in_the_package_match_the_sources() -> None:
    sources = ROOT / "resources"
    packaged = ROOT / "gbdesk" / "ui" / "resources"
    names = sorted(p.relative_to(sources) for p in sources.rglob("*") if p.is_file())
    assert names, "no resources found"
    for name in names:
        assert filecmp.cmp(sources / name, packaged / name, shallow=False), name


def test_every_icon_renders(qapp) -> None:
    from PySide6.QtCore import QSize

    from gbdesk.ui.resources_access import app_icon, icon

    for svg in (ROOT / "resources" / "icons").glob("*.svg"):
        pixmap = icon(svg.stem, "#ff0000").pixmap(QSize(24, 24), 2.0)
        assert pixmap.width() == 48
        image = pixmap.toImage()
        painted = any(image.pixelColor(x, y).alpha() > 0 for x in range(48) for y in range(48))
        assert painted, svg.name
    assert not app_icon().pixmap(64, 64).isNull()


def test_both_themes_fill_every_placeholder(qapp) -> None:
    from gbdesk.ui.theme import DARK, LIGHT, apply_theme, current_palette, style_sheet

    for palette in (LIGHT, DARK):
        sheet = style_sheet(palette)
        assert "$" not in sheet
        assert palette.accent in sheet
    apply_theme(qapp, dark=True)
    assert current_palette() is DARK
    apply_theme(qapp, dark=False)
    assert current_palette() is LIGHT


def test_main_window_builds_pages_only_when_opened(qtbot, configured_state) -> None:
    from gbdesk.ui.main_window import PAGES, MainWindow

    window = MainWindow(configured_state, initial_page="settings")
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)
    # The first page is built right after the window's first paint.
    qtbot.waitUntil(lambda: window.built_pages() == ("settings",), timeout=10_000)
    for number, spec in enumerate(PAGES, start=1):
        key = Qt.Key(Qt.Key.Key_0 + number)
        qtbot.keyClick(window.windowHandle(), key, Qt.KeyboardModifier.ControlModifier)
        assert window.current_page_key() == spec.key
        assert window.stack.currentWidget() is window.page(spec.key)
    assert set(window.built_pages()) == {spec.key for spec in PAGES}


def test_the_menu_has_a_shortcut_for_every_page(qtbot, configured_state) -> None:
    from gbdesk.ui.main_window import PAGES, MainWindow

    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.finish_start()  # done right after the first paint
    shortcuts = {
        action.shortcut().toString()
        for menu in window.menuBar().actions()
        for action in menu.menu().actions()
    }
    for number in range(1, len(PAGES) + 1):
        assert QKeySequence(f"Ctrl+{number}").toString() in shortcuts


def test_wizard_walks_forward_and_back(qtbot, state) -> None:
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.hardware import HardwarePage

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    assert wizard.index == 0
    assert not wizard.back_button.isEnabled()
    qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)
    assert isinstance(wizard.current_page(), HardwarePage)
    qtbot.waitUntil(wizard.next_button.isEnabled, timeout=30_000)
    qtbot.mouseClick(wizard.back_button, Qt.MouseButton.LeftButton)
    assert wizard.index == 0


def test_hardware_page_shows_this_machine(qtbot, state) -> None:
    import psutil

    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.hardware import HardwarePage

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.next()
    page = wizard.current_page()
    assert isinstance(page, HardwarePage)
    qtbot.waitUntil(lambda: state.profile is not None, timeout=30_000)
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count()
    assert f"{cores} cores" in page.summary.cpu.text()
    assert "in total" in page.summary.memory.text()
    assert "free of" in page.summary.disk.text()


def test_an_uncaught_exception_shows_the_log_path(qtbot, monkeypatch) -> None:
    import sys

    from PySide6.QtWidgets import QMessageBox

    from gbdesk.paths import app_paths
    from gbdesk.ui import app as app_module

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.informativeText()))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    app_module.install_exception_hook()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert shown and str(app_paths().log_file) in shown[0]


@pytest.mark.parametrize("dark", [False, True])
def test_pages_render_in_both_themes(qtbot, configured_state, qapp, dark) -> None:
    from gbdesk.ui.main_window import PAGES, MainWindow
    from gbdesk.ui.theme import apply_theme

    apply_theme(qapp, dark=dark)
    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.show()
    for spec in PAGES:
        window.show_page(spec.key)
        assert not window.grab().isNull()
