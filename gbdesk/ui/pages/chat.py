"""Chat: conversations with the local backend, streamed, rendered as markdown, kept on disk.

Replies stream in a worker (see :mod:`gbdesk.app.chat_client`); the transcript is re-rendered at
most every 40 ms while tokens arrive, so a fast model cannot flood the event loop.
Ctrl+Enter sends, Esc stops.

The header shows the model the backend serves and lets a person switch it (the backend restarts
with it; it is the backend botserver shares, which the banner says, and botserver's files gbdesk
wrote are kept naming the served model). Each conversation keeps its own system prompt. Under
each message: Copy, and Edit (yours: back into the composer, the later messages dropped, with
Undo until it is sent again) or Regenerate (the last answer); each code block has its own Copy.
Temperature and max tokens apply to the next reply; an answer the token limit cut ends with a
note saying so. A deleted conversation can be brought back with Undo until the next deletion.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gbdesk.app.chat_client import stream_chat
from gbdesk.app.chat_store import ChatMessage, Conversation, ConversationStore
from gbdesk.errors import GbdeskError, os_error_words
from gbdesk.ui.resources_access import icon
from gbdesk.ui.state import AppState
from gbdesk.ui.theme import current_palette
from gbdesk.ui.widgets import (
    MARGIN,
    Banner,
    ElidingComboBox,
    FlowLayout,
    labelled,
    muted,
    page_header,
    primary_button,
)
from gbdesk.ui.workers import TaskHandle, run_task

RENDER_INTERVAL_MS = 40
SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
_FENCE = re.compile(r"^(```|~~~)")
TOKEN_LIMIT_NOTE = "Stopped: the token limit was reached"


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of ``markdown``, without their fences."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if _FENCE.match(line.strip()):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _with_code_links(markdown: str, index: int) -> str:
    """``markdown`` with a "Copy code" link after each closed fenced block."""
    out: list[str] = []
    inside = False
    block = 0
    for line in markdown.splitlines():
        out.append(line)
        if _FENCE.match(line.strip()):
            inside = not inside
            if not inside:
                out.append(f"\n[Copy code](gbdesk:code/{index}/{block})\n")
                block += 1
    return "\n".join(out)


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
        self._deleted: tuple[int, Conversation] | None = None  # for Undo
        # For Undo of "Edit and resend": the chat, where it was cut, what was cut, the composer.
        self._edited: tuple[Conversation, int, list[ChatMessage], str] | None = None
        self._models: list = []
        self._switching_to = ""  # the model the picker switched the backend to, until it serves

        outer = QVBoxLayout(self)
        outer.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        outer.setSpacing(10)
        # The title and the model on one line, the page's sentence under them (a long model
        # name then never squeezes the sentence into a tall column).
        header = QHBoxLayout()
        header.addWidget(page_header("Chat"), 1)
        header.addWidget(QLabel("Model"))
        # The whole name when there is room; "…" and the name in the tooltip when narrow.
        self.model_picker = ElidingComboBox(minimum_chars=16)
        self.model_picker.setToolTip(
            "The model the shared bot backend serves, for botserver's bots too; choosing another "
            "restarts the backend with it for every user of it"
        )
        self.model_picker.activated.connect(self._on_model_picked)
        header.addWidget(self.model_picker)
        outer.addLayout(header)
        subtitle = QLabel("Talk to the model the local backend is serving.")
        subtitle.setObjectName("PageSubtitle")
        subtitle.setWordWrap(True)
        outer.addWidget(subtitle)
        self.banner = Banner()
        outer.addWidget(self.banner)
        from gbdesk.ui.backend_widgets import BackendNotice

        self.backend_notice = BackendNotice(state.backend, self)
        outer.addWidget(self.backend_notice)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        left = QWidget()
        left.setMinimumWidth(150)
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
        right.setMinimumWidth(300)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        right_layout.setSpacing(8)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(QLabel("System prompt"))
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText(SYSTEM_PROMPT)
        self.system_prompt.setToolTip("How the model should behave in this conversation")
        self.system_prompt.editingFinished.connect(self._save_system_prompt)
        prompt_row.addWidget(self.system_prompt, 1)
        right_layout.addLayout(prompt_row)
        self.transcript = QTextBrowser()
        self.transcript.setMinimumHeight(80)
        self.transcript.setObjectName("Transcript")
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._on_link)
        self.composer = QPlainTextEdit()
        self.composer.setPlaceholderText("Write a message. Ctrl+Enter sends, Esc stops the reply.")
        self.composer.setMinimumHeight(56)
        self.composer.setMaximumHeight(110)
        options = FlowLayout()  # how the next reply is written (two lines when narrow)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(DEFAULT_TEMPERATURE)
        self.temperature.setToolTip("Lower: steadier answers; higher: more varied ones")
        options.add(labelled("Temperature", self.temperature))
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(16, 32_768)
        self.max_tokens.setSingleStep(128)
        self.max_tokens.setValue(DEFAULT_MAX_TOKENS)
        self.max_tokens.setToolTip("The longest answer, in tokens; a longer one is cut off")
        options.add(labelled("Max tokens", self.max_tokens))
        buttons = QHBoxLayout()
        self.status = muted("")
        buttons.addWidget(self.status, 1)
        self.stop_button = QPushButton(icon("stop", current_palette().error), "Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.send_button = primary_button("Send")
        self.send_button.setIcon(icon("send", "#ffffff"))
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        right_layout.addWidget(self.transcript, 1)
        right_layout.addLayout(options)
        right_layout.addWidget(self.composer)
        right_layout.addLayout(buttons)

        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 700])
        outer.addWidget(splitter, 1)

        QShortcut(QKeySequence("Ctrl+Return"), self, self.send)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.send)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop)
        QShortcut(QKeySequence("Ctrl+M"), self, self.model_picker.setFocus)
        self.model_picker.setToolTip(self.model_picker.toolTip() + " (Ctrl+M)")

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)

        state.backend.state_changed.connect(self._on_backend)
        state.botserver_synced.connect(self._on_botserver_synced)
        self.refresh_models()
        self._fill_list()
        if self.conversations:
            self.conversation_list.setCurrentRow(0)
        else:
            self.new_conversation()

    # --- the model -----------------------------------------------------------------------

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh_models()  # a model imported meanwhile
        self.composer.setFocus()

    def refresh_models(self) -> None:
        from gbdesk.ui.pages.models import list_installed

        run_task("list installed models", list_installed, on_done=self._fill_models)

    def _fill_models(self, models: list) -> None:
        self._models = models
        self._show_model()

    def served_model(self) -> str:
        """The model the backend serves, or the one it will serve when started."""
        return self.state.backend.current_model() or self.state.settings.model or "starter"

    def _show_model(self) -> None:
        from gbdesk.ui.backend_widgets import model_label
        from gbdesk.ui.pages.models import same_model

        served = self.served_model()
        picker = self.model_picker
        picker.blockSignals(True)
        picker.clear()
        selected = -1
        for model in self._models:
            picker.addItem(model.name, model.path)
            if same_model(served, model.path):
                selected = picker.count() - 1
        if selected < 0:
            picker.addItem(model_label(served), served)
            selected = picker.count() - 1
        picker.setCurrentIndex(selected)
        picker.blockSignals(False)

    def model_name(self) -> str:
        """The served model's file name (sent as ``model``; shown above each answer)."""
        from gbdesk.ui.backend_widgets import model_label

        return model_label(self.model_picker.currentData() or self.served_model())

    def _on_model_picked(self, index: int) -> None:
        from gbdesk.ui.pages.models import same_model, serve_model

        path = self.model_picker.itemData(index)
        self.composer.setFocus()  # picked: back to writing
        if not path or (self.state.backend.is_running() and same_model(self.served_model(), path)):
            return
        serve_model(self.state, path)
        # The backend is shared: botserver uses the same one. Say so now; its files follow.
        self._switching_to = path
        self.banner.show_message(
            f"Switching the shared bot backend to {self.model_picker.itemText(index)}: it "
            "restarts, and botserver's bots use this model too once it is ready.",
            level="info",
        )

    def _on_botserver_synced(self, outcome: object) -> None:
        """After a switch from the picker: what botserver's files say now (kept true)."""
        from gbdesk.backend.botserver_link import ModelSync
        from gbdesk.ui.backend_widgets import model_label
        from gbdesk.ui.pages.models import same_model

        path = self._switching_to
        if not path or not same_model(self.state.backend.current_model(), path):
            return
        self._switching_to = ""
        name = model_label(path)
        served = f"The shared bot backend now serves {name}, for botserver's bots too."
        if isinstance(outcome, GbdeskError):
            self.banner.show_message(
                f"{served} botserver's files could not be updated: {outcome.message}",
                outcome.fix or "",
            )
        elif isinstance(outcome, ModelSync) and outcome.missing:
            gone = ", ".join(str(p) for p in outcome.missing)
            self.banner.show_message(
                f"{served} botserver's file {gone} is gone, so it was not updated.",
                "write botserver's files again in the setup wizard's backend step (File menu)",
                level="warning",
            )
        elif isinstance(outcome, ModelSync):
            files = ", ".join(str(p) for p in (*outcome.updated, *outcome.already))
            self.banner.show_message(
                f"{served} botserver's settings name it too ({outcome.model_id}): {files}.",
                level="success",
            )
        else:  # gbdesk never wrote botserver's files: it cannot know them
            self.banner.show_message(
                f"{served} If botserver's config.csv (llm-model) or .env (LLM_MODEL) were set "
                "by hand, they still name the old model.",
                "let gbdesk write them in the setup wizard's backend step (File menu): it "
                "then keeps them naming the served model",
                level="warning",
            )

    def _on_backend(self, view) -> None:  # view: a BackendView
        self._show_model()
        if view.phase == "ready" and self.backend_notice.retry_text and not self.is_streaming():
            text, self.backend_notice.retry_text = self.backend_notice.retry_text, ""
            self.composer.setPlainText(text)
            self.send()

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
        """Delete the open conversation; the banner's Undo brings it back."""
        if self.current is None or self.is_streaming():
            return
        conversation = self.current
        self.store.delete(conversation.id)
        index = self.conversations.index(conversation)
        self.conversations.pop(index)
        self._deleted = (index, conversation)
        self.current = None
        self._fill_list()
        if not self.conversations:
            self.new_conversation()
        else:
            self.conversation_list.setCurrentRow(min(index, len(self.conversations) - 1))
        if conversation.messages:
            self.banner.show_message(
                f"Deleted the chat \u201c{conversation.title}\u201d.",
                level="info",
                action=("Undo", self.undo_delete),
            )

    def undo_delete(self) -> None:
        """Bring the last deleted conversation back (saved again)."""
        if self._deleted is None:
            return
        index, conversation = self._deleted
        self._deleted = None
        if self.current is not None and not self.current.messages:
            self.conversations.remove(self.current)  # the empty chat opened in its place
        index = min(index, len(self.conversations))
        self.conversations.insert(index, conversation)
        self.current = None
        self._fill_list()
        self.conversation_list.setCurrentRow(index)
        self.banner.clear()
        self._save(conversation)

    def _on_conversation_selected(self, row: int) -> None:
        if self.is_streaming() or row < 0:
            return
        self.current = self.conversations[row]
        self.system_prompt.setText(self.current.system_prompt)
        self._render()

    def _save_system_prompt(self) -> None:
        if self.current is None:
            return
        text = self.system_prompt.text().strip()
        if text != self.current.system_prompt:
            self.current.system_prompt = text
            if self.current.messages:
                self._save(self.current)

    def _save(self, conversation: Conversation) -> None:
        try:
            self.store.save(conversation)
        except Exception as exc:  # shown, never lost silently
            words = os_error_words(exc)
            message = getattr(exc, "message", None) or f"Cannot save the chat: {words}"
            self.banner.show_message(message, getattr(exc, "fix", "") or "")

    # --- sending and streaming -----------------------------------------------------------

    def is_streaming(self) -> bool:
        return self._task is not None

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or self.is_streaming() or self.current is None:
            return
        self.banner.clear()
        self._save_system_prompt()
        conversation = self.current
        if not conversation.messages:
            conversation.title = text.splitlines()[0][:48]
            self.conversation_list.item(self.conversations.index(conversation)).setText(
                conversation.title
            )
        conversation.messages.append(ChatMessage("user", text))
        self._edited = None  # sent: the edit is final
        self.composer.clear()
        self._ask()

    def regenerate(self) -> None:
        """Write the last answer again."""
        conversation = self.current
        if conversation is None or self.is_streaming() or not conversation.messages:
            return
        if conversation.messages[-1].role == "assistant":
            conversation.messages.pop()
        if conversation.messages and conversation.messages[-1].role == "user":
            self.banner.clear()
            self._ask()

    def edit(self, index: int) -> None:
        """Put message ``index`` back in the composer; it and what followed are dropped."""
        conversation = self.current
        if conversation is None or self.is_streaming():
            return
        if not 0 <= index < len(conversation.messages):
            return
        text = conversation.messages[index].content
        dropped = conversation.messages[index:]
        self._edited = (conversation, index, dropped, self.composer.toPlainText())
        del conversation.messages[index:]
        self.composer.setPlainText(text)
        self.composer.setFocus()
        self._render()
        self._save(conversation)
        later = len(dropped) - 1
        removed = (
            "it was"
            if not later
            else f"it and the {later} message{'s' * (later > 1)} after it were"
        )
        self.banner.show_message(
            f"Your message is back in the box below to edit; {removed} removed from the chat.",
            level="info",
            action=("Undo", self.undo_edit),
        )

    def undo_edit(self) -> None:
        """Put back what "Edit and resend" removed (saved again), and the composer's old text."""
        if self._edited is None or self.is_streaming():
            return
        conversation, index, dropped, composer_text = self._edited
        self._edited = None
        if conversation not in self.conversations:
            return  # deleted since (its own Undo brings it back as it was then)
        conversation.messages[index:] = dropped
        if conversation is not self.current:
            self.conversation_list.setCurrentRow(self.conversations.index(conversation))
        self.composer.setPlainText(composer_text)
        self.banner.clear()
        self._render()
        self._save(conversation)

    def _ask(self) -> None:
        conversation = self.current
        assert conversation is not None
        model = self.model_name()
        self._streaming_reply = ChatMessage("assistant", "", model=model)
        conversation.messages.append(self._streaming_reply)
        self._render()
        history = [{"role": "system", "content": conversation.system_prompt or SYSTEM_PROMPT}] + [
            {"role": m.role, "content": m.content} for m in conversation.messages[:-1]
        ]
        base_url = self.state.backend_base_url()
        api_key = self.state.backend_api_key()
        max_tokens = self.max_tokens.value()
        temperature = self.temperature.value()
        reply = self._streaming_reply
        self._set_streaming(True)
        self.status.setText(f"{model} is writing…")
        self._task = run_task(
            "chat",
            lambda ctx: stream_chat(
                base_url,
                history,
                on_text=ctx.emit,
                on_finish=lambda reason: setattr(reply, "finish", reason),
                cancel=ctx.cancel_event,
                model=model,
                api_key=api_key,
                max_tokens=max_tokens,
                temperature=temperature,
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
        if self._streaming_reply is not None:
            self._streaming_reply.finish = "cancelled"

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.backend.client import BackendUnreachableError

        message, fix = error.message, error.fix or ""
        # The chat client wraps the transport's error; its cause says what happened.
        unreachable = isinstance(error.__cause__, BackendUnreachableError) or isinstance(
            error, BackendUnreachableError
        )
        self.status.setText("")
        conversation = self.current
        reply = self._streaming_reply
        if conversation is not None and reply is not None and not reply.content:
            conversation.messages.remove(reply)
        if not self.state.backend.is_ready() and unreachable:
            # One banner, in plain words: the notice above says the backend is not running and
            # offers to start it; the message waits in the composer and is sent once it is ready.
            if conversation is not None and conversation.messages:
                last = conversation.messages[-1]
                if last.role == "user":
                    conversation.messages.pop()
                    self.composer.setPlainText(last.content)
                    self.backend_notice.retry_text = last.content
            self.backend_notice.show_view(self.state.backend.view)
            return
        if unreachable:
            message = "The model did not answer: the bot backend cannot be reached."
            fix = "check that the backend runs (Dashboard), then press Retry"
        self.banner.show_message(message, fix, action=("Retry", self.regenerate))

    def _on_finished(self) -> None:
        self._task = None
        self._streaming_reply = None
        self._set_streaming(False)
        self._render_timer.stop()
        self._render()
        if self.current is not None and self.current.messages:
            self._save(self.current)

    def _set_streaming(self, streaming: bool) -> None:
        self.send_button.setEnabled(not streaming)
        self.stop_button.setEnabled(streaming)
        self.conversation_list.setEnabled(not streaming)
        self.new_button.setEnabled(not streaming)
        self.delete_button.setEnabled(not streaming)
        self.model_picker.setEnabled(not streaming)

    # --- actions from the transcript's links ---------------------------------------------

    def _on_link(self, url: QUrl) -> None:
        if url.scheme() != "gbdesk":
            QDesktopServices.openUrl(url)
            return
        parts = url.path().split("/")
        try:
            action, index = parts[0], int(parts[1])
            message = self.current.messages[index]  # type: ignore[union-attr]
        except (IndexError, ValueError, AttributeError):
            return
        if action == "copy":
            self.copy_text(message.content)
        elif action == "code":
            blocks = code_blocks(message.content)
            if len(parts) > 2 and parts[2].isdigit() and int(parts[2]) < len(blocks):
                self.copy_text(blocks[int(parts[2])])
        elif action == "edit":
            self.edit(index)
        elif action == "regenerate":
            self.regenerate()

    def copy_text(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status.setText("Copied.")

    # --- rendering -----------------------------------------------------------------------

    def transcript_markdown(self) -> str:
        if self.current is None or not self.current.messages:
            return "*No messages yet. Ask the model anything.*"
        blocks = []
        messages = self.current.messages
        for index, message in enumerate(messages):
            streaming = message is self._streaming_reply
            if message.role == "user":
                who = "You"
            else:
                who = "Assistant" + (f" · {message.model}" if message.model else "")
            body = _with_code_links(message.content, index) if message.content else "…"
            block = f"**{who}**\n\n{body}"
            if message.finish == "length":
                block += (
                    f"\n\n*{TOKEN_LIMIT_NOTE}. "
                    "Raise Max tokens and press Regenerate for a longer answer.*"
                )
            elif message.finish == "cancelled":
                block += "\n\n*Stopped before the end.*"
            if not streaming:
                links = [f"[Copy](gbdesk:copy/{index})"]
                if message.role == "user":
                    links.append(f"[Edit and resend](gbdesk:edit/{index})")
                elif index == len(messages) - 1:
                    links.append(f"[Regenerate](gbdesk:regenerate/{index})")
                block += "\n\n" + " · ".join(links)
            blocks.append(block)
        return "\n\n---\n\n".join(blocks)

    def _render(self) -> None:
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        self.transcript.setMarkdown(self.transcript_markdown())
        if at_bottom:
            self.transcript.moveCursor(QTextCursor.MoveOperation.End)
            bar.setValue(bar.maximum())
