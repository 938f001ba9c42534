"""`gbdesk --self-test` from the source checkout: the real model, the real backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gbdesk.selftest import STEPS


def _self_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gbdesk", "--self-test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.model
@pytest.mark.slow
def test_self_test_passes_and_times_every_step(starter_model: Path) -> None:
    result = _self_test(dict(os.environ, GBDESK_STARTER_MODEL=str(starter_model)))
    assert result.returncode == 0, result.stdout + result.stderr
    for name, _, _ in STEPS:
        line = next(line for line in result.stdout.splitlines() if f"] {name} " in line)
        assert line.startswith("[ok  ]"), line
        assert " s  " in line
    assert "self-test passed" in result.stdout


def test_self_test_says_what_failed_and_exits_1(tmp_path: Path) -> None:
    env = dict(os.environ, GBDESK_STARTER_MODEL=str(tmp_path / "missing.gguf"))
    result = _self_test(env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("[FAIL] starter model") and "fix:" in line for line in lines)
    assert any(line.startswith("[FAIL] generate") and "not run" in line for line in lines)
    assert any(line.startswith("[ok  ] probe") for line in lines)
    assert "self-test FAILED (starter model, generate" in result.stderr
