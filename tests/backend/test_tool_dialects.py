"""Llama 3.x models call tools in their own format: bare JSON with "parameters", the whole
answer being the call. Under a template that asks for it, the backend constrains and parses that
format (as llama-server's Llama 3.x handler does), so a call comes back in ``tool_calls``, never
as JSON text in ``content``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from gbdesk.backend.chat_template import ChatTemplate, template_for_model
from gbdesk.backend.model import ContextOptions, LlamaModel
from gbdesk.backend.server import BackendApp
from gbdesk.backend.tools import (
    HERMES,
    LLAMA3,
    BareCallParser,
    ToolCall,
    ToolCallParser,
    dialect_for,
    parse_tools,
    tool_grammar,
)
from tests.backend.conftest import http_request
from tests.backend.tool_support import (
    LLAMA3_TOOLS_TEMPLATE,
    TOOLS_TEMPLATE,
    WEATHER,
    weather_turns,
)

CALL = '{"name": "get_weather", "parameters": {"city": "Lisbon"}}'
# Llama 3's first template: its header tokens, but no tools.
LLAMA3_NO_TOOLS = (
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] +"
    " '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
)


def test_the_template_says_which_format_calls_come_in(starter_model: Path) -> None:
    assert dialect_for(LLAMA3_TOOLS_TEMPLATE) is LLAMA3
    assert dialect_for(TOOLS_TEMPLATE) is HERMES  # Qwen 2.5's: <tool_call>
    assert dialect_for(LLAMA3_NO_TOOLS) is HERMES  # gbdesk's own instructions then
    assert dialect_for("") is HERMES  # a built-in template
    model = LlamaModel(starter_model, ContextOptions(n_ctx=256, parallel=1, threads=1))
    try:
        assert dialect_for(template_for_model(model).source) is HERMES
    finally:
        model.close()


def test_the_llama3_grammar_writes_bare_json_with_parameters() -> None:
    options = parse_tools({"tools": [WEATHER], "parallel_tool_calls": True})
    assert options is not None
    grammar = tool_grammar(options, LLAMA3)
    assert "<tool_call>" not in grammar
    assert '"\\"parameters\\""' in grammar and '"\\"arguments\\""' not in grammar
    # One call per answer: Llama 3.x's templates refuse a turn with two.
    assert grammar.startswith("root ::= tool-call-json\n")
    # Hermes: tagged calls, several with parallel_tool_calls; a bare call only where the model
    # began one by itself (auto).
    assert tool_grammar(options, HERMES).startswith(
        'root ::= tool-call ("\\n" tool-call)* | tool-call-json\n'
    )
    forced = parse_tools({"tools": [WEATHER], "tool_choice": "required"})
    assert forced is not None
    assert tool_grammar(forced, HERMES).startswith("root ::= tool-call\n")
    assert len(HERMES.triggers) == 2 and len(LLAMA3.triggers) == 1


def test_a_hermes_answer_that_opens_with_a_bare_call_is_a_call() -> None:
    """Small models drop the tags: {"name": ..., "arguments": ...} opening the answer is a call
    (never content), whole or cut; a tagged call after words still is one too."""
    bare = '{"name": "get_weather", "arguments": {"city": "Lisbon"}}'
    for cut_at in range(len(bare) + 1):
        parser = ToolCallParser()
        out = parser.feed("\n" + bare[:cut_at]) + parser.flush(cut=cut_at < len(bare))
        text = "".join(item for item in out if isinstance(item, str))
        assert text.strip() == "", (cut_at, text)
        if cut_at == len(bare):
            assert [call.name for call in parser.calls] == ["get_weather"]
        else:  # nothing begun yet at 0
            assert parser.calls == [] and (parser.unfinished is not None) == (cut_at > 0), cut_at
    words = ToolCallParser()
    out = words.feed(
        'Sure: {"name": "x"} <tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    )
    assert [item for item in out if isinstance(item, str)] == ['Sure: {"name": "x"} ']
    assert [call.name for call in words.calls] == ["f"]


def _parse(pieces: list[str], *, cut: bool) -> tuple[list[str], list[ToolCall], BareCallParser]:
    parser = BareCallParser()
    streamed: list[str] = []
    calls: list[ToolCall] = []
    for piece in pieces:
        for item in parser.feed(piece):
            (calls if isinstance(item, ToolCall) else streamed).append(item)  # type: ignore[arg-type]
    for item in parser.flush(cut=cut):
        (calls if isinstance(item, ToolCall) else streamed).append(item)  # type: ignore[arg-type]
    return streamed, calls, parser


@pytest.mark.parametrize("lead", ["", " ", "\n\n"])
def test_a_bare_call_split_anywhere_is_one_call_and_no_content(lead: str) -> None:
    text = lead + CALL
    for a, b in itertools.combinations(range(len(text) + 1), 2):
        streamed, calls, parser = _parse([text[:a], text[a:b], text[b:]], cut=False)
        assert streamed == [] or "".join(streamed).strip() == "", (a, b, streamed)
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [
            ("get_weather", {"city": "Lisbon"})
        ]
        assert parser.unfinished is None


def test_a_bare_call_cut_anywhere_is_no_call_and_says_so() -> None:
    name_end = len('{"name": "get_weather"')
    for end in range(1, len(CALL)):
        streamed, calls, parser = _parse([CALL[:end]], cut=True)
        assert streamed == [] and calls == [], end
        assert parser.unfinished is not None and not parser.unfinished.invalid
        assert parser.unfinished.name == ("get_weather" if end >= name_end else None), end


def test_an_answer_in_words_or_other_json_streams_as_it_comes() -> None:
    parser = BareCallParser()
    assert parser.feed("\n") == []  # blank: not yet known
    assert parser.feed("The weather") == ["\nThe weather"]
    assert parser.feed(" is {fine}") == [" is {fine}"]
    assert parser.flush() == [] and parser.calls == [] and parser.unfinished is None
    data = BareCallParser()
    assert data.feed('{ "na') == []  # could still open a call
    assert data.feed('me2": 1}') == ['{ "name2": 1}']  # did not: content
    assert data.flush() == [] and data.unfinished is None
    short = BareCallParser()
    assert short.feed("{") == [] and short.flush(cut=False) == ["{"]  # the model ended it


def test_a_call_that_is_not_valid_json_is_dropped_and_said() -> None:
    broken = BareCallParser()
    assert broken.feed('{"name": "get_weather", "parameters": oops}') == []
    assert broken.flush(cut=False) == []
    assert broken.unfinished is not None and broken.unfinished.invalid
    assert broken.unfinished.name == "get_weather"


# ---------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def llama3_served(templated_backend: tuple[BackendApp, str]) -> str:
    """The starter model over real HTTP, rendering with Llama 3.1's template (in short)."""
    app, url = templated_backend
    assert app.engine is not None and app.template is not None
    app.attach(app.engine, ChatTemplate(LLAMA3_TOOLS_TEMPLATE, eos_token=app.template.eos_token))
    return url


