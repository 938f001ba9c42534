"""Words the app shows: real paths, no errno, the bundled starter said to be bundled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtWidgets import QLabel


def _texts(widget) -> str:
    return "\n".join(label.text() for label in widget.findChildren(QLabel))


def test_the_welcome_step_shows_the_real_download_folder(qtbot, state, monkeypatch) -> None:
    from gbdesk.download.hub import hub_cache_dir
    from gbdesk.ui.wizard.welcome import WelcomePage

    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    page = WelcomePage(state)
    qtbot.addWidget(page)
    text = _texts(page)
    assert "HF_HOME or" not in text and "~/.cache" not in text
    assert str(hub_cache_dir()) in text
    assert str(hub_cache_dir()) == os.path.join(os.environ["HF_HOME"], "hub")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HF_HOME": "/tmp/hf-home"},
        {"XDG_CACHE_HOME": "/tmp/xdg"},
        {"HF_HUB_CACHE": "/tmp/hub-cache", "HF_HOME": "/tmp/ignored"},
        {"HUGGINGFACE_HUB_CACHE": "/tmp/old-name"},
    ],
)
def test_the_download_folder_is_the_one_huggingface_hub_uses(env: dict[str, str]) -> None:
    """gbdesk resolves the cache without importing huggingface_hub: the same folder."""
    names = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")
    clean = {k: v for k, v in os.environ.items() if k not in names}
    code = (
        "import json; from huggingface_hub import constants; "
        "from gbdesk.download.hub import hub_cache_dir; "
        "print(json.dumps([str(hub_cache_dir()), constants.HF_HUB_CACHE]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours, theirs = json.loads(out)
    assert ours == theirs


def test_the_starter_download_step_says_it_is_bundled(qtbot, state) -> None:
    from gbdesk.starter import STARTER_ID
    from gbdesk.ui.wizard.download import DownloadPage

    page = DownloadPage(state)
    qtbot.addWidget(page)
    page.set_model(STARTER_ID, "Q4_1")
    text = _texts(page)
    assert "bundled with gbdesk" in text and "nothing to download" in text
    assert "checked against the Hub's checksum" not in text
    page.set_model("llama-3.2-3b-instruct", "Q4_K_M")  # a Hub model: the Hub's checksum
    assert "checked against the Hub's checksum" in _texts(page)


def test_a_banner_never_shows_an_errno(qtbot) -> None:
    from gbdesk.ui.widgets import Banner

    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message(
        "Cannot save: [Errno 13] Permission denied: '/x'", "cannot reach: [Errno -2] Name"
    )
    assert "Errno" not in banner.text()
    assert "permission denied" in banner.text()


def test_the_default_hub_is_not_called_a_mirror() -> None:
    from gbdesk.catalog.hub_search import HubSearchUnreachableError

    default = HubSearchUnreachableError("https://huggingface.co", "offline")
    assert "mirror" not in default.message and "https://huggingface.co" in default.message
    other = HubSearchUnreachableError("https://hf-mirror.com", "offline")
    assert "mirror: https://hf-mirror.com" in other.message
