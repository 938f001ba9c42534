"""Hostile and almost-valid JSON bodies get a 400 in OpenAI's shape, never a 500 or a crash.

Valid JSON can still break a Python server: lone UTF-16 surrogates, deep nesting, huge or
non-finite numbers, duplicate keys, a body that is not an object, and every field of the wrong
type. The decoder is checked case by case, then hypothesis sends generated bodies to every
route of a real running server (the starter model, chat and embedding ports): each answer must
be a 2xx or a 4xx in OpenAI's shape, the log must stay free of tracebacks, and the server must
still answer /health afterwards.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbdesk.backend.errors import RequestError
from gbdesk.backend.json_body import MAX_DEPTH, MAX_INTEGER_DIGITS, decode_json_body
from gbdesk.backend.protocol import MAX_GRAMMAR_CHARS, MAX_GRAMMAR_NESTING, check_grammar_text
from gbdesk.backend.server import log_failure
from tests.backend.conftest import RunningBackend, start_backend
from tests.free_ports import free_port

CHAT = '{"messages": [{"role": "user", "content": %s}], "max_tokens": 1}'


def refusal(raw: bytes) -> RequestError:
    with pytest.raises(RequestError) as caught:
        decode_json_body(raw)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (CHAT % '"a\\ud800"', "lone UTF-16 surrogate (\\ud800)"),
        (CHAT % '"\\udfff b"', "lone UTF-16 surrogate (\\udfff)"),
        (CHAT % '"\\udc00\\ud800"', "lone UTF-16 surrogate (\\udc00)"),  # a pair, reversed
        ('{"\\ud800": 1}', "lone UTF-16 surrogate"),  # in a key
        ("[" * 100_000 + "]" * 100_000, "100000 deep"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "5000 deep"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"at most {MAX_DEPTH}"),
        (CHAT % ("9" * 5000), "5000 digits"),  # Python refuses int() over 4,300 digits
        (CHAT % ("-" + "1" * (MAX_INTEGER_DIGITS + 1)), f"at most {MAX_INTEGER_DIGITS}"),
        (CHAT % "1e400", "too large"),
        (CHAT % "NaN", "NaN, which is not a JSON number"),
        (CHAT % "-Infinity", "-Infinity"),
        ('{"model": "a", "model": "b"}', "the request body has the key 'model' twice"),
        ('{"messages": [{"role": "user", "role": "system"}]}', "the key 'role' twice"),
        ("[]", "not an array"),
        ('"text"', "not a string"),
        ("12", "not a number"),
        ("null", "not null"),
        ("", "not valid JSON"),
        ('{"a": 1', "not valid JSON"),
        ('\ufeff{"a": 1}', "not valid JSON"),
    ],
)
def test_the_decoder_refuses(raw: str, words: str) -> None:
    error = refusal(raw.encode())
    assert words in error.message
    assert "\n" not in error.message


def test_the_decoder_keeps_what_is_valid() -> None:
    body = decode_json_body(
        (CHAT % '"\\ud83d\\ude00 \\\\ud800 \\u00e9"').encode()  # a pair, an escaped backslash
    )
    assert body["messages"][0]["content"] == "\U0001f600 \\ud800 \u00e9"
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert decode_json_body(f'{{"a": {deep}, "b": "[[[[[[[[[[[[[[[[[["}}'.encode())["b"]
    assert decode_json_body(b'{"n": -12345678901234567890, "f": 1.5e300}')["f"] == 1.5e300
    assert refusal(b'{"a": "\xff"}').message.startswith("the request body is not UTF-8")


def test_grammar_limits() -> None:
    check_grammar_text('root ::= ("a" | [()] "(") ("b"+)? # ((((\n')
    deep = "root ::= " + "(" * 20_000 + '"a"' + ")" * 20_000  # crashed llama.cpp's parser
    with pytest.raises(RequestError, match=f"more than {MAX_GRAMMAR_NESTING} deep"):
        check_grammar_text(deep)
    with pytest.raises(RequestError, match="repetition operators"):
        check_grammar_text('root ::= "a"' + "*" * 70_000, max_chars=None)
    with pytest.raises(RequestError, match=f"at most {MAX_GRAMMAR_CHARS}"):
        check_grammar_text("root ::= " + ' | "a"' * 20_000)


def test_an_unexpected_failure_is_one_escaped_line(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise UnicodeEncodeError("utf-8", "a\ud800\nTraceback", 1, 2, "surrogates not allowed")
    except UnicodeEncodeError as exc:
        with caplog.at_level(logging.ERROR, logger="gbdesk.backend.server"):
            log_failure("POST /v1/chat/\x1b[31mx", exc)
    (record,) = caplog.records
    line = record.getMessage()
    assert record.exc_info is None and "\n" not in line and "\x1b" not in line
    assert line.startswith("POST /v1/chat/\\x1b[31mx failed: UnicodeEncodeError: ")
    assert "test_hostile_json.py" in line  # where it was raised
    line.encode("utf-8")  # the surrogate is escaped too


# ---------------------------------------------------------------------- against a real server

SENT: Counter[str] = Counter()  # answers by status, over the module
FIELDS = ("message", "type", "param", "code")


class Collector(logging.Handler):
    """Every log record of the server while this module's requests run."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def hostile(starter_model: Path, backend_home: Path) -> Iterator[tuple[RunningBackend, int]]:
    """The starter model for chat on one port and for embeddings on another."""
    embedding_port = free_port()
    running = start_backend(
        starter_model,
        ctx=1024,
        parallel=2,
        embedding_model=str(starter_model),
        embedding_port=embedding_port,
        embedding_pooling="mean",
    )
    yield running, embedding_port
    running.stop.set()
    running.thread.join(30)
    print(f"\nhostile JSON: {sum(SENT.values())} requests, answers {dict(sorted(SENT.items()))}")