def _answer(client: openai.OpenAI, stream: bool, **request: Any) -> dict[str, Any]:
    request = {"model": "m", "temperature": 0, "max_tokens": 96, **request}
    if not stream:
        (choice,) = client.chat.completions.create(**request).choices
        calls = [
            (call.function.name, call.function.arguments)
            for call in choice.message.tool_calls or []
        ]
        return {"content": choice.message.content, "calls": calls, "finish": choice.finish_reason}
    chunks = list(client.chat.completions.create(**request, stream=True))
    choices = [chunk.choices[0] for chunk in chunks if chunk.choices]
    named: dict[int, list[str]] = {}
    for choice in choices:
        for call in choice.delta.tool_calls or []:
            entry = named.setdefault(call.index, ["", ""])
            entry[0] += (call.function.name or "") if call.function else ""
            entry[1] += (call.function.arguments or "") if call.function else ""
    content = "".join(c.delta.content for c in choices if c.delta.content) or None
    calls = [(name, arguments) for name, arguments in named.values()]
    return {"content": content, "calls": calls, "finish": choices[-1].finish_reason}


@pytest.mark.model
@pytest.mark.parametrize("stream", [False, True])
def test_a_forced_call_under_llama3s_template_comes_back_as_a_tool_call(
    llama3_served: str, stream: bool
) -> None:
    with openai.OpenAI(base_url=llama3_served, api_key="none", max_retries=0) as client:
        for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
            answer = _answer(
                client,
                stream,
                messages=[{"role": "user", "content": "What is the weather in Lisbon?"}],
                tools=[WEATHER],
                tool_choice=choice,
            )
            assert answer["content"] is None, answer
            assert answer["finish"] == "tool_calls", answer
            ((name, arguments),) = answer["calls"]
            assert name == "get_weather"
            assert isinstance(json.loads(arguments)["city"], str)


