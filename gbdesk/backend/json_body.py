"""Request bodies decoded once, with everything Python's json module lets through refused.

``json.loads`` accepts text that later breaks the server: lone UTF-16 surrogates (``"\\ud800"``
is valid JSON, but no UTF-8 encoder takes the string it gives), nesting deep enough to exhaust
Python's recursion limit (in the decoder, or later in an encoder or a chat template), integers
too long to convert (Python refuses more than 4,300 digits) or to compare with a float,
``NaN``/``Infinity`` and numbers that overflow to infinity, and duplicate keys (silently keeping
the last one). :func:`decode_json_body` refuses each of these with a 400 that says what and
where, before any field is read.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, NoReturn

from gbdesk.backend.errors import RequestError

MAX_DEPTH = 64  # nested arrays/objects: a tool's schema rarely goes past 10
MAX_INTEGER_DIGITS = 64  # well past int64/uint64 (20), and still a finite float
_ECHO_CHARS = 80  # at most this much of the client's text is quoted back in a message
# A JSON string literal (escapes included): what is inside one never nests.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class UnsafeJsonError(RequestError):
    """JSON that Python's decoder takes (or nearly) but that the server cannot handle safely."""


class _RefusedError(Exception):
    """Raised by a json hook: the decoder stops and the body gets a 400 with this message."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clip(text: str, limit: int = _ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with ``...``), for quoting client input back;
    a lone surrogate is written as its escape (``\\ud800``), so the result always encodes, and
    so is a control character or line separator (``\\n``): a quoted name stays on one line."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``, found without recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(_STEP[c] for c in brackets), default=0)


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _RefusedError(
            f"has an integer of {len(text.lstrip('-'))} digits; numbers may have at most"
            f" {MAX_INTEGER_DIGITS}"
        )
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RefusedError(f"has a number too large to represent: {clip(text)}")
    return value


def _constant(text: str) -> NoReturn:
    raise _RefusedError(f"has {text}, which is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RefusedError(
                    f"has the key {clip(key)!r} twice in one object; give each key once",
                    param=clip(key),
                )
            seen.add(key)
    return result


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in any string of ``value`` (as ``\\udXXX``), or None."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(exc.object[exc.start]):04x}"
    return None


def decode_json_text(text: str, what: str = "the request body") -> Any:
    """The JSON value in ``text``, refused if Python could not handle it safely afterwards.

    ``what`` names the text in messages (a tool call's arguments are JSON text too).

    Raises:
        UnsafeJsonError: 400 when ``text`` holds a lone surrogate, a duplicate key, a
            non-finite or over-long number, or nests deeper than MAX_DEPTH.
        RequestError: 400 when ``text`` is not JSON.
    """
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise UnsafeJsonError(
            400,
            f"{what} nests arrays and objects {depth} deep; at most {MAX_DEPTH} levels are"
            " accepted",
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _RefusedError as exc:
        raise UnsafeJsonError(400, f"{what} {exc}", param=exc.param) from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"{what} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # not reachable with the checks above
        raise UnsafeJsonError(400, f"{what} cannot be decoded: {clip(str(exc), 200)}") from None
    if "\\u" in text and (surrogate := _lone_surrogate(value)) is not None:
        raise UnsafeJsonError(
            400,
            f"a string in {what} holds a lone UTF-16 surrogate ({surrogate}), which is not a"
            " character; send the pair, or the character itself as UTF-8",
        )
    return value


def decode_json_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (strict UTF-8; see :func:`decode_json_text`).

    Raises:
        RequestError: 400 when ``raw`` is not UTF-8, not JSON that Python handles safely, or
            not an object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, f"the request body is not UTF-8: byte {exc.start} is invalid"
        ) from None
    body = decode_json_text(text)
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object, not {_json_kind(body)}")
    return body


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"