@pytest.fixture(scope="module")
def server_log() -> Iterator[Collector]:
    """The records of every logger (INFO and up) while the module runs."""
    root = logging.getLogger()
    collector, level = Collector(), root.level
    root.addHandler(collector)
    root.setLevel(logging.INFO)
    yield collector
    root.removeHandler(collector)
    root.setLevel(level)


class Client:
    """One keep-alive connection per port; every answer is checked and counted."""

    def __init__(self, backend: RunningBackend, embedding_port: int) -> None:
        host, port = backend.url.removeprefix("http://").split(":")
        self.ports = {"chat": int(port), "embeddings": embedding_port}
        self.host = host
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def send(self, port: str, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        for attempt in range(2):
            connection = self.connections.get(port)
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.ports[port], timeout=120)
                self.connections[port] = connection
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                del self.connections[port]
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def check(self, port: str, method: str, path: str, body: bytes | None) -> int:
        status, raw = self.send(port, method, path, body)
        SENT[str(status)] += 1
        shown = (body or b"")[:300]
        assert status < 500, (status, raw[:500], shown)
        if status >= 400:
            error = json.loads(raw)["error"]
            assert tuple(error) == FIELDS, (raw, shown)
            assert isinstance(error["message"], str) and "\n" not in error["message"]
            assert error["type"] == "invalid_request_error", (raw, shown)
        return status

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@pytest.fixture
def client(hostile: tuple[RunningBackend, int], server_log: Collector) -> Iterator[Client]:
    backend, embedding_port = hostile
    client = Client(backend, embedding_port)
    yield client
    client.close()


def assert_clean_log(records: list[logging.LogRecord]) -> None:
    """No traceback, and every line one line."""
    for record in records:
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
        assert "Traceback" not in record.getMessage()


def assert_alive(client: Client) -> None:
    assert client.send("chat", "GET", "/health", None) == (200, b'{"status":"ok"}')
    assert client.send("embeddings", "GET", "/health", None)[0] == 200


POST_ROUTES = [
    ("chat", "/v1/chat/completions"),
    ("chat", "/v1/completions"),
    ("chat", "/v1/embeddings"),
    ("chat", "/tokenize"),
    ("chat", "/detokenize"),
    ("embeddings", "/v1/embeddings"),
    ("embeddings", "/embedding"),
    ("embeddings", "/v1/chat/completions"),
]
GET_ROUTES = ["/v1/models", "/props", "/health", "/metrics"]


@pytest.mark.model
def test_the_reported_cases_answer_400(client: Client, server_log: Collector) -> None:
    seen = len(server_log.records)
    for raw in (CHAT % '"a\\ud800"', "[" * 100_000 + "]" * 100_000):
        assert client.check("chat", "POST", "/v1/chat/completions", raw.encode()) == 400
    lines = [r.getMessage() for r in server_log.records[seen:] if "-> 400" in r.getMessage()]
    assert len(lines) == 2 and "surrogate" in lines[0] and "100000 deep" in lines[1], lines
    assert_clean_log(server_log.records)
    assert_alive(client)


