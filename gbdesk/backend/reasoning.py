"""Reasoning models' ``<think>…</think>`` output, split as llama-server's ``--reasoning-format``.

With ``deepseek`` (the default, like llama-server's ``auto``) the thinking goes to
``reasoning_content`` and ``content`` holds only the answer; with ``none`` the text is left as
the model wrote it. Reasoning starts either with ``<think>`` at the start of the output or,
when the chat template opened it (DeepSeek-R1's ends the prompt with ``<think>\\n``), at once.
"""

from __future__ import annotations

REASONING_FORMATS = ("deepseek", "none")
OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
CONTENT = "content"
REASONING = "reasoning_content"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ReasoningSplitter:
    """Splits streamed text into (field, text) pieces, ``field`` content or reasoning_content.

    Text that may be the start of a tag is held back until the next piece tells.
    """

    def __init__(self, *, started: bool = False) -> None:
        self._mode = "reasoning" if started else "start"
        self._held = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        """The pieces ready after ``text``."""
        out: list[tuple[str, str]] = []
        held = self._held + text
        self._held = ""
        while held:
            if self._mode == "start":
                stripped = held.lstrip()
                if stripped.startswith(OPEN_TAG):
                    self._mode = "reasoning"
                    held = stripped[len(OPEN_TAG) :].lstrip("\n")
                    continue
                if OPEN_TAG.startswith(stripped):  # maybe the tag, not yet whole
                    self._held = held
                    return out
                self._mode = "content"
                continue
            if self._mode == "content":
                out.append((CONTENT, held))
                return out
            index = held.find(CLOSE_TAG)
            if index >= 0:
                if index:
                    out.append((REASONING, held[:index]))
                self._mode = "content"
                held = held[index + len(CLOSE_TAG) :].lstrip("\n")
                continue
            keep = _partial_suffix(held, CLOSE_TAG)
            if len(held) > keep:
                out.append((REASONING, held[: len(held) - keep]))
            self._held = held[len(held) - keep :]
            return out
        return out

    def flush(self) -> list[tuple[str, str]]:
        """What is still held back, at the end of the output."""
        held, self._held = self._held, ""
        if not held:
            return []
        return [(REASONING if self._mode == "reasoning" else CONTENT, held)]

    def split_whole(self, text: str) -> tuple[str | None, str]:
        """(reasoning or None, content) of a whole answer."""
        pieces = self.feed(text) + self.flush()
        reasoning = "".join(piece for field, piece in pieces if field == REASONING)
        content = "".join(piece for field, piece in pieces if field == CONTENT)
        return (reasoning or None), content
