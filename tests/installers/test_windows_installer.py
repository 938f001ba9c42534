"""The NSIS script compiles with Debian's makensis against a bundle laid out like Windows'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.installers.conftest import INSTALLERS, REPO, require_tool

SCRIPT = INSTALLERS / "windows" / "gbdesk.nsi"


@pytest.fixture(scope="module")
def icon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(INSTALLERS))
    try:
        from icons import render_icons
    finally:
        sys.path.remove(str(INSTALLERS))
    out = tmp_path_factory.mktemp("icons")
    render_icons(out)
    return out / "gbdesk.ico"


def _windows_bundle(root: Path, *, with_cli: bool = True) -> Path:
    """The file names PyInstaller's Windows build produces (contents do not matter here)."""
    bundle = root / "gbdesk"
    (bundle / "_internal" / "gbdesk" / "models").mkdir(parents=True)
    (bundle / "gbdesk.exe").write_bytes(b"MZ app")
    if with_cli:
        (bundle / "gbdesk-cli.exe").write_bytes(b"MZ cli")
    (bundle / "_internal" / "python311.dll").write_bytes(b"MZ python")
    (bundle / "_internal" / "gbdesk" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(
        b"GGUF"
    )
    return bundle


def _makensis(bundle: Path, icon: Path, out: Path) -> subprocess.CompletedProcess[str]:
    import gbdesk

    return subprocess.run(
        [
            require_tool("makensis"),
            "-V2",
            "-WX",  # warnings are errors
            f"-DVERSION={gbdesk.__version__}",
            f"-DBUNDLE_DIR={bundle}",
            f"-DICON={icon}",
            f"-DOUT_FILE={out}",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_nsis_script_compiles_into_an_installer(tmp_path: Path, icon: Path) -> None:
    out = tmp_path / "gbdesk-setup.exe"
    result = _makensis(_windows_bundle(tmp_path), icon, out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes()[:2] == b"MZ"


def test_nsis_script_refuses_an_incomplete_bundle(tmp_path: Path, icon: Path) -> None:
    out = tmp_path / "gbdesk-setup.exe"
    result = _makensis(_windows_bundle(tmp_path, with_cli=False), icon, out)
    assert result.returncode != 0
    assert "gbdesk-cli.exe is missing" in result.stdout + result.stderr
    assert not out.exists()


def test_nsis_script_installs_per_user_without_admin_rights() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    assert "RequestExecutionLevel user" in script
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\gbdesk"' in script
    assert "HKLM" not in script
