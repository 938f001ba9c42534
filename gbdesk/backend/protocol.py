"""The OpenAI request bodies the server accepts, checked field by field.

Each parser turns a decoded JSON body into plain values or raises :class:`RequestError` (400)
naming the field at fault. Field names follow OpenAI's API, plus llama-server's extensions
(``top_k``, ``min_p``, ``repeat_penalty``, ``repeat_last_n``, ``n_predict``, ``ignore_eos``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gbdesk.backend.engine import SamplingParams
from gbdesk.backend.errors import RequestError

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
MAX_STOP_STRINGS = 16
_MISSING = object()


@dataclass(frozen=True)
class CommonOptions:
    """Fields shared by chat and text completions."""

    stream: bool
    include_usage: bool
    max_tokens: int | None
    stop: tuple[str, ...]
    sampling: SamplingParams
    ignore_eos: bool


def _bad(message: str, param: str) -> RequestError:
    return RequestError(400, message, param=param)


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"'{name}' must be a number", name)
    if not low <= value <= high:
        raise _bad(f"'{name}' must be between {low} and {high}, not {value}", name)
    return float(value)


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
    for name in ("max_completion_tokens", "max_tokens", "n_predict"):
        if body.get(name) is not None:
            if name == "n_predict" and body[name] == -1:
                return None  # llama-server's "until the end"
            return _integer(body, name, None, 1)
    return None


def parse_common(body: dict[str, Any]) -> CommonOptions:
    """The sampling, length and streaming fields.

    Raises:
        RequestError: a field has the wrong type or is out of range (400).
    """
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
    )
    stream = _flag(body, "stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    return CommonOptions(
        stream=stream,
        include_usage=bool(stream_options.get("include_usage", False)),
        max_tokens=_max_tokens(body),
        stop=_stop(body),
        sampling=sampling,
        ignore_eos=_flag(body, "ignore_eos"),
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


def parse_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages as ``{"role", "content"}`` dicts for the chat template.

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
        if role not in CHAT_ROLES:
            raise _bad(
                f"unknown role {role!r}; use one of {', '.join(sorted(CHAT_ROLES))}",
                f"messages[{index}].role",
            )
        if role == "developer":
            role = "system"  # OpenAI's newer name; chat templates know "system"
        result.append({"role": role, "content": _content_text(message.get("content"), index)})
    return result


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
