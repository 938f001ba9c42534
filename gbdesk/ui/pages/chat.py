"""Chat: conversations with the local backend, streamed, rendered as markdown, kept on disk.

Replies stream in a worker (see :mod:`gbdesk.app.chat_client`); the transcript is re-rendered at
most every 40 ms while tokens arrive, so a fast model cannot flood the event loop.
Ctrl+Enter sends, Esc stops.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gbdesk.app.chat_client import stream_chat
from gbdesk.app.chat_store import ChatMessage, Conversation, ConversationStore
from gbdesk.ui.resources_access import icon
from gbdesk.ui.state import AppState
from gbdesk.ui.theme import current_palette
from gbdesk.ui.widgets import MARGIN, Banner, muted, page_header, primary_button
from gbdesk.ui.workers import TaskHandle, run_task

RENDER_INTERVAL_MS = 40
SYSTEM_PROMPT = "You are a helpful assistant."


class ChatPage(QWidget):
    """Conversation list on the left, transcript and composer on the right."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Page")
        self.state = state
        self.store = ConversationStore()
        self.conversations: list[Conversation] = self.store.load_all()
        self.current: Conversation | None = None
        self._task: TaskHandle | None = None
        self._streaming_reply: ChatMessage | None = None
        self._render_pending = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        outer.setSpacing(12)
        outer.addWidget(page_header("Chat", "Talk to the model the local backend is serving."))
        self.banner = Banner()
        outer.addWidget(self.banner)
        from gbdesk.ui.backend_widgets import BackendNotice

        self.backend_notice = BackendNotice(state.backend, self)
        outer.addWidget(self.backend_notice)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 8, 0)
        self.new_button = QPushButton(icon("plus", current_palette().muted), "New chat")
        self.new_button.clicked.connect(self.new_conversation)
        self.conversation_list = QListWidget()
        # Long titles end in "…" (the full title is the tooltip) instead of a scroll bar.
        self.conversation_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversation_list.currentRowChanged.connect(self._on_conversation_selected)
        self.delete_button = QPushButton(icon("trash", current_palette().error), "Delete")
        self.delete_button.setProperty("danger", True)
        self.delete_button.clicked.connect(self.delete_current)
        left_layout.addWidget(self.new_button)
        left_layout.addWidget(self.conversation_list, 1)
        left_layout.addWidget(self.delete_button)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        right_layout.setSpacing(8)
        self.transcript = QTextBrowser()
        self.transcript.setObjectName("Transcript")
        self.transcript.setOpenExternalLinks(True)
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText("Write a message. Ctrl+Enter sends, Esc stops the reply.")
        self.composer.setFixedHeight(86)
        buttons = QHBoxLayout()
        self.status = muted("", wrap=False)
        self.stop_button = QPushButton(icon("stop", current_palette().muted), "Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.send_button = primary_button("Send")
        self.send_button.setIcon(icon("send", "#ffffff"))
        self.send_button.clicked.connect(self.send)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        right_layout.addWidget(self.transcript, 1)
        right_layout.addWidget(self.composer)
        right_layout.addLayout(buttons)

        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 700])
        outer.addWidget(splitter, 1)

        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.send)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.send)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)

        self._fill_list()
        if self.conversations:
            self.conversation_list.setCurrentRow(0)
        else:
            self.new_conversation()

    # --- conversations -------------------------------------------------------------------

    def _fill_list(self) -> None:
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        for conversation in self.conversations:
            item = QListWidgetItem(conversation.title)
            item.setToolTip(conversation.title)
            self.conversation_list.addItem(item)
        self.conversation_list.blockSignals(False)

    def new_conversation(self) -> None:
        if self.current is not None and not self.current.messages:
            return  # an empty chat is already open
        conversation = Conversation.new()
        self.conversations.insert(0, conversation)
        self._fill_list()
        self.conversation_list.setCurrentRow(0)

    def delete_current(self) -> None:
        if self.current is None or self.is_streaming():
            return
        self.store.delete(self.current.id)
        index = self.conversations.index(self.current)
        self.conversations.pop(index)
        self.current = None
        self._fill_list()
        if not self.conversations:
            self.new_conversation()
        else:
            self.conversation_list.setCurrentRow(min(index, len(self.conversations) - 1))

    def _on_conversation_selected(self, row: int) -> None:
        if self.is_streaming() or row < 0:
            return
        self.current = self.conversations[row]
        self._render()

    # --- sending and streaming -----------------------------------------------------------

    def is_streaming(self) -> bool:
        return self._task is not None

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or self.is_streaming() or self.current is None:
            return
        self.banner.clear()
        conversation = self.current
        if not conversation.messages:
            conversation.title = text.splitlines()[0][:48]
            self.conversation_list.item(self.conversations.index(conversation)).setText(
                conversation.title
            )
        conversation.messages.append(ChatMessage("user", text))
        self.composer.clear()
        self._streaming_reply = ChatMessage("assistant", "")
        conversation.messages.append(self._streaming_reply)
        self._render()
        history = [{"role": "system", "content": SYSTEM_PROMPT}] + [
            {"role": m.role, "content": m.content} for m in conversation.messages[:-1]
        ]
        settings = self.state.settings
        base_url = self.state.backend_base_url()
        api_key = self.state.backend_api_key()
        self._set_streaming(True)
        self.status.setText("The model is writing…")
        self._task = run_task(
            "chat",
            lambda ctx: stream_chat(
                base_url,
                history,
                on_text=ctx.emit,
                cancel=ctx.cancel_event,
                model=settings.model or "local",
                api_key=api_key,
            ),
            on_item=self._on_text,
            on_done=self._on_done,
            on_failed=self._on_failed,
            on_cancelled=self._on_cancelled,
            on_finished=self._on_finished,
        )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.status.setText("Stopping…")

    def _on_text(self, text: str) -> None:
        if self._streaming_reply is not None:
            self._streaming_reply.content += text
            if not self._render_timer.isActive():
                self._render_timer.start()

    def _on_done(self, _reply: str) -> None:
        self.status.setText("")

    def _on_cancelled(self) -> None:
        self.status.setText("Stopped.")

    def _on_failed(self, message: str, fix: str) -> None:
        self.status.setText("")
        self.banner.show_message(message, fix)
        if self._streaming_reply is not None and not self._streaming_reply.content:
            self.current.messages.remove(self._streaming_reply)  # type: ignore[union-attr]

    def _on_finished(self) -> None:
        self._task = None
        self._streaming_reply = None
        self._set_streaming(False)
        self._render_timer.stop()
        self._render()
        if self.current is not None and self.current.messages:
            try:
                self.store.save(self.current)
            except Exception as exc:  # shown, never lost silently
                self.banner.show_message(str(exc))

    def _set_streaming(self, streaming: bool) -> None:
        self.send_button.setEnabled(not streaming)
        self.stop_button.setEnabled(streaming)
        self.conversation_list.setEnabled(not streaming)
        self.new_button.setEnabled(not streaming)
        self.delete_button.setEnabled(not streaming)

    # --- rendering -----------------------------------------------------------------------

    def transcript_markdown(self) -> str:
        if self.current is None or not self.current.messages:
            return "*No messages yet. Ask the model anything.*"
        blocks = []
        for message in self.current.messages:
            who = "You" if message.role == "user" else "Assistant"
            body = message.content or "…"
            blocks.append(f"**{who}**\n\n{body}")
        return "\n\n---\n\n".join(blocks)

    def _render(self) -> None:
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        self.transcript.setMarkdown(self.transcript_markdown())
        if at_bottom:
            self.transcript.moveCursor(QTextCursor.MoveOperation.End)
            bar.setValue(bar.maximum())
