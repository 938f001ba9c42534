"""The bundle's cutting rules (installers/pyinstaller/trim.py), without building a bundle."""

from __future__ import annotations

import sys

from tests.installers.conftest import INSTALLERS

sys.path.insert(0, str(INSTALLERS / "pyinstaller"))
import trim

sys.path.remove(str(INSTALLERS / "pyinstaller"))

PLUGINS = "PySide6/Qt/plugins"


def test_plugins_gbdesk_uses_are_kept() -> None:
    for kept in (
        f"{PLUGINS}/platforms/libqxcb.so",
        f"{PLUGINS}/platforms/libqwayland.so",
        f"{PLUGINS}/platforms/libqoffscreen.so",
        f"{PLUGINS}\\platforms\\qwindows.dll",
        f"{PLUGINS}/platforms/libqcocoa.dylib",
        f"{PLUGINS}/imageformats/libqsvg.so",
        f"{PLUGINS}/iconengines/libqsvgicon.so",
        f"{PLUGINS}/styles/qmodernwindowsstyle.dll",
        f"{PLUGINS}/wayland-shell-integration/libxdg-shell.so",
        "PySide6/QtWidgets.abi3.so",
        "gbdesk/ui/resources/app-icon.svg",
    ):
        assert trim.qt_plugin_kept(kept), kept


def test_plugins_gbdesk_does_not_use_are_cut() -> None:
    for cut in (
        f"{PLUGINS}/platforms/libqeglfs.so",
        f"{PLUGINS}/platforms/libqvnc.so",
        f"{PLUGINS}/platformthemes/libqgtk3.so",
        f"{PLUGINS}/platforminputcontexts/libqtvirtualkeyboardplugin.so",
        f"{PLUGINS}/imageformats/libqpdf.so",
        f"{PLUGINS}/imageformats/libqtiff.so",
        f"{PLUGINS}/qmltooling/libqmldbg_debugger.so",
        f"{PLUGINS}/tls/libqopensslbackend.so",
        f"{PLUGINS}/sqldrivers/libqsqlite.so",
        f"{PLUGINS}/wayland-shell-integration/libivi-shell.so",
    ):
        assert not trim.qt_plugin_kept(cut), cut


def test_translations_are_cut() -> None:
    assert trim.is_qt_translation("PySide6/Qt/translations/qtbase_de.qm")
    assert not trim.is_qt_translation("gbdesk/catalog/models.json")


def test_one_llama_library_name_is_dropped_and_the_linked_ones_kept() -> None:
    assert trim.llama_library_kept("llama_cpp/lib/libllama.so")
    assert trim.llama_library_kept("llama_cpp/lib/libllama.so.0")
    assert not trim.llama_library_kept("llama_cpp/lib/libllama.so.0.5.0")
    assert trim.llama_library_kept("llama_cpp/lib/llama.dll")
    assert trim.llama_library_kept("libfoo.so.1.2.3")  # outside llama_cpp: not this rule's


def test_unreachable_libraries_follow_links_transitively() -> None:
    binaries = [
        ("PySide6/QtGui.abi3.so", "/src/QtGui.abi3.so", "EXTENSION"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "/src/libQt6Gui.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6Core.so.6", "/src/libQt6Core.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6Quick.so.6", "/src/libQt6Quick.so.6", "BINARY"),
        ("libcairo.so.2", "/src/libcairo.so.2", "BINARY"),
        ("libz.so.1", "/src/libz.so.1", "BINARY"),
        ("libpython3.11.so.1.0", "/src/libpython3.11.so.1.0", "BINARY"),
        ("llama_cpp/lib/libllama.so", "/src/libllama.so", "BINARY"),
    ]
    links = {
        "/src/QtGui.abi3.so": ["libQt6Gui.so.6"],
        "/src/libQt6Gui.so.6": ["libQt6Core.so.6", "libz.so.1"],
        "/src/libQt6Quick.so.6": ["libcairo.so.2"],
    }
    unreachable = trim.unreachable_libraries(binaries, lambda source: links.get(source, []))
    assert unreachable == {"PySide6/Qt/lib/libQt6Quick.so.6", "libcairo.so.2"}
