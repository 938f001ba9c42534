"""OpenAI function calling: tools in the prompt, calls parsed out of the model's text.

Two call formats (*dialects*), chosen by the chat template, as llama-server's handlers do:

- **Hermes** (Qwen 2.5, SmolLM3, Hermes and many others are trained on it), and the format
  gbdesk teaches any template that does not know tools::

      <tool_call>
      {"name": "get_weather", "arguments": {"city": "Lisbon"}}
      </tool_call>

- **Llama 3.x** (Llama 3.1, 3.2 and 3.3, whose own templates ask for it): the whole answer is
  the call, bare JSON with ``parameters``::

      {"name": "get_weather", "parameters": {"city": "Lisbon"}}

  A Hermes answer may be such a bare call too (with ``arguments``; models often drop the
  tags). In both dialects only an answer that *opens* with ``{"name": "`` is a call.

A chat template that knows tools gets them (and writes its own instructions); for any other
template gbdesk adds a system message that lists the tools and shows the Hermes format. A
grammar keeps the call itself valid: from where a call begins (``<tool_call>``, or
``{"name": "`` opening the answer; a lazy grammar) with ``tool_choice: "auto"``, from the first
token with ``"required"`` or a named function.
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
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


@dataclass(frozen=True)
class ToolDialect:
    """How one family of models writes a call."""

    name: str
    arguments_key: str  # the call's key for the arguments: "arguments" or "parameters"
    tagged: bool  # calls may sit between OPEN_TAG and CLOSE_TAG (besides a bare call)
    parallel: bool  # the template can show several calls in one turn

    @property
    def triggers(self) -> tuple[str, ...]:
        """Where a call begins, for llama.cpp's lazy grammar: patterns over the whole text so
        far; the grammar starts at the first capture group. An answer that opens with
        ``{"name": "`` is a call in every dialect (as in llama-server); other JSON is content."""
        bare = r'\s*(\{\s*"name"\s*:\s*")[\s\S]*'
        return (r"[\s\S]*?(<tool_call>)[\s\S]*", bare) if self.tagged else (bare,)


HERMES = ToolDialect("hermes", "arguments", tagged=True, parallel=True)
# Llama 3.x's templates raise on a turn with two calls: one call per answer.
LLAMA3 = ToolDialect("llama3", "parameters", tagged=False, parallel=False)


def dialect_for(template_source: str) -> ToolDialect:
    """The call format the chat template asks for: Llama 3.x's own templates (their header
    tokens, tools, and calls written with ``"parameters"``), else Hermes."""
    if OPEN_TAG in template_source:
        return HERMES
    llama3 = "<|start_header_id|>" in template_source and '"parameters"' in template_source
    if llama3 and template_knows_tools(template_source):
        return LLAMA3
    return HERMES


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


def tool_grammar(options: ToolOptions, dialect: ToolDialect = HERMES) -> str:
    """GBNF for one (or, with parallel calls where the dialect has them, several) tool calls.

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
            "properties": {
                "name": {"const": tool["name"]},
                dialect.arguments_key: tool["parameters"],
            },
            "required": ["name", dialect.arguments_key],
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
    if not dialect.tagged:
        return "root ::= tool-call-json\n" + call_rules
    repeat = ' ("\\n" tool-call)*' if options.parallel and dialect.parallel else ""
    # A bare call only where the model began one by itself (the lazy grammar's second trigger);
    # a forced call is written in the dialect's own form.
    bare = " | tool-call-json" if options.choice == "auto" else ""
    return (
        f"root ::= tool-call{repeat}{bare}\n"
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
    arguments = payload.get("arguments", payload.get("parameters", {}))
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
    content (a stray ``</tool_call>`` is dropped as well). An answer that opens with a bare call
    (``{"name": "``, no tags: small models often leave them out) is one call, parsed as
    :class:`BareCallParser` does. A call that is cut off (or is not a valid call) is dropped
    and kept in :attr:`unfinished`, for the response to say so.
    """

    def __init__(self) -> None:
        self._held = ""
        self._in_call = False
        self._opening: bool | None = None  # None until the answer's start tells if it is bare
        self._bare: BareCallParser | None = None  # the answer is a bare call: it parses it
        self.calls: list[ToolCall] = []
        self.unfinished: UnfinishedCall | None = None

    def feed(self, text: str) -> list[str | ToolCall]:
        if self._bare is not None:
            return self._bare.feed(text)
        if self._opening is None:  # a bare call, {"name": "...", opens the answer or never
            self._held += text
            self._opening = _opens_call(self._held)
            if self._opening is None:
                return []
            if self._opening:
                self._bare = BareCallParser()
                self.calls = self._bare.calls
                held, self._held = self._held, ""
                return self._bare.feed(held)
            text = ""
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
        if self._bare is not None:
            out = self._bare.flush(cut)
            self.unfinished = self._bare.unfinished
            return out
        if self._opening is None and cut and self._held.strip():  # a bare call begun
            self._held = ""
            self.unfinished = self.unfinished or UnfinishedCall(None)
            return []
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


class BareCallParser:
    """The Llama 3.x dialect: an answer that opens with ``{"name": "`` is a call (with
    ``tool_choice`` auto the lazy grammar starts there and makes it one); any other answer is
    content, passed on as it comes (held only while its start could still open a call). The
    call is parsed once the answer is whole; one cut off (or not a valid call) is dropped and
    kept in :attr:`unfinished`, as :class:`ToolCallParser` does. Its JSON is never content.
    """

    def __init__(self) -> None:
        self._held = ""
        self._is_call: bool | None = None  # undecided while the start could open a call
        self.calls: list[ToolCall] = []
        self.unfinished: UnfinishedCall | None = None

    def feed(self, text: str) -> list[str | ToolCall]:
        if self._is_call is False:
            return [text] if text else []
        self._held += text
        if self._is_call is None:
            self._is_call = _opens_call(self._held)
            if self._is_call is False:
                held, self._held = self._held, ""
                return [held]
        return []

    def flush(self, cut: bool = False) -> list[str | ToolCall]:
        """The rest, at the end of the generation (``cut``: stopped, not ended by the model).

        A start that could still have opened a call is one begun when ``cut``, else content.
        """
        held, self._held = self._held, ""
        if self._is_call is None and held.strip() and cut:
            self.unfinished = UnfinishedCall(None)
            return []
        if not self._is_call:
            return [held] if held else []
        body = held.strip()
        call = _parse_call(body)
        if call is None:
            self.unfinished = UnfinishedCall(_name_so_far(body), invalid=not cut)
            return []
        self.calls.append(call)
        return [call]


_CALL_OPENING = ("{", '"name"', ":", '"')


def _opens_call(text: str) -> bool | None:
    """Whether ``text`` opens with ``{"name": "`` (blanks allowed between the parts), cannot,
    or None: too short to tell."""
    rest = text
    for part in _CALL_OPENING:
        rest = rest.lstrip()
        if not rest:
            return None
        if rest.startswith(part):
            rest = rest[len(part) :]
        elif part.startswith(rest):
            return None
        else:
            return False
    return True


def call_parser(dialect: ToolDialect) -> ToolCallParser | BareCallParser:
    """A parser of the model's text for calls written in ``dialect``."""
    return ToolCallParser() if dialect.tagged else BareCallParser()


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
