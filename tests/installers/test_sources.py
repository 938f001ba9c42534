"""Installer sources that need no build: the menu entry and the macOS property list."""

from __future__ import annotations

import plistlib
import subprocess

from tests.installers.conftest import INSTALLERS, require_tool


def test_desktop_entry_passes_desktop_file_validate() -> None:
    validate = require_tool("desktop-file-validate")
    desktop = INSTALLERS / "linux" / "gbdesk.desktop"
    result = subprocess.run([validate, str(desktop)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_desktop_file_validate_catches_a_broken_entry(tmp_path) -> None:
    validate = require_tool("desktop-file-validate")
    broken = tmp_path / "gbdesk.desktop"
    text = (INSTALLERS / "linux" / "gbdesk.desktop").read_text()
    broken.write_text(text.replace("Type=Application\n", ""))
    result = subprocess.run([validate, str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_macos_info_plist_has_what_finder_needs() -> None:
    with (INSTALLERS / "macos" / "Info.plist").open("rb") as handle:
        info = plistlib.load(handle)
    assert info["CFBundleIdentifier"] == "ai.generalbots.gbdesk"
    assert info["CFBundleIconFile"] == "gbdesk.icns"
    assert info["NSHighResolutionCapable"] is True
    assert tuple(int(p) for p in info["LSMinimumSystemVersion"].split(".")) >= (11,)
