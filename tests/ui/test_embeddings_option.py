"""The wizard's "knowledge base embeddings" option: the catalogue's embedding model downloaded
from the local Hub, then the real backend child serving /v1/embeddings on its own port, and
botserver's settings showing the embeddings server."""

from __future__ import annotations

import json
import urllib.request

import pytest
from PySide6.QtCore import Qt

from tests.free_ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_knowledge_base_embeddings_download_and_serve(
    qtbot, state, hub_server, starter_model
) -> None:
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.catalog.model import BOTSERVER_EMBEDDING_MODEL
    from gbdesk.ui.wizard.backend import BackendPage

    entry = load_catalog().require(BOTSERVER_EMBEDDING_MODEL)
    (quant,) = entry.quants
    hub_server.add_file(entry.repo, quant.files[0], starter_model)  # stands in for the file
    port, embedding_port = free_port(), free_port()
    state.update_settings(model=str(starter_model), embedding_port=embedding_port)
    page = BackendPage(state)
    qtbot.addWidget(page)
    page.show()
    page.port.setValue(port)
    assert not page.embeddings.isChecked()  # off until asked for
    page.embeddings.setChecked(True)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            state.backend.is_ready()
            or state.backend.view.phase == "failed"
            or page.banner.level == "error"
        ),
        timeout=180_000,
    )
    assert state.backend.is_ready(), (state.backend.view, page.banner.text())
    assert state.settings.embedding_model == BOTSERVER_EMBEDDING_MODEL
    request = urllib.request.Request(
        f"http://127.0.0.1:{embedding_port}/v1/embeddings",
        data=json.dumps({"input": ["a knowledge base text"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        reply = json.loads(response.read())
    assert reply["model"] == quant.files[0]
    assert len(reply["data"][0]["embedding"]) == 576  # the stand-in's embedding length
    qtbot.waitUntil(page.botserver_card.isVisible, timeout=30_000)
    lines = page.value_lines()
    assert f"embedding-url,http://127.0.0.1:{embedding_port}/v1/embeddings" in lines
    assert f"embedding-model,{quant.files[0]}" in lines
    assert "embedding-dimensions,576" in lines