@pytest.mark.model
def test_a_grammar_that_crashed_llama_cpp_is_refused(client: Client) -> None:
    for grammar in (
        "root ::= " + "(" * 30_000 + '"a"' + ")" * 30_000,
        'root ::= "a"' + "*" * 100_000,
    ):
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "grammar": grammar}
        raw = json.dumps(body).encode()
        assert client.check("chat", "POST", "/v1/chat/completions", raw) == 400
    # A grammar that is complete bans everything but the end, which ignore_eos bans too.
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
            "ignore_eos": True, "grammar": 'root ::= "a"'}  # fmt: skip
    assert client.check("chat", "POST", "/v1/chat/completions", json.dumps(body).encode()) == 400
    assert_alive(client)


# ---------------------------------------------------------------------- generated bodies

_TEXT = st.text(max_size=12)
_STRING_ESCAPES = st.sampled_from(
    ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\udc00\\ud800", "\\ud83d\\ude00", "\\u0000",
     "\\\\ud800", "\\u00e9", "\\n", "\\\""]
)  # fmt: skip


@st.composite
def json_strings(draw: st.DrawFn) -> str:
    """A JSON string literal, sometimes with surrogate (and other) escapes spliced in."""
    parts = draw(st.lists(st.one_of(_TEXT.map(lambda t: json.dumps(t)[1:-1]), _STRING_ESCAPES),
                          max_size=4))  # fmt: skip
    return '"' + "".join(parts) + '"'


_NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e999", "NaN", "Infinity", "-Infinity", "-0", "1E+2"]),
    st.integers(MAX_INTEGER_DIGITS - 2, 6000).map(lambda n: "9" * n),
)
_SCALARS = st.one_of(st.sampled_from(["null", "true", "false"]), _NUMBERS, json_strings())


def _nest(depth: int, inner: str, kind: str) -> str:
    if kind == "[":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """JSON (or almost) text: scalars, arrays, objects with repeated keys, deep nests."""
    return draw(
        st.recursive(
            _SCALARS,
            lambda inner: st.one_of(
                st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
                st.lists(
                    st.tuples(st.sampled_from(['"a"', '"role"', '"model"']) | json_strings(),
                              inner),
                    max_size=4,
                ).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"),
                st.tuples(st.integers(MAX_DEPTH - 3, 100_000), inner, st.sampled_from("[{")).map(
                    lambda args: _nest(*args)
                ),
            ),
            max_leaves=8,
        )
    )  # fmt: skip


_CHAT_SLOTS = [
    '{"messages": [{"role": "user", "content": %s}], "max_tokens": 1}',
    '{"messages": %s, "max_tokens": 1}',
    '{"messages": [{"role": %s, "content": "hi"}], "max_tokens": 1}',
    '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": %s}',
    '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": %s, "grammar": "root ::= [a]"}',  # noqa: E501
    '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "tools": %s}',
    '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, %s: 1}',
    '{"prompt": %s, "max_tokens": 1}',
    '{"input": %s}',
    '{"content": %s}',
    '{"tokens": %s}',
    "%s",
]  # fmt: skip
# JSON text inside a string: a tool call's arguments (decoded by the server in turn).
_ARGUMENTS_SLOT = (
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null,'
    ' "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": %s}}]},'
    ' {"role": "tool", "tool_call_id": "c", "content": "1"}], "max_tokens": 1}'
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """A body with hostile JSON in one place, sometimes cut short or with a bad byte."""
    slot = draw(st.sampled_from([*_CHAT_SLOTS, _ARGUMENTS_SLOT]))
    text = draw(json_texts())
    raw = (slot % (json.dumps(text) if slot is _ARGUMENTS_SLOT else text)).encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "byte", "bom", "trailing"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "byte":
        at = draw(st.integers(0, len(raw)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
        raw = raw[:at] + bad + raw[at:]
    elif damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "trailing":
        raw += b" }"
    return raw


@pytest.mark.model
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=hostile_bodies(), route=st.sampled_from(POST_ROUTES))
def test_generated_hostile_bodies(client: Client, body: bytes, route: tuple[str, str]) -> None:
    port, path = route
    client.check(port, "POST", path, body)


# Arbitrary JSON values for fields of the wrong type (or of the right one).
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
_HI = [{"role": "user", "content": "hi"}]
_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
# (port, path, base body, where a generated value goes); max_completion_tokens (or a grammar
# that ends after one token) keeps every valid request one token long.
_FIELD_CASES: list[tuple[str, str, dict[str, Any], tuple[str | int, ...]]] = []
_CHAT_FIELDS = (
    "model", "stream", "stream_options", "max_tokens", "n_predict", "stop", "temperature",
    "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty", "repeat_penalty",
    "repeat_last_n", "ignore_eos", "n", "user", "response_format", "cache_prompt", "logprobs",
    "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "reasoning_format",
    "messages", "grammar", "logit_bias",
)  # fmt: skip
for _name in _CHAT_FIELDS:
    _FIELD_CASES.append(
        ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1}, (_name,))
    )
