"""Start gbdesk at login (in the tray, with the backend running), per platform.

Linux: an XDG autostart ``.desktop`` file; macOS: a LaunchAgent; Windows: the ``Run`` key. The
entry runs ``gbdesk --background``. With ``GBDESK_HOME`` set (tests, portable
installs) the Linux/macOS entry goes under that folder instead of the real home.
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shlex
import sys
from pathlib import Path

from gbdesk.errors import GbdeskError
from gbdesk.paths import HOME_ENV

ENTRY_NAME = "gbdesk"


def launch_command() -> list[str]:
    """``gbdesk --background``: ``python -m gbdesk`` from a Python environment, the bundle's own
    executable in an installer bundle (see :func:`gbdesk.bundle.gbdesk_command`)."""
    from gbdesk.bundle import gbdesk_command

    return [*gbdesk_command(), "--background"]


def autostart_file() -> Path | None:
    """Where the login entry lives on this platform (None on Windows: the registry)."""
    home = os.environ.get(HOME_ENV)
    if sys.platform == "darwin":
        base = Path(home) / "LaunchAgents" if home else Path.home() / "Library/LaunchAgents"
        return base / "org.generalbots.gbdesk.plist"
    if sys.platform.startswith("win"):
        return None
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    base = Path(home) / "autostart" if home else config / "autostart"
    return base / f"{ENTRY_NAME}.desktop"


def is_start_at_login_enabled() -> bool:
    path = autostart_file()
    if path is not None or sys.platform != "win32":  # the platform test is for the type checker
        return path is not None and path.exists()
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, _RUN_KEY) as key:
            winreg.QueryValueEx(key, ENTRY_NAME)
    except OSError:
        return False
    return True


_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


def set_start_at_login(enabled: bool) -> None:
    """Add or remove the login entry.

    Raises:
        GbdeskError: the entry cannot be written.
    """
    path = autostart_file()
    try:
        if path is None:
            _set_windows(enabled)
        elif not enabled:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            if sys.platform == "darwin":
                tmp.write_bytes(
                    plistlib.dumps(
                        {
                            "Label": "org.generalbots.gbdesk",
                            "ProgramArguments": launch_command(),
                            "RunAtLoad": True,
                        }
                    )
                )
            else:
                tmp.write_text(
                    "[Desktop Entry]\nType=Application\nName=gbdesk\n"
                    "Comment=General Bots desktop: local bot backend\n"
                    f"Exec={shlex.join(launch_command())}\nIcon=gbdesk\n"
                    "X-GNOME-Autostart-enabled=true\n",
                    encoding="utf-8",
                )
            os.replace(tmp, path)
    except OSError as exc:
        raise GbdeskError(
            f"cannot change the start-at-login entry: {exc}",
            fix=f"check that {path.parent if path else 'the registry'} is writable",
        ) from exc


def _set_windows(enabled: bool) -> None:
    if sys.platform != "win32":  # only called there; the test tells the type checker too
        raise OSError("the Windows registry exists only on Windows")
    import subprocess
    import winreg

    with winreg.OpenKey(winreg.HKEY_CURRENT_USER, _RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
        if enabled:
            winreg.SetValueEx(
                key, ENTRY_NAME, 0, winreg.REG_SZ, subprocess.list2cmdline(launch_command())
            )
        else:
            with contextlib.suppress(FileNotFoundError):
                winreg.DeleteValue(key, ENTRY_NAME)
