"""OpenAI function calling: tools in the prompt, calls parsed out of the model's text.

The call format is Hermes' (Qwen 2.5, SmolLM3, Hermes and many others are trained on it), as
llama-server's Hermes handler reads it::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Lisbon"}}
    </tool_call>

A chat template that knows ``tools`` gets them (and writes its own instructions); for any other
template gbdesk adds a system message that lists the tools and shows the format. A grammar
keeps the call itself valid: from the first ``<tool_call>`` on (a lazy grammar) with
``tool_choice: "auto"``, from the first token with ``"required"`` or a named function.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from gbdesk.backend.errors import RequestError
from gbdesk.backend.json_body import clip, decode_json_text
from gbdesk.backend.protocol import check_grammar_text

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"
# llama.cpp's lazy grammar starts at the first capture group of a pattern over the whole text.
TRIGGER_PATTERN = r"[\s\S]*?(<tool_call>)[\s\S]*"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class ToolOptions:
    """The request's tools and how they may be used."""

    tools: tuple[dict[str, Any], ...]  # each {"name", "description", "parameters"}
    choice: str  # "auto", "required", or a function name
    parallel: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(tool["name"] for tool in self.tools)


def _bad(message: str, param: str) -> RequestError:
    return RequestError(400, message, param=param)


def parse_tools(body: dict[str, Any]) -> ToolOptions | None:
    """The ``tools``, ``tool_choice`` and ``parallel_tool_calls`` fields; None without tools.

    Raises:
        RequestError: a malformed tool or choice (400, naming the field).
    """
    tools = body.get("tools")
    choice = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _bad("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    if tools in (None, []):
        if choice not in (None, "none", "auto"):
            raise _bad("'tool_choice' needs 'tools'", "tool_choice")
        return None
    if not isinstance(tools, list):
        raise _bad("'tools' must be a list", "tools")
    parsed = []
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _bad("each tool must be {'type': 'function', 'function': {...}}", param)
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _bad("a tool needs a 'function' object", f"{param}.function")
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad(
                "a function 'name' must be 1-64 letters, digits, '_', '.' or '-'",
                f"{param}.function.name",
            )
        parameters = function.get("parameters", {"type": "object"})
        if not isinstance(parameters, dict):
            raise _bad("'parameters' must be a JSON schema object", f"{param}.function.parameters")
        description = function.get("description", "")
        if not isinstance(description, str):
            raise _bad("'description' must be a string", f"{param}.function.description")
        parsed.append({"name": name, "description": description, "parameters": parameters})
    names = [tool["name"] for tool in parsed]
    if choice in (None, "auto"):
        mode = "auto"
    elif choice == "none":
        return None
    elif choice == "required":
        mode = "required"
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and choice["function"].get("name") in names
    ):
        mode = choice["function"]["name"]
    else:
        raise _bad(
            "'tool_choice' must be 'none', 'auto', 'required' or"
            " {'type': 'function', 'function': {'name': <one of the tools>}}",
            "tool_choice",
        )
    return ToolOptions(tuple(parsed), mode, bool(parallel))


