"""The core never imports Qt: only gbdesk/ui/ may."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gbdesk

PACKAGE_ROOT = Path(gbdesk.__file__).parent
QT_MODULES = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "qtpy")


def _imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_core_module_imports_qt() -> None:
    offenders = []
    for source in PACKAGE_ROOT.rglob("*.py"):
        if (PACKAGE_ROOT / "ui") in source.parents:
            continue
        for name in _imported_modules(source):
            if name.split(".")[0] in QT_MODULES:
                offenders.append(f"{source.relative_to(PACKAGE_ROOT)} imports {name}")
    assert offenders == []


def test_the_check_finds_a_qt_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from PySide6.QtCore import QObject\n", encoding="utf-8")
    assert "PySide6.QtCore" in _imported_modules(sample)


def test_importing_every_cli_verb_loads_no_qt() -> None:
    code = (
        "import sys, gbdesk.cli as c; c.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{QT_MODULES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
