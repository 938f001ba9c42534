"""The OpenAI request bodies the server accepts, checked field by field.

Each parser turns a decoded JSON body into plain values or raises :class:`RequestError` (400)
naming the field at fault. Field names follow OpenAI's API, plus llama-server's extensions
(``top_k``, ``min_p``, ``repeat_penalty``, ``repeat_last_n``, ``n_predict``, ``ignore_eos``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from gbdesk.backend.engine import SamplingParams
from gbdesk.backend.errors import RequestError
from gbdesk.backend.json_body import UnsafeJsonError, clip, decode_json_text
from gbdesk.backend.reasoning import OPEN_TAG, REASONING_FORMATS

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
MAX_STOP_STRINGS = 16
MAX_EMBEDDING_INPUTS = 2048
_MISSING = object()
# Fields every completion request may carry. ``user`` and ``cache_prompt`` change nothing in
# the output (gbdesk always reuses a slot's cached prefix), so they are accepted as they are.
_COMMON_FIELDS = frozenset(
    {
        "model", "stream", "stream_options", "max_tokens", "n_predict", "stop", "temperature",
        "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty",
        "repeat_penalty", "repeat_last_n", "ignore_eos", "n", "user", "grammar",
        "response_format", "cache_prompt", "logprobs", "logit_bias",
    }
)  # fmt: skip
_CHAT_FIELDS = _COMMON_FIELDS | {
    "messages", "max_completion_tokens", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning_format", "top_logprobs",
}  # fmt: skip
_TEXT_FIELDS = _COMMON_FIELDS | {"prompt"}


@dataclass(frozen=True)
class CommonOptions:
    """Fields shared by chat and text completions."""

    stream: bool
    include_usage: bool
    max_tokens: int | None
    stop: tuple[str, ...]
    sampling: SamplingParams
    ignore_eos: bool
    grammar: str | None = None
    grammar_triggers: tuple[str, ...] = ()
    logprobs: int | None = None  # None: off; else how many top alternatives per token


MAX_TOP_LOGPROBS = 20
# Once a grammar is complete only the end of generation is allowed; with the end banned,
# llama.cpp's grammar sampler throws a C++ exception that ends the whole process.
IGNORE_EOS_WITH_GRAMMAR = (
    "'ignore_eos' cannot be combined with a grammar, a JSON response_format or tools: the"
    " output must end where the grammar ends; leave 'ignore_eos' out"
)


def _logprobs(body: dict[str, Any], chat: bool) -> int | None:
    """Chat: ``logprobs`` true/false and ``top_logprobs`` 0-20; text: ``logprobs`` 0-20."""
    value = body.get("logprobs")
    if chat:
        if value is not None and not isinstance(value, bool):
            raise _bad("'logprobs' must be true or false", "logprobs")
        top = _integer(body, "top_logprobs", None, 0)
        if top is not None and top > MAX_TOP_LOGPROBS:
            raise _bad(f"'top_logprobs' must be at most {MAX_TOP_LOGPROBS}", "top_logprobs")
        if top and not value:
            raise _bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        return (top or 0) if value else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise _bad(f"'logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}", "logprobs")
    return value


@dataclass(frozen=True)
class ChatOptions:
    """Chat-only fields: how reasoning is returned."""

    reasoning_format: str
    thinking_started: bool = False

    def after_prompt(self, prompt: str) -> ChatOptions:
        """These options for ``prompt``: a template that opened ``<think>`` starts reasoning."""
        return replace(self, thinking_started=prompt.rstrip().endswith(OPEN_TAG))


def _bad(message: str, param: str) -> RequestError:
    return RequestError(400, message, param=param)


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"'{name}' must be a number", name)
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"'{name}' must be a finite number", name)
    if not low <= value <= high:  # exact for any int: Python compares int and float exactly
        raise _bad(f"'{name}' must be between {low} and {high}, not {value}", name)
    return float(value)


MAX_LOGIT_BIASES = 1024
_TOKEN_ID = re.compile(r"^[0-9]{1,9}\Z")


def _logit_bias(body: dict[str, Any]) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``logit_bias``: ``{"<token id>": bias}``, each bias -100 to 100 added to the
    token's logit (-100 all but bans it, 100 all but forces it). Token ids are checked against
    the vocabulary where the model is known (:func:`check_token_ids`)."""
    value = body.get("logit_bias")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _bad("'logit_bias' must be an object of token ids and biases", "logit_bias")
    if len(value) > MAX_LOGIT_BIASES:
        raise _bad(f"'logit_bias' may bias at most {MAX_LOGIT_BIASES} tokens", "logit_bias")
    biases = []
    for key, bias in value.items():
        if not _TOKEN_ID.match(key):
            raise _bad(f"'logit_bias' keys must be token ids, not '{clip(key)}'", "logit_bias")
        entry = {"logit_bias": bias}
        biases.append((int(key), _number(entry, "logit_bias", 0.0, -100.0, 100.0)))
    return tuple(biases)