def tool_grammar(options: ToolOptions) -> str:
    """GBNF for one (or, with parallel calls, several) Hermes tool calls.

    Raises:
        RequestError: a tool's parameters schema cannot be expressed as a grammar (400).
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    chosen = [
        tool for tool in options.tools if options.choice in ("auto", "required", tool["name"])
    ]
    alternatives = [
        {
            "type": "object",
            "properties": {"name": {"const": tool["name"]}, "arguments": tool["parameters"]},
            "required": ["name", "arguments"],
        }
        for tool in chosen
    ]
    schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    try:
        call_rules = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain exceptions
        raise _bad(
            f"a tool's parameters cannot be turned into a grammar: {clip(str(exc), 200)}", "tools"
        ) from None
    check_grammar_text(call_rules, "tools", max_chars=None)
    call_rules = re.sub(r"^root ::=", "tool-call-json ::=", call_rules, flags=re.MULTILINE)
    repeat = ' ("\\n" tool-call)*' if options.parallel else ""
    return (
        f"root ::= tool-call{repeat}\n"
        f'tool-call ::= "{OPEN_TAG}\\n" tool-call-json "\\n{CLOSE_TAG}"\n' + call_rules
    )


def tools_system_prompt(options: ToolOptions) -> str:
    """The instructions for a template that does not know tools (Hermes' wording)."""
    listed = "\n".join(
        json.dumps({"type": "function", "function": tool}, ensure_ascii=False)
        for tool in options.tools
    )
    return (
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within"
        f" {OPEN_TAG}{CLOSE_TAG} XML tags:\n"
        f'{OPEN_TAG}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n{CLOSE_TAG}'
    )


def template_knows_tools(source: str) -> bool:
    return "tools" in source and "tool_call" in source


def _arguments(value: Any) -> Any:
    """A call's ``arguments`` as an object when they are JSON text, else as given.

    Unsafe JSON text (deep, huge numbers, lone surrogates) was refused with the request.
    """
    if isinstance(value, str):
        with contextlib.suppress(RequestError):
            return decode_json_text(value, "the tool call's 'arguments'")
    return value


def call_text(call: dict[str, Any]) -> str:
    """An assistant's earlier tool call written back as Hermes text (for the prompt)."""
    function = call.get("function") or {}
    arguments = _arguments(function.get("arguments", "{}"))
    payload = json.dumps({"name": function.get("name", ""), "arguments": arguments})
    return f"{OPEN_TAG}\n{payload}\n{CLOSE_TAG}"


@dataclass(frozen=True)
class ToolCall:
    """One parsed call: OpenAI's ``id``, function ``name`` and ``arguments`` (JSON text)."""

    id: str
    name: str
    arguments: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


def _parse_call(text: str) -> ToolCall | None:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or JSON Python cannot hold
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return None
    arguments = payload.get("arguments", {})
    arguments_text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(f"call_{uuid.uuid4().hex[:24]}", payload["name"], arguments_text)


_NAME_SO_FAR = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")')


def _name_so_far(text: str) -> str | None:
    """The function name at the start of an unfinished call's JSON, when written whole."""
    match = _NAME_SO_FAR.match(text)
    if match is None:
        return None
    try:
        name = json.loads(match.group(1))
    except ValueError:
        return None
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class UnfinishedCall:
    """A tool call the model began but that is not returned: cut off, or not a valid call.

    Its markup is never returned as content; the response says what happened instead.
    """

    name: str | None  # the function's name, when the model wrote it whole
    invalid: bool = False  # closed, but its text is not {"name": ..., "arguments": ...} JSON

    def message(self, finish_reason: str, max_tokens: int | None, completion_tokens: int) -> str:
        """What happened, in a sentence with what to do about it."""
        call = f"call to {self.name}" if self.name else "tool call"
        if self.invalid:
            return f"The model wrote a {call} that is not valid JSON, so no call is returned."
        start = f"The model's {call} was cut off"
        end = "before it was complete, so no call is returned"
        if finish_reason == "length" and max_tokens is not None and completion_tokens >= max_tokens:
            return f"{start} by max_tokens ({max_tokens}) {end}; raise max_tokens to get the call."
        if finish_reason == "length":
            return (
                f"{start} at the end of the context {end}; shorten the conversation or start the"
                " server with a larger context."
            )
        return f"{start} by a stop string {end}; remove that string from 'stop'."


class ToolCallParser:
    """Splits streamed text into content pieces (str) and :class:`ToolCall` objects.

    Text that may be the start of a tag is held back until the next piece tells, and
    everything from ``<tool_call>`` on until its ``</tool_call>``: tool-call markup is never
    content (a stray ``</tool_call>`` is dropped as well). A call that is cut off (or is not a
    valid call) is dropped and kept in :attr:`unfinished`, for the response to say so.
    """

    def __init__(self) -> None:
        self._held = ""
        self._in_call = False
        self.calls: list[ToolCall] = []
        self.unfinished: UnfinishedCall | None = None

    def feed(self, text: str) -> list[str | ToolCall]:
        out: list[str | ToolCall] = []
        held = self._held + text
        self._held = ""
        while held:
            if self._in_call:
                end = held.find(CLOSE_TAG)
                if end < 0:
                    self._held = held
                    return out
                body = held[:end].strip()
                call = _parse_call(body)
                if call is None:
                    self.unfinished = self.unfinished or UnfinishedCall(
                        _name_so_far(body), invalid=True
                    )
                else:
                    self.calls.append(call)
                    out.append(call)
                self._in_call = False
                held = held[end + len(CLOSE_TAG) :]
                continue
            start, tag = _first_tag(held)
            if start >= 0:
                if (held[:start].strip() or not self.calls) and held[:start]:
                    out.append(held[:start])
                # A closing tag without its opening one is markup too: dropped.
                self._in_call = tag == OPEN_TAG
                held = held[start + len(tag) :]
                continue
            keep = max(_partial_suffix(held, OPEN_TAG), _partial_suffix(held, CLOSE_TAG))
            ready = held[: len(held) - keep]
            if ready and (ready.strip() or not self.calls):
                out.append(ready)
            self._held = held[len(held) - keep :]
            return out
        return out

    def flush(self, cut: bool = False) -> list[str | ToolCall]:
        """The rest, at the end of the generation.

        ``cut``: the generation was stopped (max_tokens, the context) rather than ended by
        the model. Text held as a possible start of ``<tool_call>`` is then dropped (it may be
        markup) and counts as a call begun; after the model's own end it is content.
        """
        held, self._held = self._held, ""
        if self._in_call:
            self._in_call = False
            body = held.rstrip()
            body = body[: len(body) - _partial_suffix(body, CLOSE_TAG)].strip()
            call = _parse_call(body)
            if call is not None:  # whole, only the closing tag is missing
                self.calls.append(call)
                return [call]
            self.unfinished = self.unfinished or UnfinishedCall(_name_so_far(body))
            return []
        if cut and held:  # maybe a tag begun: not content; an opening one is a call cut off
            if OPEN_TAG.startswith(held):
                self.unfinished = self.unfinished or UnfinishedCall(None)
            return []
        return [held] if held and (held.strip() or not self.calls) else []


def _first_tag(text: str) -> tuple[int, str]:
    """(position, tag) of the first ``<tool_call>`` or ``</tool_call>`` in ``text``; -1 if none."""
    found = [(at, tag) for tag in (OPEN_TAG, CLOSE_TAG) if (at := text.find(tag)) >= 0]
    return min(found) if found else (-1, OPEN_TAG)


def _partial_suffix(text: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def prepare_messages(
    messages: list[dict[str, Any]], template_source: str, options: ToolOptions | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for the chat template.

    A template that knows tools gets them and the calls as structured data (arguments as
    objects, the way Hugging Face templates expect); any other template gets the tool list as a
    system message and earlier calls written as Hermes text.
    """
    knows = template_knows_tools(template_source)
    prepared: list[dict[str, Any]] = []
    for message in messages:
        entry = dict(message)
        calls = entry.pop("tool_calls", None)
        if calls and knows:
            entry["tool_calls"] = [_structured(call) for call in calls]
        elif calls:
            text = "\n".join(call_text(call) for call in calls)
            entry["content"] = f"{entry['content']}\n{text}" if entry["content"] else text
        prepared.append(entry)
    if options is None:
        return prepared, None
    if knows:
        return prepared, [{"type": "function", "function": tool} for tool in options.tools]
    instructions = tools_system_prompt(options)
    if prepared and prepared[0]["role"] == "system":
        first = prepared[0]
        prepared[0] = {**first, "content": f"{first['content']}\n\n{instructions}"}
    else:
        prepared.insert(0, {"role": "system", "content": instructions})
    return prepared, None


def _structured(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    if "arguments" in function:
        function["arguments"] = _arguments(function["arguments"])
    return {**call, "type": "function", "function": function}
