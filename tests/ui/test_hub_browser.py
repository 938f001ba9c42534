"""The Hub model browser on the Models page, against the local Hub: search as you type, lazy
header reads (visible repos only), verdicts, the gated message, stop, offline, a download."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from gbdesk.catalog.presets import load_hardware
from gbdesk.ui.hub_browser import HubBrowser
from tests.support import hub_repos as hr
from tests.support.hub_repos import search_hub, starter_split_parts
from tests.support.hub_server import HubServer
from tests.ui.stall import StallMonitor

__all__ = ["search_hub", "starter_split_parts"]
MIB = 1 << 20


@pytest.fixture
def browser(qtbot, state):
    state.set_profile(load_hardware("rtx-3060-12gb"))
    widget = HubBrowser(state)
    qtbot.addWidget(widget)
    widget.resize(900, 2400)  # tall: every result is on screen
    widget.show()
    return widget


def _card(browser: HubBrowser, repo: str):
    return next(card for card in browser.cards if card.repo.repo == repo)


def _wait_idle(qtbot, browser: HubBrowser, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: bool(browser.cards) and not browser.is_busy(), timeout=timeout)


def test_typing_shows_repos_and_a_verdict_per_quant(qtbot, browser, search_hub: HubServer):
    with StallMonitor() as stall:
        qtbot.keyClicks(browser.query, "llama")  # searches after a pause in typing
        with qtbot.waitSignal(browser.first_verdict, timeout=30_000):
            pass
        _wait_idle(qtbot, browser)
    print(
        f"first verdict after {browser.first_verdict_s:.2f} s; "
        f"largest gap {stall.largest_ms:.1f} ms"
    )
    assert [card.repo.repo for card in browser.cards] == [
        hr.QUANTS_REPO,
        hr.BIG_REPO,
        hr.GATED_REPO,
    ]
    quants = _card(browser, hr.QUANTS_REPO)
    assert [row.quant.name for row in quants.rows] == ["Q4_K_M", "Q8_0", "F16"]
    q4 = quants.row("Q4_K_M")
    assert q4.badge.text() == "Runs on GPU" and q4.bar.isVisible()
    assert "tokens/s" in q4.facts.text() and "context up to" in q4.facts.text()
    assert "llama" in q4.facts.text() and q4.download_button.isEnabled()
    assert "5.0k downloads" in quants.facts.text() and "llama3.2" in quants.facts.text()
    huge = _card(browser, hr.BIG_REPO).row("Q4_K_M")
    assert huge.verdict in {"partial-gpu", "does-not-fit"}
    gated = _card(browser, hr.GATED_REPO)
    assert gated.gated_note.isVisible() and "accept the licence" in gated.gated_note.text()
    gated_row = gated.rows[0]
    assert gated_row.badge.text() == "No verdict" and not gated_row.download_button.isEnabled()
    assert "gated" in gated_row.facts.text()
    assert stall.largest_ms < 2000  # sanity bound only; bench/gui_bench.py measures the gap


def test_only_repos_on_screen_have_their_headers_read(qtbot, browser, search_hub: HubServer):
    browser.resize(900, 360)  # room for the first repo or two
    # A shown window's resize reaches its widgets through the window system's queue (on the
    # offscreen platform too): search once the results area is that small.
    qtbot.waitUntil(lambda: browser.results_area.viewport().height() < 360)
    browser.search()
    _wait_idle(qtbot, browser)
    assert len(browser.cards) == 6
    last = browser.cards[-1]
    assert last.repo.repo == hr.SPLIT_REPO and not last.headers_requested
    split_files = last.rows[0].quant.files
    assert all(search_hub.bytes_sent(hr.SPLIT_REPO, name) == 0 for name in split_files)
    starter_sent = search_hub.bytes_sent(hr.STARTER_REPO, hr.STARTER_FILE)
    assert 0 < starter_sent <= 4 * MIB  # the header, not the 98 MB file

    bar = browser.results_area.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: last.rows[0].result is not None, timeout=30_000)
    assert last.rows[0].verdict == "full-gpu"
    assert all(0 < search_hub.bytes_sent(hr.SPLIT_REPO, name) <= 4 * MIB for name in split_files)


def test_an_architecture_llama_cpp_cannot_load_is_marked(qtbot, browser, search_hub: HubServer):
    browser.query.setText("alien")
    browser.search()
    _wait_idle(qtbot, browser)
    row = _card(browser, hr.ALIEN_REPO).rows[0]
    qtbot.waitUntil(lambda: row.result is not None)
    assert row.badge.text() == "Cannot load" and not row.download_button.isEnabled()
    assert hr.ALIEN_ARCH in row.facts.text()


def test_stop_cancels_the_header_reads(qtbot, browser, search_hub: HubServer):
    search_hub.throttle(hr.STARTER_REPO, hr.STARTER_FILE, 64 * 1024)  # a 2 MiB read: ~30 s
    browser.query.setText("SmolLM2-135M-Instruct")
    browser.search()
    qtbot.waitUntil(lambda: search_hub.bytes_sent(hr.STARTER_REPO, hr.STARTER_FILE) > 0)
    qtbot.mouseClick(browser.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not browser.is_busy())
    assert "Stopped" in browser.status.text()
    from gbdesk.ui.workers import cancel_all_and_wait

    assert cancel_all_and_wait(5_000)  # the read stopped within a piece, not after 30 s
    assert search_hub.bytes_sent(hr.STARTER_REPO, hr.STARTER_FILE) < MIB
    row = _card(browser, hr.STARTER_REPO).rows[0]
    assert row.result is None


def test_offline_says_the_hub_is_unreachable(qtbot, browser, search_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    browser.query.setText("llama")
    browser.search()
    qtbot.waitUntil(browser.banner.isVisible)
    assert f"the Hub is unreachable (mirror: {search_hub.url})" in browser.banner.text()
    assert "Installed" in browser.status.text()
    assert not browser.stop_button.isEnabled() and search_hub.requests == []


def test_download_from_a_result_lands_in_installed(qtbot, configured_state, search_hub):
    from gbdesk.ui.pages.models import ModelsPage

    configured_state.set_profile(load_hardware("rtx-3060-12gb"))
    page = ModelsPage(configured_state)
    qtbot.addWidget(page)
    page.resize(1000, 900)
    page.show()
    page.tabs.setCurrentWidget(page.hub_browser)
    browser = page.hub_browser
    browser.query.setText("SmolLM2-135M-Instruct")
    browser.search()
    _wait_idle(qtbot, browser)
    row = _card(browser, hr.STARTER_REPO).rows[0]
    assert row.download_button.isEnabled()
    with qtbot.waitSignal(browser.downloaded, timeout=60_000) as done:
        qtbot.mouseClick(row.download_button, Qt.MouseButton.LeftButton)
    assert done.args[0].path.name == hr.STARTER_FILE
    assert row.download_button.text() == "Downloaded"
    assert "Installed tab" in browser.banner.text()
    qtbot.waitUntil(
        lambda: any(model.path == str(done.args[0].path) for model in page.installed),
        timeout=10_000,
    )


def test_the_wizard_can_take_a_model_from_the_hub(qtbot, state, search_hub: HubServer):
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.backend import BackendPage
    from gbdesk.ui.wizard.choose_model import ChooseModelPage

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    wizard.show()
    for _ in range(2):  # welcome -> hardware -> choose
        qtbot.waitUntil(wizard.next_button.isEnabled, timeout=60_000)
        qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)
    choose = wizard.current_page()
    assert isinstance(choose, ChooseModelPage)
    panel = choose.hub_panel
    qtbot.mouseClick(panel.toggle, Qt.MouseButton.LeftButton)
    assert panel.browser is not None and panel.browser.isVisible()
    assert not choose.list.isVisible() and not wizard.next_button.isEnabled()
    browser = panel.browser
    browser.query.setText("SmolLM2-135M-Instruct")
    browser.search()
    _wait_idle(qtbot, browser)
    row = _card(browser, hr.STARTER_REPO).rows[0]
    assert row.verdict in {"full-gpu", "partial-gpu", "cpu-only"}  # this machine's probe
    with qtbot.waitSignal(browser.downloaded, timeout=60_000) as done:
        qtbot.mouseClick(row.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(wizard.next_button.isEnabled)
    assert "from the Hub" in choose.summary_line()
    qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)
    # The Download step is skipped: the file is here; the backend step serves it.
    assert isinstance(wizard.current_page(), BackendPage)
    assert state.settings.model == str(done.args[0].path)
