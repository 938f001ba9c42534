"""A full queue answers 429; an API key is required when set, and off 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gbdesk.backend.serve import ServeOptions
from gbdesk.cli import main
from gbdesk.errors import UsageError
from tests.backend.conftest import HELLO, RunningBackend, open_stream, start_backend, wait_for

pytestmark = pytest.mark.model

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def one_slot_backend(starter_model: Path, backend_home: Path) -> Iterator[RunningBackend]:
    """One slot, room for one waiting request, and an API key."""
    running = start_backend(starter_model, ctx=1024, parallel=1, queue_limit=1, api_key=KEY)
    yield running
    running.stop.set()
    running.thread.join(30)


def test_full_queue_answers_429(one_slot_backend: RunningBackend) -> None:
    backend = one_slot_backend
    headers = backend.auth_headers()
    busy = open_stream(backend, 900)
    waiting = open_stream(backend, 4, wait_for_data=False)
    wait_for(lambda: backend.metric("requests_queued") == 1, "the second request to queue")
    status, reply = backend.post(
        "/v1/chat/completions", {"messages": HELLO, "max_tokens": 2}, headers
    )
    assert status == 429
    assert reply["error"]["type"] == "rate_limit_error"
    busy.close()
    waiting.close()
    wait_for(lambda: backend.metric("requests_processing") == 0, "both slots to free")
    wait_for(lambda: backend.metric("requests_queued") == 0, "the queue to drain")
    status, reply = backend.post(
        "/v1/chat/completions", {"messages": HELLO, "max_tokens": 2}, headers
    )
    assert status == 200


def test_api_key_is_required_when_set(one_slot_backend: RunningBackend) -> None:
    backend = one_slot_backend
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        status, reply = backend.post("/v1/chat/completions", {"messages": HELLO}, headers)
        assert status == 401
        assert reply["error"]["type"] == "authentication_error"
    status, _ = backend.get("/v1/models")
    assert status == 401
    status, raw = backend.get("/health")  # botserver's health check carries no key
    assert (status, json.loads(raw)) == (200, {"status": "ok"})
    with openai.OpenAI(base_url=backend.url + "/v1", api_key=KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="m", messages=HELLO, max_tokens=2)
    assert reply.usage.completion_tokens <= 2
    with (
        openai.OpenAI(base_url=backend.url + "/v1", api_key="sk-bad", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


def test_other_hosts_need_an_api_key(starter_model: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UsageError, match="without a key"):
        ServeOptions(model=str(starter_model), host="0.0.0.0").check()
    ServeOptions(model=str(starter_model), host="0.0.0.0", api_key=KEY).check()
    code = main(["serve", "--model", str(starter_model), "--host", "0.0.0.0", "--port", "0"])
    assert code == 2
    assert "--api-key" in capsys.readouterr().err


def test_port_in_use_names_the_port(
    one_slot_backend: RunningBackend, starter_model: Path, capsys: pytest.CaptureFixture
) -> None:
    port = one_slot_backend.url.rsplit(":", 1)[1]
    code = main(["serve", "--model", str(starter_model), "--port", port, "--gpu-layers", "0"])
    assert code == 4
    err = capsys.readouterr().err
    assert f"port {port}" in err
    assert "--port" in err
