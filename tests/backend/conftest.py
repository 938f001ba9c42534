"""A real gbdesk backend (the starter model, real HTTP) running in a thread of the test process."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from gbdesk.backend.serve import ServeOptions, run_serve
from gbdesk.backend.server import BackendApp


@dataclass
class RunningBackend:
    url: str
    options: ServeOptions
    stop: threading.Event
    thread: threading.Thread

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return http_request(self.url + path, headers=headers)

    def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, raw = http_request(self.url + path, data=data, headers=headers)
        return status, json.loads(raw)

    def metric(self, name: str) -> float:
        _, text = self.get("/metrics", headers=self.auth_headers())
        for line in text.decode().splitlines():
            if line.startswith(f"gbdesk_{name} "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def auth_headers(self) -> dict[str, str]:
        key = self.options.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}


def http_request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


HELLO = [{"role": "user", "content": "Say hello to Ana."}]


def open_stream(
    backend: RunningBackend, max_tokens: int, *, wait_for_data: bool = True, stream: bool = True
) -> socket.socket:
    """A raw chat request (EOS ignored); by default returns once the first event came."""
    host, port = backend.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    body = json.dumps(
        {"messages": HELLO, "max_tokens": max_tokens, "stream": stream, "ignore_eos": True}
    ).encode()
    headers = "".join(f"{name}: {value}\r\n" for name, value in backend.auth_headers().items())
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + f"{headers}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while wait_for_data and b"data: " not in received:
        received += sock.recv(4096)
    return sock


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll ``condition``; after ``limit`` seconds fail (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def start_backend(model: Path, **overrides: Any) -> RunningBackend:
    """Serve ``model`` on an ephemeral port; returns once /health is ok."""
    options = ServeOptions(
        model=str(model), port=0, ctx=2048, parallel=4, gpu_layers="0", threads=1, queue_limit=8
    )
    options = replace(options, **overrides)
    stop, ready = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def on_ready(url: str) -> None:
        box["url"] = url
        ready.set()

    def serve() -> None:
        try:
            run_serve(options, stop=stop, on_ready=on_ready)
        except BaseException as exc:
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=serve, name="test-backend", daemon=True)
    thread.start()
    ready.wait(120)
    if "error" in box:
        raise box["error"]
    assert "url" in box, "the backend did not start"
    return RunningBackend(box["url"], options, stop, thread)


@pytest.fixture(scope="module")
def backend_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module-scoped servers read settings from their own empty home, never the real one."""
    home = tmp_path_factory.mktemp("backend-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GBDESK_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def backend(starter_model: Path, backend_home: Path) -> Iterator[RunningBackend]:
    """Four slots of 512 tokens each, shared by the tests of a module."""
    running = start_backend(starter_model)
    yield running
    running.stop.set()
    running.thread.join(30)


@pytest.fixture(scope="module")
def templated_backend(starter_model: Path, backend_home: Path) -> Iterator[tuple[BackendApp, str]]:
    """The starter model served over real HTTP in this process, its chat template swappable
    (``app.attach(app.engine, template)``): (the app, its ``/v1`` URL)."""
    from gbdesk.backend.chat_template import template_for_model
    from gbdesk.backend.engine import Engine
    from gbdesk.backend.model import ContextOptions, LlamaModel
    from gbdesk.backend.server import BackendServer

    model = LlamaModel(starter_model, ContextOptions(n_ctx=2048, parallel=2, threads=1))
    engine = Engine(model, queue_limit=8)
    app = BackendApp(api_key=None, model_id="starter")
    app.attach(engine, template_for_model(model))
    server = BackendServer("127.0.0.1", 0, app)
    server.serve_in_thread()
    try:
        yield app, f"http://127.0.0.1:{server.port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        engine.close()
