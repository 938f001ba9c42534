"""A streaming client for an OpenAI-compatible chat endpoint (the local backend, or any other).

It runs inside a worker (see :mod:`gbdesk.ui.workers`) or a CLI: each text delta goes to
``on_text``, and ``cancel`` (a ``threading.Event``) stops the stream between two chunks, closing
the connection so the server stops generating. The HTTP goes through
:class:`gbdesk.backend.client.BackendClient`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence

from gbdesk.backend.client import BackendClient, BackendHTTPError, BackendUnreachableError
from gbdesk.errors import GbdeskError


class ChatError(GbdeskError):
    """The chat endpoint could not be reached or answered with an error."""


def stream_chat(
    base_url: str,
    messages: Sequence[dict[str, str]],
    *,
    on_text: Callable[[str], None],
    cancel: threading.Event | None = None,
    model: str = "local",
    api_key: str | None = None,
    max_tokens: int = 512,
    temperature: float | None = None,
    on_finish: Callable[[str], None] | None = None,
    timeout_s: float = 120.0,
) -> str:
    """Send ``messages`` to ``base_url``/chat/completions with ``stream: true``.

    Returns the whole reply (what was received before a cancel, when cancelled).
    ``on_finish`` gets the server's ``finish_reason`` ("stop", or "length" when the reply was
    cut by ``max_tokens``).

    Raises:
        ChatError: the server is unreachable, answers with an HTTP error, or sends garbage.
    """
    client = BackendClient(base_url, api_key=api_key, timeout_s=timeout_s)
    body: dict[str, object] = {
        "model": model,
        "messages": list(messages),
        "stream": True,
        "max_tokens": max_tokens,
    }
    if temperature is not None:
        body["temperature"] = temperature
    parts: list[str] = []
    try:
        for payload in client.stream_events("/chat/completions", body, cancel=cancel):
            text, finish = _delta_text(payload)
            if finish and on_finish is not None:
                on_finish(finish)
            if text:
                parts.append(text)
                on_text(text)
    except BackendHTTPError as exc:
        raise ChatError(
            exc.message.replace("the server at", "the chat server at", 1),
            fix="check the backend's log on the Logs page",
        ) from exc
    except BackendUnreachableError as exc:
        raise ChatError(
            exc.message.replace("the server at", "the chat server at", 1),
            fix="start the backend (the Start button on this page or the Dashboard), "
            "or check its port in Settings",
        ) from exc
    return "".join(parts)


def _delta_text(payload: str) -> tuple[str, str]:
    """(text, finish_reason) of one streamed chunk."""
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ChatError(
            f"the chat server sent something that is not JSON: {payload[:80]!r}",
            fix="point gbdesk at an OpenAI-compatible server",
        ) from exc
    if "error" in event:
        message = event["error"].get("message", event["error"])
        raise ChatError(f"the chat server reported an error: {message}")
    choices = event.get("choices") or []
    if not choices:
        return "", ""
    delta = choices[0].get("delta") or {}
    return delta.get("content") or "", choices[0].get("finish_reason") or ""
