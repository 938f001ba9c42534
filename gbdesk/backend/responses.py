"""OpenAI's response objects for one chat or text completion: whole, or as SSE events.

Stream events are built from pre-encoded halves around the text (no dict per token), and each
event is complete bytes (``data: {...}\n\n``) so that the transport writes it in one piece.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from gbdesk.backend.engine import Finish, TokenLogprob


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's chat ``logprobs``: ``{"content": [{token, logprob, bytes, top_logprobs}]}``."""
    return {
        "content": [
            {
                "token": _text(entry.piece),
                "logprob": entry.logprob,
                "bytes": list(entry.piece),
                "top_logprobs": [
                    {"token": _text(piece), "logprob": logprob, "bytes": list(piece)}
                    for piece, logprob in entry.top
                ],
            }
            for entry in entries
        ]
    }


def text_logprobs(entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """The completions API's ``logprobs``: tokens, token_logprobs, top_logprobs, text_offset."""
    offsets, position = [], offset
    for entry in entries:
        offsets.append(position)
        position += len(_text(entry.piece))
    return {
        "tokens": [_text(entry.piece) for entry in entries],
        "token_logprobs": [entry.logprob for entry in entries],
        "top_logprobs": [{_text(p): lp for p, lp in entry.top} for entry in entries],
        "text_offset": offsets,
    }


_PLACEHOLDER = "\u0000text\u0000"


def _delta_choice(delta: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}


class ResponseShape:
    """Builds OpenAI's response objects for one request (chat or text completion)."""

    def __init__(self, kind: str, model_id: str) -> None:
        self.chat = kind == "chat"
        prefix = "chatcmpl" if self.chat else "cmpl"
        self.id = f"{prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model_id
        self.object = "chat.completion" if self.chat else "text_completion"
        self.chunk_object = "chat.completion.chunk" if self.chat else "text_completion"
        self._halves: dict[tuple[str, bool], tuple[bytes, bytes]] = {}

    def _halves_for(self, field: str, first: bool) -> tuple[bytes, bytes]:
        key = (field, first)
        halves = self._halves.get(key)
        if halves is None:
            if self.chat:
                delta: dict[str, Any] = {"role": "assistant"} if first else {}
                delta[field] = _PLACEHOLDER
                choice = _delta_choice(delta)
            else:
                choice = {"index": 0, "text": _PLACEHOLDER, "logprobs": None, "finish_reason": None}
            halves = self._halves[key] = self._split_template(choice)
        return halves

    @staticmethod
    def usage(finish: Finish) -> dict[str, Any]:
        return {
            "prompt_tokens": finish.prompt_tokens,
            "completion_tokens": finish.completion_tokens,
            "total_tokens": finish.prompt_tokens + finish.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": finish.cached_tokens},
        }

    def complete(
        self,
        text: str,
        finish: Finish,
        *,
        reasoning: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        logprobs: list[TokenLogprob] | None = None,
        unfinished_call: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The whole response; ``reasoning`` (chat only) becomes ``reasoning_content``.

        ``unfinished_call`` (``{"name", "message"}``) is a tool call the model began but that
        is not returned (cut off): the choice carries it as ``unfinished_tool_call``, and the
        content holds only the text before the call (null when there is none).
        """
        reason: str = finish.reason  # or "tool_calls", which the engine does not know
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if reasoning:
                message["reasoning_content"] = reasoning
            if tool_calls or unfinished_call:
                message["content"] = text or None
            if tool_calls:
                message["tool_calls"] = tool_calls
                reason = "tool_calls" if reason == "stop" else reason
            choice = {"index": 0, "message": message}
            if unfinished_call:
                choice["unfinished_tool_call"] = unfinished_call
        else:
            choice = {"index": 0, "text": text}
        choice["logprobs"] = None
        if logprobs is not None:
            choice["logprobs"] = chat_logprobs(logprobs) if self.chat else text_logprobs(logprobs)
        choice["finish_reason"] = reason
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(finish),
        }

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.chunk_object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def delta_bytes(self, text: str, first: bool, field: str = "content") -> bytes:
        """One SSE event carrying ``text`` in ``delta[field]`` (pre-encoded, no dict per token)."""
        head, tail = self._halves_for(field, first)
        return head + json.dumps(text, ensure_ascii=False).encode() + tail

    def _split_template(self, choice: dict[str, Any]) -> tuple[bytes, bytes]:
        """The bytes of a chunk before and after its text (marked by a placeholder)."""
        encoded = b"data: " + json.dumps(self._chunk(choice), ensure_ascii=False).encode()
        head, tail = encoded.split(json.dumps(_PLACEHOLDER).encode())
        return head, tail + b"\n\n"

    def delta_with_logprobs(
        self, text: str, first: bool, field: str, entries: list[TokenLogprob], offset: int
    ) -> bytes:
        """One whole SSE event with ``text`` and the log-probabilities of its tokens."""
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            delta[field] = text
            choice = _delta_choice(delta)
            choice["logprobs"] = chat_logprobs(entries)
        else:
            choice = {"index": 0, "text": text, "finish_reason": None}
            choice["logprobs"] = text_logprobs(entries, offset)
        return sse(self._chunk(choice))

    def tool_call_events(self, call: dict[str, Any], index: int, first: bool) -> bytes:
        """Two whole SSE events for one call: its id and name, then its arguments."""
        head: dict[str, Any] = {"role": "assistant", "content": None} if first else {}
        function = call["function"]
        opening = {
            **head,
            "tool_calls": [
                {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": function["name"], "arguments": ""},
                }
            ],
        }
        arguments = {
            "tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]
        }
        return sse(self._chunk(_delta_choice(opening))) + sse(self._chunk(_delta_choice(arguments)))

    def last_delta(
        self,
        finish: Finish,
        first: bool,
        *,
        tool_calls: bool = False,
        unfinished_call: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The stream's last chunk, with ``finish_reason`` (and ``unfinished_tool_call``)."""
        if self.chat:
            delta: dict[str, Any] = {}
            if first:
                delta = {"role": "assistant", "content": None if unfinished_call else ""}
            reason = "tool_calls" if tool_calls and finish.reason == "stop" else finish.reason
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            if unfinished_call:
                choice["unfinished_tool_call"] = unfinished_call
        else:
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": finish.reason}
        return self._chunk(choice)

    def usage_chunk(self, finish: Finish) -> dict[str, Any]:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage(finish)
        return chunk


def sse(payload: Any) -> bytes:
    """One whole server-sent event carrying ``payload`` as JSON."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
