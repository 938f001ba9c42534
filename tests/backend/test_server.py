"""The backend over real HTTP with the official openai client and the real starter model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import openai
import pytest

from tests.backend.conftest import HELLO, RunningBackend, open_stream, wait_for

pytestmark = pytest.mark.model


@pytest.fixture
def client(backend: RunningBackend) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=backend.url + "/v1", api_key="none", max_retries=0) as client:
        yield client


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [model.id for model in models] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]


def test_chat_non_streaming(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="any", messages=HELLO, max_tokens=12)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in {"stop", "length"}
    assert 1 <= reply.usage.completion_tokens <= 12
    assert reply.usage.prompt_tokens > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    common = {"model": "any", "messages": HELLO, "max_tokens": 24, "temperature": 0}
    whole = client.chat.completions.create(**common).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            **common, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in {"stop", "length"}
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 24


def test_completions_and_stop_strings(client: openai.OpenAI) -> None:
    prompt = "Count: 1, 2, 3, 4,"
    full = client.completions.create(model="any", prompt=prompt, max_tokens=16, temperature=0)
    text = full.choices[0].text
    assert full.object == "text_completion"
    assert len(text) > 6
    stop = text[3:6]
    cut = client.completions.create(
        model="any", prompt=prompt, max_tokens=16, temperature=0, stop=[stop, "never"]
    )
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="any", prompt=prompt, max_tokens=16, temperature=0, stop=stop, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed) == text[: text.index(stop)]


def test_multibyte_text_streams_whole_characters(client: openai.OpenAI) -> None:
    common = {
        "model": "any",
        "messages": [{"role": "user", "content": "Écris « café » et 日本 trois fois: "}],
        "max_tokens": 40,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**common).choices[0].message.content
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**common, stream=True)
    ]
    assert "\ufffd" not in "".join(pieces)
    assert "".join(pieces) == whole


def _stream_tokens(backend: RunningBackend, max_tokens: int, results: list) -> None:
    with openai.OpenAI(base_url=backend.url + "/v1", api_key="none", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="any",
            messages=[{"role": "user", "content": f"Tell story number {len(results)}."}],
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        chunks = list(stream)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    results.append((finish, chunks[-1].usage.completion_tokens))


def test_four_concurrent_streams_all_complete(backend: RunningBackend) -> None:
    results: list = []
    threads = [
        threading.Thread(target=_stream_tokens, args=(backend, 48, results)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == [("length", 48)] * 4


def test_dropped_client_frees_its_slot(backend: RunningBackend) -> None:
    before = backend.metric("completion_tokens_total")
    results: list = []
    other = threading.Thread(target=_stream_tokens, args=(backend, 40, results))
    dropped = open_stream(backend, 500)
    other.start()
    dropped.close()
    other.join(120)
    assert results == [("length", 40)]
    wait_for(lambda: backend.metric("requests_processing") == 0, "the slot to be freed")
    generated = backend.metric("completion_tokens_total") - before
    assert generated < 40 + 500  # the dropped stream stopped early
    # and the server still serves
    status, body = backend.post("/v1/chat/completions", {"messages": HELLO, "max_tokens": 3})
    assert status == 200
    assert body["usage"]["completion_tokens"] <= 3


def test_client_leaving_a_non_streaming_request_frees_its_slot(backend: RunningBackend) -> None:
    before = backend.metric("completion_tokens_total")
    wait_for(lambda: backend.metric("requests_processing") == 0, "idle slots")
    left = open_stream(backend, 450, wait_for_data=False, stream=False)
    wait_for(lambda: backend.metric("requests_processing") == 1, "the request to start")
    left.close()
    wait_for(lambda: backend.metric("requests_processing") == 0, "the slot to be freed")
    assert backend.metric("completion_tokens_total") - before < 450


LONG_TEXT = "banana " * 700  # far over a slot's 512 tokens


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        ({"model": "x"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": HELLO, "max_tokens": -5}, "max_tokens"),
        ({"messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"messages": HELLO, "stop": 5}, "stop"),
        ({"messages": [{"role": "user", "content": LONG_TEXT}]}, "messages"),
        ([1, 2], None),
    ],
)
def test_bad_requests_get_openai_errors(
    backend: RunningBackend, body: object, param: str | None
) -> None:
    status, reply = backend.post("/v1/chat/completions", body)
    assert status == 400
    error = reply["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert error["param"] == param
    status, reply = backend.post("/v1/chat/completions", {"messages": HELLO, "max_tokens": 2})
    assert status == 200


def test_prompt_over_context_is_refused_not_truncated(backend: RunningBackend) -> None:
    status, reply = backend.post("/v1/completions", {"prompt": LONG_TEXT, "max_tokens": 2})
    assert status == 400
    assert reply["error"]["code"] == "context_length_exceeded"
    assert reply["error"]["param"] == "prompt"
    assert "511" in reply["error"]["message"]


def test_unknown_path_and_method(backend: RunningBackend) -> None:
    status, raw = backend.get("/v1/nothing")
    assert status == 404
    assert json.loads(raw)["error"]["code"] == "not_found"
    status, raw = backend.get("/v1/chat/completions")
    assert status == 405


def test_health_metrics_and_prefix_reuse(backend: RunningBackend) -> None:
    status, raw = backend.get("/health")
    assert (status, json.loads(raw)) == (200, {"status": "ok"})
    first = backend.post("/v1/chat/completions", {"messages": HELLO, "max_tokens": 8})[1]
    answer = first["choices"][0]["message"]["content"]
    turn = [*HELLO, {"role": "assistant", "content": answer}, {"role": "user", "content": "Bye"}]
    second = backend.post("/v1/chat/completions", {"messages": turn, "max_tokens": 4})[1]
    assert (
        second["usage"]["prompt_tokens_details"]["cached_tokens"] >= first["usage"]["prompt_tokens"]
    )
    _, text = backend.get("/metrics")
    metrics = text.decode()
    assert 'gbdesk_requests_total{path="/v1/chat/completions",status="200"}' in metrics
    assert backend.metric("completion_tokens_total") > 0
    assert backend.metric("slots") == 4
    assert backend.metric("tokens_per_second") > 0