def check_token_ids(sampling: SamplingParams, n_vocab: int) -> None:
    """Raises:
    RequestError: a ``logit_bias`` token id outside the vocabulary (400)."""
    for token, _bias in sampling.logit_bias:
        if token >= n_vocab:
            raise _bad(
                f"'logit_bias' names token {token}, but the vocabulary has {n_vocab} tokens",
                "logit_bias",
            )


def _integer(body: dict[str, Any], name: str, default: int | None, low: int) -> int | None:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{name}' must be an integer", name)
    if value < low:
        raise _bad(f"'{name}' must be at least {low}, not {value}", name)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"'{name}' must be true or false", name)
    return value


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad("'stop' must be a string or a list of strings", "stop")
    if len(value) > MAX_STOP_STRINGS:
        raise _bad(f"'stop' may hold at most {MAX_STOP_STRINGS} strings", "stop")
    return tuple(item for item in value if item)


def _max_tokens(body: dict[str, Any]) -> int | None:
    """The first of max_completion_tokens, max_tokens and n_predict given (each checked)."""
    values: list[int | None] = []
    for name in ("max_completion_tokens", "max_tokens", "n_predict"):
        if name == "n_predict" and body.get(name) == -1 and not isinstance(body[name], bool):
            values.append(None)  # llama-server's "until the end"
        elif body.get(name) is not None:
            values.append(_integer(body, name, None, 1))
    return values[0] if values else None


def reject_unknown(body: dict[str, Any], known: frozenset[str] | set[str]) -> None:
    """Raises:
    RequestError: 400 naming the first field of ``body`` not in ``known``."""
    for name in body:
        if name not in known:
            raise _bad(f"'{clip(name)}' is not supported by this server", clip(name))


def check_strings(body: dict[str, Any], *names: str) -> None:
    """Fields read as optional strings (``model``, ``user``): a string or null.

    Raises:
        RequestError: 400 naming the first that is something else.
    """
    for name in names:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _bad(f"'{name}' must be a string", name)


def _check_fields(body: dict[str, Any], chat: bool) -> None:
    reject_unknown(body, _CHAT_FIELDS if chat else _TEXT_FIELDS)
    if body.get("cache_prompt") is not None and not isinstance(body["cache_prompt"], bool):
        raise _bad("'cache_prompt' must be true or false", "cache_prompt")
    check_strings(body, "model", "user")


MAX_GRAMMAR_CHARS = 64 * 1024
MAX_GRAMMAR_NESTING = 100  # parentheses; llama.cpp's parser recurses and crashes near 20,000
MAX_GRAMMAR_POSTFIX_RUN = 4  # stacked repetition operators ("a"*?+...) nest rules as well


def check_grammar_text(
    grammar: str, param: str = "grammar", max_chars: int | None = MAX_GRAMMAR_CHARS
) -> None:
    """A GBNF text small and shallow enough for llama.cpp's recursive parser to survive.

    llama.cpp parses a grammar with recursion over its parentheses and stacked repetition
    operators, and takes seconds over a grammar of a megabyte: a deep one ends the whole
    process with a stack overflow. Syntax is left to llama.cpp (the engine checks it).
    Grammars converted from a JSON schema (``param`` names the schema's field) are checked for
    nesting only (``max_chars`` None): a large schema makes a long grammar.

    Raises:
        RequestError: the grammar is over the size, nesting or operator limits (400).
    """
    if max_chars is not None and len(grammar) > max_chars:
        raise _bad(
            f"'grammar' is {len(grammar)} characters long; at most {max_chars} are accepted",
            param,
        )
    depth = run = 0
    state = ""  # "" outside, '"' in a literal, "[" in a character class, "#" in a comment
    escaped = False
    for char in grammar:
        if state in ('"', "["):
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == ('"' if state == '"' else "]"):
                state = ""
            continue
        if state == "#":
            state = "" if char in "\r\n" else "#"
            continue
        if char in "*+?{":
            run += 1
            if run > MAX_GRAMMAR_POSTFIX_RUN:
                raise _bad(
                    f"the grammar stacks more than {MAX_GRAMMAR_POSTFIX_RUN} repetition"
                    " operators on one symbol",
                    param,
                )
            if char == "{":
                state = "{"
            continue
        if state == "{":
            state = "" if char == "}" else "{"
            continue
        if char.isspace():
            continue
        run = 0
        if char in ('"', "[", "#"):
            state = char
        elif char == "(":
            depth += 1
            if depth > MAX_GRAMMAR_NESTING:
                raise _bad(
                    f"the grammar nests parentheses more than {MAX_GRAMMAR_NESTING} deep"
                    " (in a JSON schema: a 'pattern' with too many nested groups)",
                    param,
                )
        elif char == ")":
            depth = max(depth - 1, 0)


