"""Where gbdesk's own files are, whether it runs from a checkout, a wheel or an installer bundle.

The one place that knows about installer bundles (PyInstaller). Package data is found through
``importlib.resources``, which works the same in all three, so no other module checks
``sys.frozen`` or builds paths from ``sys._MEIPASS``. Qt resources (icons, style sheet) have
their own finder in ``gbdesk.ui.resources_access``, built the same way.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from gbdesk.errors import GbdeskError


class ResourceMissingError(GbdeskError):
    """A file that ships with gbdesk is not where the package says it is."""


def is_frozen() -> bool:
    """Whether this process runs from an installer bundle rather than a Python environment."""
    return bool(getattr(sys, "frozen", False))


def bundle_root() -> Path | None:
    """The bundle's folder of Python modules and data (``_internal``), or None outside one."""
    if not is_frozen():
        return None
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))


def package_file(package: str, name: str) -> Path:
    """The path of the data file ``name`` (``/``-separated) shipped in ``package``.

    Raises:
        ResourceMissingError: the file is not there (a broken install or bundle).
    """
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise ResourceMissingError(
            f"gbdesk's package {package} is missing", fix="reinstall gbdesk"
        ) from exc
    entry = root.joinpath(*name.split("/"))
    if not entry.is_file():
        raise ResourceMissingError(
            f"gbdesk's file {name} is missing from {package}", fix="reinstall gbdesk"
        )
    # Wheels and bundles unpack package data to real folders; a zipped install would not.
    return Path(str(entry))


def gbdesk_command() -> list[str]:
    """The command line that starts gbdesk's CLI in a child process.

    ``[python, -m, gbdesk]`` from a Python environment; the bundle's own executable in an
    installer bundle, where there is no separate Python interpreter to call.
    """
    if is_frozen():
        return [sys.executable]
    return [sys.executable, "-m", "gbdesk"]


def describe() -> str:
    """One line saying how this copy of gbdesk is installed."""
    root = bundle_root()
    if root is not None:
        return f"installer bundle at {root.parent}"
    return f"Python environment at {sys.prefix}"
