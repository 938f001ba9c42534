"""The layer contract: every import in gbdesk/ (function-level ones included) points down.

    base       errors, paths, settings, options (the schema), events, secrets, atomic, logs,
               bundle, botserver (botserver's config files)
    hardware, gguf
    catalog    the guide's data and Hub listings; it never judges them (no fit)
    fit        estimator, speed model, recommender
    download   Hub transfers, the model library, the starter model
    backend, shard
    app        use cases shared by the CLI and the GUI (no Qt, no argparse)
    cli, ui    faces: `gbdesk <verb>` (selftest.py and every */commands.py) and PySide6
    entry      gbdesk.cli and __main__: parse the verb, open the GUI or run the verb

A module may import its own package and the layers below it; packages that share a layer
(hardware and gguf, backend and shard, cli and ui) stay independent of each other (the base
modules are one unit). The AST is scanned, so an import
inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gbdesk"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "__init__",
            "errors",
            "paths",
            "settings",
            "options",
            "events",
            "enums",
            "secrets",
            "atomic",
            "logs",
            "bundle",
            "botserver",
        }
    ),
    frozenset({"hardware", "gguf"}),
    frozenset({"catalog"}),
    frozenset({"fit"}),
    frozenset({"download", "starter"}),
    frozenset({"backend", "shard"}),
    frozenset({"app"}),
    frozenset({"cli", "ui"}),
    frozenset({"entry"}),
)
# The entry point (`gbdesk` opens the GUI, `gbdesk <verb>` runs a verb) sits above both faces.
ENTRY_MODULES = frozenset({"gbdesk.__main__", "gbdesk.cli"})


def component(module: str) -> str:
    """The unit of the contract: ``gbdesk.<component>``; ``cli`` for a verb module (every
    ``*/commands.py`` and the self-test), ``entry`` for the entry point."""
    if module in ENTRY_MODULES:
        return "entry"
    parts = module.split(".")
    if parts[-1] == "commands" or module == "gbdesk.selftest":
        return "cli"
    return parts[1] if len(parts) > 1 else "__init__"


def rank(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"gbdesk.{name} is in no layer: add it to LAYERS in {__file__}")


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every gbdesk module ``path`` imports, with the line (top-level or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from gbdesk import fit` imports the package gbdesk.fit.
            if target == "gbdesk":
                found += [
                    (node.lineno, f"gbdesk.{alias.name}")
                    for alias in node.names
                    if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").exists()
                ]
    return [(line, name) for line, name in found if name.split(".")[0] == "gbdesk"]


def violations() -> list[str]:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        mine = component(source)
        for line, target in imports_of(path):
            theirs = component(target) if target != "gbdesk" else "__init__"
            if theirs == mine:
                continue
            below = rank(theirs) < rank(mine) or rank(theirs) == rank(mine) == 0
            if not below:
                found.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
                    f" ({mine} may not depend on {theirs})"
                )
    return found


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from gbdesk.fit.estimator import estimate_fit", "gbdesk.fit.estimator"),
        ("def f():\n    from ..fit import layout\n", "gbdesk.fit"),
        ("from gbdesk import fit", "gbdesk.fit"),
    ],
)
def test_the_scan_sees_function_level_and_relative_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: str
) -> None:
    fake = tmp_path / "gbdesk" / "catalog" / "judge.py"
    fake.parent.mkdir(parents=True)
    (tmp_path / "gbdesk" / "fit").mkdir()
    (tmp_path / "gbdesk" / "fit" / "__init__.py").write_text("", encoding="utf-8")
    fake.write_text(source, encoding="utf-8")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", tmp_path / "gbdesk")
    names = [name for _, name in imports_of(fake)]
    assert expected in names
    assert any("catalog may not depend on fit" in v for v in violations())