def _grammar(body: dict[str, Any]) -> str | None:
    """A GBNF grammar from ``grammar`` or ``response_format`` (json_object / json_schema)."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    grammar = body.get("grammar")
    if grammar is not None and not isinstance(grammar, str):
        raise _bad("'grammar' must be a GBNF string", "grammar")
    if grammar:
        check_grammar_text(grammar)
    response_format = body.get("response_format")
    if response_format is None:
        return grammar or None
    if not isinstance(response_format, dict):
        raise _bad("'response_format' must be an object", "response_format")
    kind = response_format.get("type")
    if kind == "text":
        return grammar or None
    if grammar:
        raise _bad("give either 'grammar' or a JSON 'response_format', not both", "grammar")
    if kind == "json_object":
        schema = response_format.get("schema")
        if schema is None:
            return JSON_GBNF
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _bad(
                "'response_format.json_schema.schema' must be a JSON schema object",
                "response_format.json_schema",
            )
        schema = spec["schema"]
    else:
        raise _bad(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'",
            "response_format.type",
        )
    if not isinstance(schema, dict):
        raise _bad("the response schema must be an object", "response_format")
    try:
        converted = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain exceptions for what it cannot express
        raise _bad(
            f"this JSON schema cannot be turned into a grammar: {clip(str(exc), 200)}",
            "response_format",
        ) from None
    check_grammar_text(converted, "response_format", max_chars=None)
    return converted


def parse_chat_options(body: dict[str, Any], default_reasoning: str) -> ChatOptions:
    """The chat-only options (``reasoning_format``).

    Raises:
        RequestError: an unknown reasoning format (400).
    """
    value = body.get("reasoning_format")
    if value is None:
        value = default_reasoning
    if value == "auto":
        value = "deepseek"
    if value not in REASONING_FORMATS:
        raise _bad(
            f"'reasoning_format' must be one of {', '.join(REASONING_FORMATS)}, 'auto'",
            "reasoning_format",
        )
    return ChatOptions(reasoning_format=value)


def parse_common(body: dict[str, Any], *, chat: bool = True) -> CommonOptions:
    """The sampling, length, streaming and output-format fields.

    Raises:
        RequestError: a field is unknown, unsupported, of the wrong type or out of range (400).
    """
    _check_fields(body, chat)
    n = _integer(body, "n", 1, 1)
    if n != 1:
        raise _bad("only 'n': 1 is supported", "n")
    seed = _integer(body, "seed", None, -(2**63))
    if seed is not None and seed < 0:
        seed = None  # llama-server: -1 means random
    sampling = SamplingParams(
        temperature=_number(body, "temperature", 0.8, 0.0, 2.0),
        top_k=int(_number(body, "top_k", 40, 0, 1_000_000)),
        top_p=_number(body, "top_p", 0.95, 0.0, 1.0),
        min_p=_number(body, "min_p", 0.05, 0.0, 1.0),
        repeat_penalty=_number(body, "repeat_penalty", 1.0, 0.0, 10.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        penalty_last_n=int(_number(body, "repeat_last_n", 64, 0, 1_000_000)),
        seed=seed,
        logit_bias=_logit_bias(body),
    )
    stream = _flag(body, "stream")
    stream_options = body.get("stream_options")
    if stream_options is None:
        stream_options = {}
    if not isinstance(stream_options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    include_usage = stream_options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _bad("'stream_options.include_usage' must be true or false", "stream_options")
    ignore_eos = _flag(body, "ignore_eos")
    grammar = _grammar(body)
    if ignore_eos and grammar is not None:
        raise _bad(IGNORE_EOS_WITH_GRAMMAR, "ignore_eos")
    return CommonOptions(
        stream=stream,
        include_usage=bool(include_usage),
        max_tokens=_max_tokens(body),
        stop=_stop(body),
        sampling=sampling,
        ignore_eos=ignore_eos,
        grammar=grammar,
        logprobs=_logprobs(body, chat),
    )


def _content_text(content: Any, index: int) -> str:
    param = f"messages[{index}].content"
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _bad("only text content parts are supported (no images or audio)", param)
            text = part.get("text")
            if not isinstance(text, str):
                raise _bad("a text content part needs a string 'text'", param)
            parts.append(text)
        return "".join(parts)
    raise _bad("'content' must be a string or a list of text parts", param)


def parse_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages as ``{"role", "content"}`` dicts for the chat template (with an
    assistant's ``tool_calls`` and a tool answer's ``tool_call_id``, when given).

    Raises:
        RequestError: ``messages`` is missing, empty, or a message is malformed (400).
    """
    messages = body.get("messages")
    if messages is None:
        raise _bad("'messages' is required", "messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "messages")
    result = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad("each message must be an object", f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            shown = repr(clip(role)) if isinstance(role, str) else "missing or not a string"
            raise _bad(
                f"the role is {shown}; use one of {', '.join(sorted(CHAT_ROLES))}",
                f"messages[{index}].role",
            )
        if role == "developer":
            role = "system"  # OpenAI's newer name; chat templates know "system"
        entry: dict[str, Any] = {
            "role": role,
            "content": _content_text(message.get("content"), index),
        }
        calls = message.get("tool_calls")
        if calls is not None:
            entry["tool_calls"] = _tool_calls(calls, f"messages[{index}].tool_calls")
        for name in ("tool_call_id", "name"):
            value = message.get(name)
            if value is not None and not isinstance(value, str):
                raise _bad(f"'{name}' must be a string", f"messages[{index}].{name}")
            if value is not None:
                entry[name] = value
        result.append(entry)
    return result


def _tool_calls(calls: Any, param: str) -> list[dict[str, Any]]:
    """An assistant message's earlier ``tool_calls``, each ``{"function": {name, arguments}}``
    (``arguments`` JSON text, or an object as some clients send it).

    Raises:
        RequestError: anything else (400, naming the call).
    """
    if not isinstance(calls, list):
        raise _bad("'tool_calls' must be a list of {'function': {...}}", param)
    for number, call in enumerate(calls):
        where = f"{param}[{number}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _bad("a tool call must be {'function': {'name': ..., 'arguments': ...}}", where)
        if not isinstance(function.get("name"), str):
            raise _bad("a tool call's function needs a string 'name'", f"{where}.function.name")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, (str, dict)):
            raise _bad(
                "a tool call's 'arguments' must be JSON text (or an object)",
                f"{where}.function.arguments",
            )
        if isinstance(arguments, str):
            # JSON text inside the body: held to the body's own limits (text that is not JSON
            # at all goes back into the prompt as it is).
            try:
                decode_json_text(arguments, "the tool call's 'arguments'")
            except UnsafeJsonError as exc:
                raise _bad(exc.message, f"{where}.function.arguments") from None
            except RequestError:
                pass
        for name in ("id", "type"):
            if call.get(name) is not None and not isinstance(call[name], str):
                raise _bad(f"a tool call's '{name}' must be a string", f"{where}.{name}")
    return calls


def parse_prompt(body: dict[str, Any]) -> str | list[int]:
    """The ``prompt`` of a text completion: a string, or a list of token ids.

    Raises:
        RequestError: it is missing or not a string, a one-string list or a token list (400).
    """
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        return prompt
    if prompt is None:
        raise _bad("'prompt' is required", "prompt")
    raise _bad("'prompt' must be a string or a list of token ids (one prompt only)", "prompt")


def parse_embedding_input(body: dict[str, Any]) -> tuple[list[str | list[int]], str]:
    """(inputs, encoding format) of an embeddings request.

    ``input`` is a string, a list of strings, a list of token ids or a list of such lists.

    Raises:
        RequestError: a missing or malformed field (400).
    """
    reject_unknown(body, {"input", "model", "encoding_format", "user", "content"})
    check_strings(body, "model", "user")
    value = body.get("input", body.get("content"))  # llama-server's /embedding takes "content"
    if value is None:
        raise _bad("'input' is required", "input")

    def tokens(item: Any) -> bool:
        return (
            isinstance(item, list)
            and bool(item)
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in item)
        )

    if isinstance(value, str) or tokens(value):
        inputs: list[Any] = [value]
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(item, str) or tokens(item) for item in value)
    ):
        inputs = list(value)
    else:
        raise _bad(
            "'input' must be a string, a list of strings or a list of token-id lists", "input"
        )
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise _bad(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items", "input")
    if any(item == "" for item in inputs):
        raise _bad("'input' cannot contain an empty string", "input")
    encoding = body.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if encoding not in ("float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    return inputs, encoding
