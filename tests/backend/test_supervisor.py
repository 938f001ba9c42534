"""The supervisor runs a real `python -m gbdesk serve` child process."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from gbdesk.backend.errors import BackendStartError
from gbdesk.backend.serve import ServeOptions
from gbdesk.backend.supervisor import BackendState, BackendStatus, BackendSupervisor
from tests.backend.conftest import http_request
from tests.free_ports import free_port

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _options(model: Path, port: int, **extra: object) -> ServeOptions:
    return ServeOptions(
        model=str(model), port=port, ctx=512, parallel=1, gpu_layers="0", threads=1, **extra
    )


def _wait_for_state(supervisor: BackendSupervisor, state: BackendState, restarts: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = supervisor.status()
        if status.state is state and status.restarts == restarts:
            return
        time.sleep(0.1)
    raise AssertionError(f"still {supervisor.status()}")


def test_start_health_crash_restart_stop(starter_model: Path, tmp_path: Path) -> None:
    states: list[BackendStatus] = []
    supervisor = BackendSupervisor(
        _options(starter_model, free_port(), api_key="sk-supervised-key-123"),
        log_file=tmp_path / "backend.log",
        on_state=states.append,
    )
    try:
        status = supervisor.start()
        assert status.state is BackendState.READY
        first_pid = status.pid
        assert http_request(status.url + "/health")[0] == 200
        # The key reached the child through its environment, not its command line.
        assert http_request(status.url + "/v1/models")[0] == 401
        code, raw = http_request(
            status.url + "/v1/models", headers={"Authorization": "Bearer sk-supervised-key-123"}
        )
        assert code == 200
        assert json.loads(raw)["data"][0]["id"] == starter_model.name

        os.kill(first_pid, signal.SIGKILL)
        _wait_for_state(supervisor, BackendState.READY, restarts=1)
        assert supervisor.status().pid not in {None, first_pid}
    finally:
        supervisor.stop()
    assert supervisor.status().state is BackendState.STOPPED
    assert supervisor.status().pid is None
    seen = [s.state for s in states]
    assert seen[:3] == [BackendState.STARTING, BackendState.LOADING, BackendState.READY]
    assert BackendState.CRASHED in seen
    assert seen.index(BackendState.RESTARTING) > seen.index(BackendState.CRASHED)
    assert seen[-2:] == [BackendState.STOPPING, BackendState.STOPPED]
    log_text = (tmp_path / "backend.log").read_text()
    assert "sk-supervised-key-123" not in log_text


def test_taken_port_is_reported(starter_model: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        supervisor = BackendSupervisor(
            _options(starter_model, port), log_file=tmp_path / "backend.log"
        )
        with pytest.raises(BackendStartError, match=f"port {port} .* already in use"):
            supervisor.start()
    assert supervisor.status().state is BackendState.FAILED


def test_corrupt_model_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(200))
    supervisor = BackendSupervisor(_options(broken, free_port()), log_file=tmp_path / "b.log")
    with pytest.raises(BackendStartError, match="cannot load the model") as caught:
        supervisor.start()
    assert "Traceback" not in (tmp_path / "b.log").read_text()
    assert "broken.gguf" in caught.value.message
    # The child's own typed error travelled as JSON, class and fix included.
    cause = caught.value.details["cause"]
    assert cause["kind"] == "ModelLoadError" and cause["exit_code"] == 3
    assert supervisor.status().error is not None
    assert type(supervisor.status().error).__name__ == "ModelLoadError"


def test_the_child_command_runs_gbdesk_itself_in_an_installed_bundle(monkeypatch) -> None:
    import sys

    from gbdesk.backend.supervisor import serve_command

    options = ServeOptions(model="/models/m.gguf", port=8123)
    assert serve_command(options)[:4] == [sys.executable, "-m", "gbdesk", "serve"]
    # Typed events, not prose, come back; the child stops when this process is gone.
    assert serve_command(options)[-2:] == ["--events", "--lifeline"]
    # In a PyInstaller bundle sys.executable is gbdesk's own program, not a Python.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = serve_command(options)
    assert command[:2] == [sys.executable, "serve"]
    assert command[command.index("--port") + 1] == "8123"
