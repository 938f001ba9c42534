"""Embeddings, structured output, reasoning, token endpoints and refused fields, over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import llama_cpp
import numpy as np
import openai
import pytest

from gbdesk.backend.chat_template import ChatTemplate, builtin_template_name, template_for_model
from gbdesk.backend.model import ContextOptions, LlamaModel
from gbdesk.backend.reasoning import ReasoningSplitter
from gbdesk.backend.tools import ToolCall, ToolCallParser
from tests.backend.conftest import HELLO, RunningBackend, start_backend
from tests.free_ports import free_port
from tests.support.gguf_edit import copy_without_keys

pytestmark = pytest.mark.model

TEXTS = ["The cat sat on the mat.", "Quantum chromodynamics describes the strong force."]


@pytest.fixture(scope="module")
def both(starter_model: Path, backend_home: Path) -> Iterator[tuple[RunningBackend, str]]:
    """Chat on one port, the starter model as a mean-pooled embedding model on another."""
    embedding_port = free_port()
    running = start_backend(
        starter_model,
        embedding_model=str(starter_model),
        embedding_port=embedding_port,
        embedding_pooling="mean",
    )
    yield running, f"http://127.0.0.1:{embedding_port}"
    running.stop.set()
    running.thread.join(30)


@pytest.fixture(scope="module")
def reference(starter_model: Path) -> Iterator[llama_cpp.Llama]:
    model = llama_cpp.Llama(
        str(starter_model),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=512,
        n_threads=1,
        flash_attn=True,  # gbdesk, like llama-server, lets llama.cpp choose (on here)
        verbose=False,
    )
    yield model
    model.close()


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)


def test_openai_embeddings_match_llama_cpp(
    both: tuple[RunningBackend, str], reference: llama_cpp.Llama
) -> None:
    _, embedding_url = both
    with _client(embedding_url) as client:
        reply = client.embeddings.create(model="any", input=TEXTS)
        single = client.embeddings.create(model="any", input=TEXTS[0])
        packed = client.embeddings.create(model="any", input=TEXTS, encoding_format="base64")
    assert [item.index for item in reply.data] == [0, 1]
    assert reply.usage.prompt_tokens == sum(len(reference.tokenize(t.encode())) for t in TEXTS)
    for text, item in zip(TEXTS, reply.data, strict=True):
        ours = np.array(item.embedding)
        theirs = np.array(reference.embed(text))
        cosine = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
        assert cosine >= 0.999
        assert abs(np.linalg.norm(ours) - 1.0) < 1e-4  # normalised, as llama-server
    assert np.allclose(single.data[0].embedding, reply.data[0].embedding, atol=1e-6)
    # asked for explicitly, base64 comes back as sent: float32 little-endian bytes
    decoded = np.frombuffer(base64.b64decode(packed.data[1].embedding), dtype="<f4")
    assert np.allclose(decoded, reply.data[1].embedding, atol=1e-6)


def test_embeddings_raw_base64_and_over_context_inputs(
    both: tuple[RunningBackend, str],
) -> None:
    backend, embedding_url = both
    long_text = "knowledge base chunk " * 400  # about 2,400 tokens: over the 512 context
    status, reply = backend.post(
        "/v1/embeddings", {"input": [long_text, "short"], "encoding_format": "base64"}
    )
    assert status == 200
    vector = np.frombuffer(base64.b64decode(reply["data"][0]["embedding"]), dtype="<f4")
    assert vector.shape == (576,)
    assert reply["usage"]["prompt_tokens"] <= 512 + 5
    for body, param in [
        ({"input": []}, "input"),
        ({"input": [""]}, "input"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x", "dimensions": 8}, "dimensions"),
    ]:
        status, reply = backend.post("/v1/embeddings", body)
        assert (status, reply["error"]["param"]) == (400, param)
    with _client(embedding_url) as client:
        models = client.models.list().data
    assert {model.id for model in models} == {"SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert len(models) == 2  # the chat model and the embedding model


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 3},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


def test_json_schema_answers_validate(both: tuple[RunningBackend, str]) -> None:
    backend, _ = both
    response_format = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}
    messages = [{"role": "user", "content": "Describe a person as JSON."}]
    with _client(backend.url) as client:
        reply = client.chat.completions.create(
            model="m", messages=messages, response_format=response_format, max_tokens=120,
            temperature=0.7, seed=3,
        )  # fmt: skip
        jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)
        assert reply.choices[0].finish_reason == "stop"
        stream = client.chat.completions.create(
            model="m", messages=messages, response_format=response_format, max_tokens=120,
            stream=True, seed=4,
        )  # fmt: skip
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        jsonschema.validate(json.loads(text), PERSON)
        anything = client.chat.completions.create(
            model="m", messages=messages, response_format={"type": "json_object"},
            max_tokens=200, seed=5,
        )  # fmt: skip
        assert isinstance(json.loads(anything.choices[0].message.content), dict)


def test_reasoning_goes_to_reasoning_content(both: tuple[RunningBackend, str]) -> None:
    """A grammar makes the small model write a <think> block, as a reasoning model does."""
    backend, _ = both
    grammar = 'root ::= "<think>" [a-z ]{3,30} "</think>" [A-Za-z ]{3,30}'
    body = {"messages": HELLO, "grammar": grammar, "max_tokens": 60, "seed": 1}
    status, reply = backend.post("/v1/chat/completions", body)
    assert status == 200
    message = reply["choices"][0]["message"]
    assert "<think>" not in message["content"]
    assert message["reasoning_content"]
    status, raw = backend.post("/v1/chat/completions", {**body, "reasoning_format": "none"})
    assert raw["choices"][0]["message"]["content"].startswith("<think>")
    assert "reasoning_content" not in raw["choices"][0]["message"]
    with _client(backend.url) as client:
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=HELLO,
                max_tokens=60,
                stream=True,
                seed=1,
                extra_body={"grammar": grammar},
            )
        )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    answer = "".join(d.content or "" for d in deltas)
    assert thinking == message["reasoning_content"]
    assert answer == message["content"]


@pytest.mark.parametrize(
    ("pieces", "reasoning", "content"),
    [
        (["<th", "ink>plan", " more</", "think>\n", "Hi"], "plan more", "Hi"),
        (["Hello <think> x"], None, "Hello <think> x"),
        (["  <think>", "a</think>b"], "a", "b"),
        (["<thin"], None, "<thin"),
    ],
)
def test_reasoning_splitter_handles_split_tags(
    pieces: list[str], reasoning: str | None, content: str
) -> None:
    splitter = ReasoningSplitter()
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    got_reasoning = "".join(t for f, t in out if f == "reasoning_content") or None
    assert (got_reasoning, "".join(t for f, t in out if f == "content")) == (reasoning, content)
    assert ReasoningSplitter(started=True).split_whole("x</think>y") == ("x", "y")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "x"},
            "tool_choice",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}], "grammar": 'root ::= "a"'},
            "grammar",
        ),
        ({"logprobs": 3}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 50}, "top_logprobs"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"grammar": "root ::= ("}, "grammar"),
        ({"reasoning_format": "loud"}, "reasoning_format"),
    ],
)
def test_unsupported_fields_are_400_naming_them(
    both: tuple[RunningBackend, str], body: dict, param: str
) -> None:
    backend, _ = both
    status, reply = backend.post("/v1/chat/completions", {"messages": HELLO, **body})
    assert status == 400
    assert reply["error"]["param"] == param


def test_tokenize_detokenize_props_models(both: tuple[RunningBackend, str]) -> None:
    backend, _ = both
    status, reply = backend.post("/tokenize", {"content": "Hello, café!", "with_pieces": True})
    assert status == 200
    ids = [item["id"] for item in reply["tokens"]]
    assert "".join(item["piece"] for item in reply["tokens"]) == "Hello, café!"
    status, reply = backend.post("/detokenize", {"tokens": ids})
    assert (status, reply) == (200, {"content": "Hello, café!"})
    status, raw = backend.get("/props")
    props = json.loads(raw)
    assert props["total_slots"] == 4
    assert props["default_generation_settings"]["n_ctx"] == 512  # 2048 shared by 4 slots
    assert "im_start" in props["chat_template"]
    status, raw = backend.get("/v1/models")
    meta = json.loads(raw)["data"][0]["meta"]
    assert (meta["n_ctx"], meta["n_ctx_slot"], meta["parallel"]) == (2048, 512, 4)


def test_builtin_templates_by_architecture() -> None:
    assert builtin_template_name("gemma2", lambda _: False) == "gemma"
    assert builtin_template_name("llama", lambda t: t == "<|eot_id|>") == "llama3"
    assert builtin_template_name("llama", lambda _: False) == "chatml"
    gemma = ChatTemplate(None, builtin="gemma").render(HELLO)
    assert gemma == "<start_of_turn>user\nSay hello to Ana.<end_of_turn>\n<start_of_turn>model\n"
    assert "<|start_header_id|>user" in ChatTemplate(None, builtin="llama3").render(HELLO)


def test_model_without_a_template_gets_the_one_its_tokens_call_for(
    starter_model: Path, tmp_path: Path
) -> None:
    bare = copy_without_keys(
        starter_model, tmp_path / "bare.gguf", drop={"tokenizer.chat_template"}
    )
    model = LlamaModel(bare, ContextOptions(n_ctx=256, parallel=1, threads=1))
    try:
        template = template_for_model(model)
        assert template.builtin == "chatml"  # SmolLM2's vocabulary has <|im_start|>
        assert template.render(HELLO).endswith("<|im_start|>assistant\n")
    finally:
        model.close()


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
ASK = [{"role": "user", "content": "What is the weather in Lisbon?"}]


def test_streamed_tool_call(both: tuple[RunningBackend, str]) -> None:
    backend, _ = both
    with _client(backend.url) as client:
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=ASK,
                tools=[WEATHER, CLOCK],
                tool_choice="required",
                stream=True,
                max_tokens=80,
                seed=2,
            )
        )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for d in deltas for call in (d.tool_calls or [])]
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name in {"get_weather", "get_time"}
    arguments = json.loads("".join(call.function.arguments or "" for call in calls))
    if calls[0].function.name == "get_weather":
        jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_named_tool_call_and_the_answer_after_it(both: tuple[RunningBackend, str]) -> None:
    backend, _ = both
    named = {"type": "function", "function": {"name": "get_weather"}}
    with _client(backend.url) as client:
        reply = client.chat.completions.create(
            model="m",
            messages=ASK,
            tools=[WEATHER, CLOCK],
            tool_choice=named,
            max_tokens=80,
            seed=7,
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
        # The next turn carries the call and the tool's answer back.
        history = [
            *ASK,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
        ]
        follow = client.chat.completions.create(
            model="m", messages=history, tools=[WEATHER], max_tokens=8, seed=1
        )
    assert follow.choices[0].finish_reason in {"stop", "length", "tool_calls"}


def test_tool_call_parser_on_split_text() -> None:
    parser = ToolCallParser()
    pieces = [
        "Let me check. <tool",
        '_call>\n{"name": "f", "argu',
        'ments": {"a": 1}}\n</tool_call>',
    ]
    out = [item for piece in pieces for item in parser.feed(piece)] + parser.flush()
    assert out[0] == "Let me check. "
    assert isinstance(out[1], ToolCall)
    assert (out[1].name, json.loads(out[1].arguments)) == ("f", {"a": 1})
    broken = ToolCallParser()  # not a call: dropped (never markup as content), and said
    assert broken.feed("<tool_call>not json</tool_call>") == []
    assert broken.unfinished is not None and broken.unfinished.invalid


def test_logprobs_chat_streamed_and_text(both: tuple[RunningBackend, str]) -> None:
    backend, _ = both
    common = {"model": "m", "messages": HELLO, "max_tokens": 10, "temperature": 0}
    with _client(backend.url) as client:
        reply = client.chat.completions.create(**common, logprobs=True, top_logprobs=3)
        entries = reply.choices[0].logprobs.content
        assert "".join(e.token for e in entries) == reply.choices[0].message.content
        for entry in entries:
            assert entry.logprob <= 0
            assert len(entry.top_logprobs) == 3
            assert entry.top_logprobs[0].token == entry.token  # greedy: the most likely one
            assert abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-6
            assert sum(np.exp(t.logprob) for t in entry.top_logprobs) <= 1 + 1e-6
            assert bytes(entry.bytes).decode() == entry.token
        chunks = list(client.chat.completions.create(**common, logprobs=True, stream=True))
        streamed = [
            e
            for c in chunks
            if c.choices and c.choices[0].logprobs
            for e in c.choices[0].logprobs.content
        ]
        assert [e.token for e in streamed] == [e.token for e in entries]
        assert all(e.top_logprobs == [] for e in streamed)
        text = client.completions.create(
            model="m", prompt="Count: 1, 2, 3,", max_tokens=5, temperature=0, logprobs=2
        )
    legacy = text.choices[0].logprobs
    assert "".join(legacy.tokens) == text.choices[0].text
    assert all(len(top) <= 2 for top in legacy.top_logprobs)
    assert legacy.text_offset[0] == 0
