"""Fixtures for the installer tests: one bundle build and one .deb, shared by the session.

The build tools come from installers/linux/install-build-tools.sh (scripts/test.sh runs it). A
missing tool skips a test on a developer's machine and fails it in CI, where it must be there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLERS = REPO / "installers"
BUILD_TIMEOUT_S = 1200


def require(condition: bool, what: str) -> None:
    """Skip (fail in CI) when a build tool or permission is missing."""
    if condition:
        return
    message = f"{what}: run installers/linux/install-build-tools.sh as root"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def clean_env(home: Path) -> dict[str, str]:
    """An environment like a fresh desktop login's: no display, no test overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GBDESK_", "QT_", "PYTHON", "HF_"))
        and key
        not in {
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_CACHE_HOME",
            "XDG_STATE_HOME",
            "VIRTUAL_ENV",
        }
    }
    env["HOME"] = str(home)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-folder bundle, built once per session with this test run's Python."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        require(False, "PyInstaller is not installed in this Python")
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, str(INSTALLERS / "pyinstaller" / "build.py"), "--dist", str(dist)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    print(result.stdout[-2000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    bundle = dist / "gbdesk"
    assert (bundle / "gbdesk").is_file()
    return bundle


@pytest.fixture(scope="session")
def deb_file(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb built from the session's bundle (zstd: the release uses xz, slower to pack)."""
    require_tool("dpkg-deb")
    out = tmp_path_factory.mktemp("deb")
    env = dict(os.environ, DEB_COMPRESSION="zstd", PYTHON=sys.executable)
    result = subprocess.run(
        [str(INSTALLERS / "linux" / "build-deb.sh"), str(bundle_dir), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    debs = list(out.glob("gbdesk_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]
