"""Print pip constraints that pin every dependency of gbdesk to the lowest version it declares.

The min-versions job (scripts/test-min-versions.sh) installs with these constraints, so a floor in
pyproject.toml that the code has outgrown fails the suite instead of a user's first run.
Usage: python scripts/min_constraints.py [EXTRA ...] > constraints.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lowest_pins(requirements: list[str]) -> list[str]:
    """``name==floor`` for each requirement that has a ``>=`` or ``~=`` floor."""
    pins = []
    for line in requirements:
        requirement = Requirement(line)
        floors = [s.version for s in requirement.specifier if s.operator in {">=", "~=", "=="}]
        if floors:
            pins.append(f"{requirement.name}=={floors[0]}")
    return pins


def main() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in sys.argv[1:]:
        requirements += project["optional-dependencies"][extra]
    print("\n".join(lowest_pins(requirements)))


if __name__ == "__main__":
    main()
