#!/usr/bin/env python3
"""Render every wizard page and main-window page offscreen into docs/screenshots/*.png.

Real data only: this machine's probe, the real recommender, the bundled starter model served by
the real backend (a child process on a free port), a real streamed chat answer, the backend's
/metrics on the Dashboard, a real embedded PostgreSQL for the shard registration. Everything runs
in a throw-away GBDESK_HOME.

    python scripts/screenshots.py [--dark] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _wait(app, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not reach the expected state in time")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shoot_hub_browser(app, window, shoot) -> None:
    """The Models page's Hub browser searching a local Hub (the test suite's server, on
    127.0.0.1, with the real starter GGUF and synthetic headers of bigger models)."""
    from gbdesk.starter import require_starter_model
    from tests.support import hub_repos
    from tests.support.gguf_split import split_gguf
    from tests.support.hub_server import HubServer

    with HubServer() as hub:
        split_dir = Path(tempfile.mkdtemp(prefix="gbdesk-shots-split-"))
        starter = require_starter_model()
        hub_repos.populate(hub, starter, split_gguf(starter, split_dir))
        from huggingface_hub import constants

        offline = os.environ.pop("HF_HUB_OFFLINE", None)
        # huggingface_hub read the variable when it was imported: online for this shot only.
        was_offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
        os.environ["HF_ENDPOINT"] = hub.url
        try:
            page = window.show_page("models")
            page.tabs.setCurrentWidget(page.hub_browser)
            browser = page.hub_browser
            browser.query.setText("llama")
            browser.search()
            _wait(app, lambda: bool(browser.cards) and not browser.is_busy())
            shoot(window, "main-models-hub")
        finally:
            constants.HF_HUB_OFFLINE = was_offline
            os.environ.pop("HF_ENDPOINT", None)
            if offline is not None:
                os.environ["HF_HUB_OFFLINE"] = offline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dark", action="store_true", help="render the dark theme")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--no-shard", action="store_true", help="skip the PostgreSQL step")
    parser.add_argument(
        "--only-hub", action="store_true", help="only the Models page's Hub browser"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gbdesk-shots-"))
    # A desktop-sized screen (the offscreen platform's own is 800x800), so every window opens at
    # its default size, as on a 1920x1080 desktop.
    screen = home / "screen.json"
    screen.write_text(
        json.dumps({"screens": [{"name": "shots", "width": 1920, "height": 1080, "dpr": 1}]}),
        encoding="utf-8",
    )
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
    os.environ["GBDESK_HOME"] = str(home)
    os.environ["HF_HOME"] = str(home / "hf")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the screenshots never touch the network
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-dark" if args.dark else ""

    from PySide6.QtWidgets import QApplication

    from gbdesk.ui.resources_access import app_icon
    from gbdesk.ui.state import AppState
    from gbdesk.ui.theme import apply_theme
    from gbdesk.ui.workers import cancel_all_and_wait

    app = QApplication([sys.argv[0]])
    app.setWindowIcon(app_icon())
    apply_theme(app, dark=args.dark)
    state = AppState()
    saved: list[str] = []

    def shoot(widget, name: str) -> None:
        _settle(app)
        path = args.out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        saved.append(path.name)

    if args.only_hub:
        from gbdesk.hardware.probe import probe
        from gbdesk.ui.main_window import MainWindow

        state.set_profile(probe())
        window = MainWindow(state)
        window.show()
        _shoot_hub_browser(app, window, shoot)
        window.quit_app()
        state.shutdown()
        cancel_all_and_wait()
        print("\n".join(f"{args.out / name}" for name in saved))
        return 0

    from gbdesk.starter import STARTER_ID
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.backend import BackendPage
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from gbdesk.ui.wizard.download import DownloadPage
    from gbdesk.ui.wizard.shard import ShardPage

    state.update_settings(backend_port=_free_port())

    wizard = FirstRunWizard(state)
    wizard.show()
    shoot(wizard, "wizard-1-welcome")
    wizard.next()
    _wait(app, lambda: state.profile is not None)
    shoot(wizard, "wizard-2-hardware")
    wizard.next()
    choose = wizard.page_of(ChooseModelPage)
    _wait(app, lambda: bool(choose.recommendations))
    shoot(wizard, "wizard-3-choose-model")
    choose.select_model(STARTER_ID)
    wizard.next()
    download = wizard.page_of(DownloadPage)
    if wizard.current_page() is download and not download.is_complete():
        download.use_bundled()
    shoot(wizard, "wizard-4-download")
    wizard.next()
    backend = wizard.page_of(BackendPage)
    backend.start()
    _wait(app, lambda: state.backend.view.phase in {"ready", "failed"})
    if not state.backend.is_ready():
        raise RuntimeError(f"the backend did not start: {state.backend.view}")
    _wait(app, backend.botserver_card.isVisible)
    shoot(wizard, "wizard-5-backend")
    wizard.next()
    shard = wizard.page_of(ShardPage)
    if not args.no_shard:
        shard.panel.register()
        _wait(app, lambda: not shard.panel.is_busy())
    shoot(wizard, "wizard-6-shard")
    wizard.next() if shard.is_complete() else wizard.skip()
    shoot(wizard, "wizard-7-done")
    wizard.hide()

    from gbdesk.ui.main_window import PAGES, MainWindow

    window = MainWindow(state)
    window.show()
    # A real streamed answer first, so the Dashboard has figures to show.
    chat = window.show_page("chat")
    chat.system_prompt.setText("You are a concise assistant for a small business.")
    chat.composer.setPlainText("What can a small local language model do? Answer in two sentences.")
    chat.send()
    _wait(app, lambda: not chat.is_streaming())
    for spec in PAGES:
        page = window.show_page(spec.key)
        if spec.key == "dashboard":
            _wait(app, lambda page=page: page.samples_taken >= 4, timeout_s=30)
            _wait(
                app,
                lambda page=page: page.metrics is not None and page.metrics.requests >= 1,
                timeout_s=30,
            )
        elif spec.key == "models":
            _wait(app, lambda page=page: bool(page.recommendations))
            # A second model, imported: the list shows it next to the served starter.
            import shutil

            from gbdesk.starter import starter_model_path

            second = home / "second-model.Q4_1.gguf"
            shutil.copyfile(starter_model_path(), second)
            page.import_file(str(second))
            _wait(app, lambda page=page: len(page.installed) == 2 and page._task is None)
            _wait(app, lambda page=page: page.serving_row() >= 0)
        elif spec.key == "node":
            _wait(app, lambda page=page: not page._busy)
        elif spec.key == "logs":
            _settle(app, 0.5)
        shoot(window, f"main-{spec.key}")
        if spec.key == "models":  # the handbook's catalogue too, with its hint
            page.tabs.setCurrentIndex(page.tabs.count() - 1)
            shoot(window, "main-models-handbook")
            page.tabs.setCurrentIndex(0)
    _shoot_hub_browser(app, window, shoot)

    window.quit_app()
    state.shutdown()
    cancel_all_and_wait()
    if not args.no_shard:
        from gbdesk.shard.embedded import EmbeddedPostgres

        EmbeddedPostgres().stop()
    print("\n".join(f"{args.out / name}" for name in saved))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