_FIELD_CASES += [
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "stream": True, "stream_options": {}}, ("stream_options", "include_usage")),
    ("chat", "/v1/chat/completions", {"messages": _HI, "grammar": 'root ::= "a"'},
     ("max_completion_tokens",)),
    ("chat", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
     "max_completion_tokens": 1}, ("messages", 0, "role")),
    ("chat", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
     "max_completion_tokens": 1}, ("messages", 0, "content")),
    ("chat", "/v1/chat/completions", {"messages": [{"role": "user", "content": [
     {"type": "text", "text": "hi"}]}], "max_completion_tokens": 1},
     ("messages", 0, "content", 0, "text")),
    ("chat", "/v1/chat/completions", {"messages": [*_HI, {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f",
     "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "1"}],
     "max_completion_tokens": 1}, ("messages", 1, "tool_calls", 0, "function", "arguments")),
    ("chat", "/v1/chat/completions", {"messages": [*_HI, {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f",
     "arguments": "{}"}}]}], "max_completion_tokens": 1},
     ("messages", 1, "tool_calls", 0, "function", "name")),
    ("chat", "/v1/chat/completions", {"messages": [*_HI, {"role": "tool", "tool_call_id": "c",
     "content": "1"}], "max_completion_tokens": 1}, ("messages", 1, "tool_call_id")),
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "tools": [_TOOL]}, ("tools", 0, "function", "parameters")),
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "tools": [_TOOL]}, ("tools", 0, "function", "name")),
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "tools": [_TOOL]}, ("tool_choice",)),
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
     ("response_format", "json_schema", "schema", "properties")),
    ("chat", "/v1/completions", {"prompt": "hi", "max_completion_tokens": 1}, ("prompt",)),
    ("chat", "/v1/completions", {"prompt": "hi", "max_tokens": 1}, ("logprobs",)),
    ("chat", "/v1/completions", {"prompt": "hi", "max_tokens": 1}, ("logit_bias",)),
    ("chat", "/v1/chat/completions", {"messages": _HI, "max_completion_tokens": 1,
     "logit_bias": {"1": 1}}, ("logit_bias", "1")),
    ("chat", "/v1/completions", {"prompt": "hi", "grammar": 'root ::= "a"'}, ("max_tokens",)),
    ("chat", "/v1/embeddings", {"input": "hi"}, ("input",)),
    ("embeddings", "/v1/embeddings", {"input": "hi"}, ("input",)),
    ("embeddings", "/v1/embeddings", {"input": "hi"}, ("encoding_format",)),
    ("embeddings", "/embedding", {"input": "hi"}, ("model",)),
    ("embeddings", "/v1/embeddings", {"input": "hi"}, ("user",)),
    ("chat", "/tokenize", {"content": "hi"}, ("content",)),
    ("chat", "/tokenize", {"content": "hi"}, ("add_special",)),
    ("chat", "/tokenize", {"content": "hi"}, ("with_pieces",)),
    ("chat", "/detokenize", {"tokens": [1, 2]}, ("tokens",)),
    ("chat", "/detokenize", {"tokens": [1, 2]}, ("tokens", 0)),
]  # fmt: skip


def _with_value(body: dict[str, Any], where: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    result = json.loads(json.dumps(body))  # a deep copy
    target = result
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    return result


@pytest.mark.model
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(_FIELD_CASES), value=_VALUES)
def test_every_field_of_every_type(
    client: Client, case: tuple[str, str, dict[str, Any], tuple[str | int, ...]], value: Any
) -> None:
    port, path, base, where = case
    body = _with_value(base, where, value)
    client.check(port, "POST", path, json.dumps(body).encode())


@pytest.mark.model
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(GET_ROUTES), body=st.none() | hostile_bodies(),
       port=st.sampled_from(["chat", "embeddings"]))  # fmt: skip
def test_get_routes_with_any_body(client: Client, path: str, body: bytes | None, port: str) -> None:
    client.check(port, "GET", path, body)


@pytest.mark.model
def test_the_server_is_still_well_and_its_log_clean(client: Client, server_log: Collector) -> None:
    """Runs after the generated requests (file order): their log, one more request, /health."""
    for raw in (CHAT % '"\\udfff"', CHAT % "1e999", '{"a": 1, "a": 2}'):
        assert client.check("chat", "POST", "/v1/chat/completions", raw.encode()) == 400
    assert_clean_log(server_log.records)
    assert any("-> 400" in record.getMessage() for record in server_log.records)
    assert_alive(client)
