"""gbdesk.bundle: finding package data and starting gbdesk's CLI, from a Python environment.

The same functions inside a built bundle are exercised by the installed copy's self-test
(test_linux_package.py), which prints where it found the starter model and the icon.
"""

from __future__ import annotations

import subprocess

import pytest

import gbdesk
from gbdesk.bundle import (
    ResourceMissingError,
    bundle_root,
    describe,
    gbdesk_command,
    is_frozen,
    package_file,
)


def test_package_file_finds_shipped_data() -> None:
    icon = package_file("gbdesk.ui.resources", "app-icon.svg")
    assert icon.is_file()
    assert icon.read_bytes().lstrip().startswith(b"<")


def test_package_file_names_what_is_missing() -> None:
    with pytest.raises(ResourceMissingError) as caught:
        package_file("gbdesk.ui.resources", "icons/no-such-icon.svg")
    assert "icons/no-such-icon.svg" in caught.value.message
    assert caught.value.fix == "reinstall gbdesk"


def test_package_file_names_a_missing_package() -> None:
    with pytest.raises(ResourceMissingError, match=r"gbdesk\.no_such_package"):
        package_file("gbdesk.no_such_package", "data.json")


def test_outside_a_bundle() -> None:
    assert not is_frozen()
    assert bundle_root() is None
    assert describe().startswith("Python environment at ")


def test_gbdesk_command_starts_this_gbdesk() -> None:
    result = subprocess.run(
        [*gbdesk_command(), "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"gbdesk {gbdesk.__version__}"
