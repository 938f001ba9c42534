"""The server before its model is attached: llama-server's 503 answers; body limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gbdesk.backend.server import MAX_BODY_BYTES, BackendApp, BackendServer
from tests.backend.conftest import http_request

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


@pytest.fixture
def loading_server() -> Iterator[str]:
    server = BackendServer("127.0.0.1", 0, BackendApp(api_key=None, model_id="m"))
    server.serve_in_thread()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()


def test_health_and_models_say_loading(loading_server: str) -> None:
    for path in ("/health", "/v1/models"):
        status, raw = http_request(loading_server + path)
        assert status == 503
        assert json.loads(raw)["error"] | {"param": None} == LOADING["error"] | {"param": None}
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    status, raw = http_request(loading_server + "/v1/chat/completions", data=body)
    assert status == 503
    status, raw = http_request(loading_server + "/metrics")
    assert status == 200
    assert b'gbdesk_requests_total{path="/health",status="503"} 1' in raw


def test_oversized_body_is_413(loading_server: str) -> None:
    body = b'{"prompt": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    status, raw = http_request(loading_server + "/v1/completions", data=body)
    assert status == 413
    assert json.loads(raw)["error"]["code"] == 413
