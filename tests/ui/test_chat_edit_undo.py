"""Chat's "Edit and resend" takes messages out of a conversation: like Delete, it has Undo."""

from __future__ import annotations

import json

from PySide6.QtCore import QUrl


def _conversation(chat):
    from gbdesk.app.chat_store import ChatMessage

    conversation = chat.current
    conversation.title = "Dragons"
    conversation.messages[:] = [
        ChatMessage("user", "Tell me about dragons."),
        ChatMessage("assistant", "Dragons are large reptiles of legend."),
        ChatMessage("user", "And castles?"),
        ChatMessage("assistant", "Castles are fortified homes."),
    ]
    chat._save(conversation)
    return conversation


def _saved_contents(chat, conversation) -> list[str]:
    data = json.loads((chat.store.folder / f"{conversation.id}.json").read_text("utf-8"))
    return [message["content"] for message in data["messages"]]


def test_edit_and_resend_can_be_undone(qtbot, state) -> None:
    from gbdesk.ui.pages.chat import ChatPage

    chat = ChatPage(state)
    qtbot.addWidget(chat)
    chat.show()
    conversation = _conversation(chat)
    before = [m.content for m in conversation.messages]
    chat.composer.setPlainText("a draft I was writing")

    chat._on_link(QUrl("gbdesk:edit/0"))  # the first question: everything goes
    assert conversation.messages == [] and _saved_contents(chat, conversation) == []
    assert chat.composer.toPlainText() == "Tell me about dragons."
    assert chat.banner.isVisible() and chat.banner.action_button.text() == "Undo"
    assert "3 messages after it" in chat.banner.text()

    chat.banner.action_button.click()
    assert [m.content for m in conversation.messages] == before
    assert _saved_contents(chat, conversation) == before  # the file is whole again
    assert chat.composer.toPlainText() == "a draft I was writing"
    assert "Castles are fortified homes." in chat.transcript.toPlainText()
    assert not chat.banner.isVisible()

    # A later message: only it and what follows go, and come back.
    chat._on_link(QUrl("gbdesk:edit/2"))
    assert [m.content for m in conversation.messages] == before[:2]
    assert "the 1 message after it" in chat.banner.text()
    chat.undo_edit()
    assert [m.content for m in conversation.messages] == before

    # Once the edited message is sent, the edit is final: Undo brings nothing back.
    chat._on_link(QUrl("gbdesk:edit/2"))
    chat.composer.setPlainText("And towers?")
    chat.send()  # no backend runs: the question goes back to the composer, to send once it runs
    qtbot.waitUntil(lambda: not chat.is_streaming(), timeout=30_000)
    chat.undo_edit()
    assert [m.content for m in conversation.messages] == before[:2]
