"""Chat conversations kept on disk: one JSON file per conversation in the data folder.

Files are written atomically (temporary file + ``os.replace``), so a crash mid-save never leaves
half a conversation. A file that cannot be read is skipped and logged, never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gbdesk.errors import GbdeskError
from gbdesk.paths import app_paths

log = logging.getLogger(__name__)


@dataclass
class ChatMessage:
    role: str  # "user", "assistant" or "system"
    content: str
    model: str = ""  # the model that wrote an assistant message
    finish: str = ""  # the server's finish_reason: "stop", "length" (token limit), "" unknown


@dataclass
class Conversation:
    id: str
    title: str
    created: float
    messages: list[ChatMessage] = field(default_factory=list)
    system_prompt: str = ""  # empty: the default one

    @classmethod
    def new(cls, title: str = "New chat") -> Conversation:
        return cls(id=uuid.uuid4().hex[:12], title=title, created=time.time())

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Conversation:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or "Chat"),
            created=float(data.get("created", 0.0)),
            messages=[
                ChatMessage(
                    str(m["role"]),
                    str(m["content"]),
                    model=str(m.get("model", "")),
                    finish=str(m.get("finish", "")),
                )
                for m in data["messages"]
            ],
            system_prompt=str(data.get("system_prompt", "")),
        )


class ConversationStore:
    """Conversations under ``<data>/conversations``, newest first."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or app_paths().data_dir / "conversations"

    def _path(self, conversation_id: str) -> Path:
        return self.folder / f"{conversation_id}.json"

    def load_all(self) -> list[Conversation]:
        if not self.folder.is_dir():
            return []
        conversations = []
        for path in self.folder.glob("*.json"):
            try:
                conversations.append(
                    Conversation.from_json(json.loads(path.read_text(encoding="utf-8")))
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping the unreadable conversation %s: %s", path, exc)
        return sorted(conversations, key=lambda c: c.created, reverse=True)

    def save(self, conversation: Conversation) -> Path:
        """Write one conversation atomically.

        Raises:
            GbdeskError: the data folder cannot be written.
        """
        target = self._path(conversation.id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".chat-", suffix=".json", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(conversation.to_json(), handle, ensure_ascii=False, indent=1)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise GbdeskError(
                f"cannot save the conversation to {target}: {exc}",
                fix="check that the data folder is writable and the disk is not full",
            ) from exc
        return target

    def delete(self, conversation_id: str) -> None:
        self._path(conversation_id).unlink(missing_ok=True)