def _token_id(url: str, text: str) -> int:
    """The one token ``text`` is, asked of the server (llama-server's /tokenize)."""
    status, raw = http_request(
        url.removesuffix("/v1") + "/tokenize", data=json.dumps({"content": text}).encode()
    )
    assert status == 200
    (token,) = json.loads(raw)["tokens"]
    return int(token)


@pytest.mark.model
@pytest.mark.parametrize("stream", [False, True])
def test_an_automatic_call_under_llama3s_template_is_a_tool_call_not_json_text(
    llama3_served: str, stream: bool
) -> None:
    """botserver's case: tools given, no tool_choice. A Llama 3.x model that calls a tool opens
    its answer with ``{"name": "``. The starter model (not trained on this format) opens with a
    newline; banned from it and nudged towards ``{"`` (a small bias: it must still be free to
    write ``name": "`` itself, copying its earlier calls), it begins a call; from there the
    lazy grammar holds it, and it arrives whole, as a tool call."""
    newline, brace = _token_id(llama3_served, "\n"), _token_id(llama3_served, '{"')
    with openai.OpenAI(base_url=llama3_served, api_key="none", max_retries=0) as client:
        answer = _answer(
            client,
            stream,
            messages=weather_turns(["Paris", "Rome", "Oslo", "Madrid", "Berlin"], "Lisbon"),
            tools=[WEATHER],
            logit_bias={str(newline): -100, str(brace): 5},
        )
    assert answer["content"] is None, answer  # the call's JSON is not content
    ((name, arguments),) = answer["calls"]
    assert name == "get_weather" and answer["finish"] == "tool_calls"
    assert json.loads(arguments) == {"city": "Lisbon"}


@pytest.mark.model
def test_json_that_is_no_call_stays_content_under_llama3s_template(llama3_served: str) -> None:
    """Only an answer that opens with ``{"name": "`` is taken for a call: pushed to open with
    ``{"`` too hard to write ``name`` (a large bias repeats it), the answer is content."""
    newline, brace = _token_id(llama3_served, "\n"), _token_id(llama3_served, '{"')
    with openai.OpenAI(base_url=llama3_served, api_key="none", max_retries=0) as client:
        answer = _answer(
            client,
            False,
            messages=weather_turns(["Paris", "Rome", "Oslo", "Madrid", "Berlin"], "Lisbon"),
            tools=[WEATHER],
            max_tokens=8,
            logit_bias={str(newline): -100, str(brace): 100},
        )
    assert answer["calls"] == [] and answer["content"].startswith('{"{"'), answer


@pytest.mark.model
def test_an_answer_in_words_under_llama3s_template_stays_content(llama3_served: str) -> None:
    """Without the push to ``{`` the starter model answers in words: content, no call."""
    with openai.OpenAI(base_url=llama3_served, api_key="none", max_retries=0) as client:
        answer = _answer(
            client,
            False,
            messages=weather_turns(["Paris", "Rome"], "Lisbon", answered=True),
            tools=[WEATHER],
        )
    assert answer["calls"] == [] and answer["content"], answer
    assert not answer["content"].lstrip().startswith("{")
