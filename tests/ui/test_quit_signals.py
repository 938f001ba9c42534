"""A logout or `kill` (SIGTERM) quits the app as Quit does: it exits 0 and stops the backend it
started; nothing is left holding the port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gbdesk.settings import Settings, save_settings
from tests.backend.conftest import http_request
from tests.free_ports import free_port
from tests.support.processes import child_process


def _health(port: int) -> int | None:
    try:
        return http_request(f"http://127.0.0.1:{port}/health")[0]
    except OSError:
        return None


def _wait(what: str, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_termination_signal_quits_the_app_and_its_backend(
    starter_model: Path, tmp_path: Path, signum: int
) -> None:
    port = free_port()
    save_settings(
        Settings(
            first_run_done=True,
            model=str(starter_model),
            backend_port=port,
            context_length=512,
            parallel=1,
        )
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "app.log"
    with (
        log.open("wb") as output,
        child_process(
            [sys.executable, "-m", "gbdesk.ui"], env=env, stdout=output, stderr=subprocess.STDOUT
        ) as app,
    ):
        _wait("the resumed backend", lambda: _health(port) == 200, 120)
        app.send_signal(signum)
        assert app.wait(60) == 0, log.read_text(errors="replace")
        _wait("the backend's port to close", lambda: _health(port) is None, 30)
