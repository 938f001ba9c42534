"""A tool call cut off (max_tokens, a stop string) never leaks its markup as content.

The parser is checked on every cut point of a call, whole or split into pieces; the real
starter model then answers forced and automatic tool choices under every chat template the
backend knows (the GGUF's own, the ChatML fallback, templates that know tools in the Hermes and
the Llama 3.x formats, and each of llama.cpp's built-in templates), streaming and not, with too
few tokens for the call.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gbdesk.backend.chat_template import BUILTIN_TEMPLATES, ChatTemplate
from gbdesk.backend.server import BackendApp
from gbdesk.backend.tools import CLOSE_TAG, OPEN_TAG, ToolCall, ToolCallParser, UnfinishedCall
from tests.backend.tool_support import (
    LLAMA3_TOOLS_TEMPLATE,
    TOOLS_TEMPLATE,
    WEATHER,
    weather_turns,
)

PRE = "Let me check. "
CALL_JSON = '{"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "c"}}'
CALL_TEXT = f"{OPEN_TAG}\n{CALL_JSON}\n{CLOSE_TAG}"
JSON_END = len(PRE) + len(OPEN_TAG) + 1 + len(CALL_JSON)  # where the call's JSON is whole
NAME_END = len(PRE) + len(OPEN_TAG) + 1 + len('{"name": "get_weather"')


def assert_no_markup(content: str | None) -> None:
    """No tool-call tag, whole or begun, in ``content``."""
    if content is None:
        return
    for tag in (OPEN_TAG, CLOSE_TAG):
        assert tag not in content
    assert "<tool_call" not in content and "</tool" not in content
    assert not content.lstrip().startswith('{"name"'), content  # a bare call is a call too
    assert not any(content.endswith(OPEN_TAG[:size]) for size in range(2, len(OPEN_TAG))), content


def run_parser(pieces: list[str], *, cut: bool) -> tuple[str, list[ToolCall], ToolCallParser]:
    parser = ToolCallParser()
    out = [item for piece in pieces for item in parser.feed(piece)] + parser.flush(cut=cut)
    text = "".join(item for item in out if isinstance(item, str))
    return text, [item for item in out if isinstance(item, ToolCall)], parser


def _split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_every_cut_point_of_a_call(size: int) -> None:
    full = PRE + CALL_TEXT
    for end in range(len(full) + 1):
        cut = full[:end]
        pieces = [cut[i : i + size] for i in range(0, len(cut), size)]
        text, calls, parser = run_parser(pieces, cut=True)
        assert_no_markup(text)
        assert text == cut[: len(PRE)], (end, text)
        if end >= JSON_END:  # the JSON is whole: only (part of) the closing tag is missing
            assert [c.name for c in calls] == ["get_weather"]
            assert parser.unfinished is None
        elif end >= len(PRE) + len(OPEN_TAG):  # in the call: no call, and it says so
            assert calls == []
            assert parser.unfinished is not None and not parser.unfinished.invalid
            assert parser.unfinished.name == ("get_weather" if end >= NAME_END else None)
        elif end > len(PRE):  # the opening tag begun: held, then dropped at the cut
            assert calls == [] and parser.unfinished == UnfinishedCall(None)
        else:
            assert calls == [] and parser.unfinished is None


@settings(max_examples=300, deadline=None)
@given(end=st.integers(0, 200), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_any_split_of_a_cut_call(end: int, cuts: list[int]) -> None:
    full = PRE + CALL_TEXT + "\n" + CALL_TEXT
    cut = full[: end % (len(full) + 1)]
    text, calls, _ = run_parser(_split(cut, cuts), cut=True)
    assert_no_markup(text)
    assert text == cut[: len(PRE)]
    assert all(json.loads(call.arguments) == {"city": "Lisbon", "unit": "c"} for call in calls)


def test_a_natural_end_keeps_text_that_only_looked_like_a_tag() -> None:
    text, calls, parser = run_parser(["1 <", "tool"], cut=False)
    assert (text, calls, parser.unfinished) == ("1 <tool", [], None)
    text, _, parser = run_parser(["1 <", "tool"], cut=True)
    assert (text, parser.unfinished) == ("1 ", UnfinishedCall(None))


def test_a_closing_tag_without_its_call_is_dropped() -> None:
    # Seen from the starter model under llama.cpp's minicpm and orion templates (tools auto).
    for pieces in (["\n</tool_call>\n\nYou may"], ["\n</to", "ol_call>\n\nYou may"]):
        text, calls, parser = run_parser(pieces, cut=True)
        assert (text, calls, parser.unfinished) == ("\n\n\nYou may", [], None)
    assert run_parser(["x </tool"], cut=False)[0] == "x </tool"  # the model ended there
    assert run_parser(["x </tool"], cut=True)[0] == "x "


def test_a_call_that_is_not_json_is_not_content() -> None:
    text, calls, parser = run_parser([f"{OPEN_TAG}not json{CLOSE_TAG} after"], cut=False)
    assert (text, calls) == (" after", [])
    assert parser.unfinished is not None and parser.unfinished.invalid
    message = parser.unfinished.message("stop", None, 5)
    assert "not valid JSON" in message
    cut = ToolCallParser()
    cut.feed(f'{OPEN_TAG}\n{{"name": "f", "argu')
    cut.flush(cut=True)
    assert cut.unfinished is not None
    assert "max_tokens (9)" in cut.unfinished.message("length", 9, 9)
    assert "stop string" in cut.unfinished.message("stop", 9, 3)
    assert "context" in cut.unfinished.message("length", None, 500)


# ---------------------------------------------------------------------- the real model

ASK = [{"role": "user", "content": "What is the weather in Lisbon?"}]


def _templates(own: ChatTemplate) -> dict[str, ChatTemplate]:
    """Every template the backend may render with, by name."""
    templates = {
        "gguf's own": own,
        "chatml fallback": ChatTemplate(None, bos_token=own.bos_token, eos_token=own.eos_token),
        "knows tools": ChatTemplate(TOOLS_TEMPLATE, eos_token=own.eos_token),
        "llama 3.x knows tools": ChatTemplate(LLAMA3_TOOLS_TEMPLATE, eos_token=own.eos_token),
    }
    for name in BUILTIN_TEMPLATES:
        templates[f"built-in {name}"] = ChatTemplate(None, builtin=name)
    return templates


def _ask(client: openai.OpenAI, choice: Any, max_tokens: int, stream: bool) -> dict[str, Any]:
    """One request; the answer as (content, tool_calls, finish_reason, unfinished_tool_call)."""
    request: dict[str, Any] = {
        "model": "m",
        "messages": ASK if choice != "auto" else weather_turns(["Paris", "Rome"], "Lisbon"),
        "tools": [WEATHER],
        "tool_choice": choice,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if not stream:
        reply = client.chat.completions.create(**request)
        (answer,) = reply.choices
        return {
            "content": answer.message.content,
            "calls": answer.message.tool_calls or [],
            "finish": answer.finish_reason,
            "unfinished": (answer.model_extra or {}).get("unfinished_tool_call"),
        }
    chunks = list(client.chat.completions.create(**request, stream=True))
    choices = [chunk.choices[0] for chunk in chunks if chunk.choices]
    pieces = [c.delta.content for c in choices if c.delta.content]
    for piece in pieces:
        assert_no_markup(piece)
    return {
        "content": "".join(pieces) or None,
        "calls": [call for c in choices for call in (c.delta.tool_calls or [])],
        "finish": choices[-1].finish_reason,
        "unfinished": (choices[-1].model_extra or {}).get("unfinished_tool_call"),
    }


NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.model
def test_a_forced_call_cut_by_max_tokens_under_every_template(
    templated_backend: tuple[BackendApp, str],
) -> None:
    app, url = templated_backend
    engine, own = app.engine, app.template
    assert engine is not None and own is not None
    try:
        with openai.OpenAI(base_url=url, api_key="none", max_retries=0) as client:
            for name, template in _templates(own).items():
                app.attach(engine, template)
                # Streamed right after whole: the same prompt, prefilled once (the slot's cache).
                # Enough for the function's name, not for the whole call (a bare Llama 3.x
                # call is shorter: no tags).
                named_at = 12 if name == "llama 3.x knows tools" else 24
                for (choice, max_tokens), stream in itertools.product(
                    [("required", named_at), (NAMED, 2)], [False, True]
                ):
                    answer = _ask(client, choice, max_tokens, stream)
                    where = f"{name}, {choice}, max_tokens {max_tokens}, stream {stream}"
                    assert answer["content"] is None, where  # the call was all there was
                    assert answer["finish"] == "length", where
                    assert answer["calls"] == [], where
                    unfinished = answer["unfinished"]
                    assert unfinished is not None, where
                    assert f"max_tokens ({max_tokens})" in unfinished["message"], where
                    if max_tokens == named_at:
                        assert unfinished["name"] == "get_weather", where
    finally:
        app.attach(engine, own)


@pytest.mark.model
def test_an_automatic_call_cut_by_max_tokens_under_every_template(
    templated_backend: tuple[BackendApp, str],
) -> None:
    app, url = templated_backend
    engine, own = app.engine, app.template
    assert engine is not None and own is not None
    began = []
    try:
        with openai.OpenAI(base_url=url, api_key="none", max_retries=0) as client:
            for name, template in _templates(own).items():
                app.attach(engine, template)
                for stream in (False, True):
                    answer = _ask(client, "auto", 12, stream)
                    assert_no_markup(answer["content"])
                    assert answer["calls"] == [], name
                    if answer["unfinished"] is not None:  # else it answered in words
                        assert answer["finish"] == "length", name
                        assert "max_tokens (12)" in answer["unfinished"]["message"], name
                        began.append((name, stream))
    finally:
        app.attach(engine, own)
    # Under the GGUF's own template and one that knows tools at least, the model began a call
    # (seen: under all but llama.cpp's exaone3, minicpm and orion templates).
    for name in ("gguf's own", "knows tools"):
        assert {(name, False), (name, True)} <= set(began), began
