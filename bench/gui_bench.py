#!/usr/bin/env python3
"""Desktop app benchmarks.

1. Cold start: ``python -m gbdesk`` (the real app, main window) until its first window is painted,
   against a bare PySide6 window in the same run, N interleaved runs; medians and the ratio
   (target: at most 1.5).
2. Event-loop stalls: the largest gap of a 5 ms timer on the GUI thread while the wizard's
   Download page fetches the starter model from a local Hub server, and while the Chat page
   streams an answer from the real backend (the starter model in a `gbdesk serve` child process
   started by the GUI's controller); target: under 50 ms.
3. The Hub model browser (Models page) against a local Hub serving 20 GGUF repos (the real
   starter, whole and split, and synthetic headers of 1B-70B models padded to their real file
   sizes): time from typing a query to the first verdict row (the 400 ms typing pause
   included), the header bytes read for all 20 results (scrolled through) against the bytes of
   the files themselves (what downloading them to look would cost), and the largest event-loop
   gap meanwhile (target < 50 ms). Peer in the same run: one bare ``HfApi.list_models``
   round trip, and huggingface_hub's ``get_hf_file_metadata`` + a 2 MiB Range GET per file.
4. Switching the model: "Serve this model" (the GUI's controller restarting its backend with a
   second model) until the new model has answered a chat request, against `gbdesk serve`
   stopped and started by hand with the second model (the same request); medians of N runs
   each, interleaved.

    python bench/gui_bench.py [--runs 7] [--switch-runs 3] [--only cold|download|chat|hub|switch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_WINDOW = r"""
import sys, time
start = time.perf_counter()
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setWindowTitle("bare")
window.resize(1120, 740)
class Done(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            print(f"first-window-shown {time.perf_counter() - start:.4f}", flush=True)
            QTimer.singleShot(0, app.quit)
        return False
done = Done()
window.installEventFilter(done)
window.show()
app.exec()
"""


def _wait(app, condition, timeout_s: float = 120) -> None:
    """Run Qt's event loop until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.002)


def _time_to_first_window(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawning the process to it printing that its first window was painted,
    and to its first page being built (the same for a window without deferred pages)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT
    )
    assert process.stdout is not None
    shown = page = None
    for line in process.stdout:
        if line.startswith("first-window-shown"):
            shown = time.perf_counter() - start
        elif line.startswith("first-page-built"):
            page = time.perf_counter() - start
    process.wait(timeout=30)
    if shown is None:
        raise RuntimeError(f"{argv} never showed a window (exit {process.returncode})")
    return shown, page if page is not None else shown


def bench_cold_start(runs: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="gbdesk-bench-"))
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps({"first_run_done": True}))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "GBDESK_HOME": str(home),
        "GBDESK_EXIT_ON_FIRST_SHOW": "1",
        "PYTHONPATH": str(ROOT),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        # Bytecode as an installed app has it (pip compiles a wheel's modules at install
        # time): the warm-up runs write it to a folder of this run, so a shell that sets
        # PYTHONDONTWRITEBYTECODE does not make every start compile gbdesk's sources again.
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    commands = {
        "bare": [sys.executable, "-c", BARE_WINDOW],
        "gbdesk": [sys.executable, "-m", "gbdesk"],  # the `gbdesk` command (CLI, then the GUI)
        "gbdesk-gui": [sys.executable, "-m", "gbdesk.ui"],  # the gbdesk-gui entry point
    }
    for argv in commands.values():  # one warm-up each, so all start from a warm file cache
        _time_to_first_window(argv, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    pages: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            shown, page = _time_to_first_window(argv, env)
            times[name].append(shown)
            pages[name].append(page)
    medians = {name: statistics.median(values) for name, values in times.items()}
    page_medians = {name: statistics.median(values) for name, values in pages.items()}
    return {
        "bare_s": medians["bare"],
        "gbdesk_s": medians["gbdesk"],
        "gui_s": medians["gbdesk-gui"],
        "ratio": medians["gbdesk"] / medians["bare"],
        "gui_ratio": medians["gbdesk-gui"] / medians["bare"],
        "gbdesk_page_s": page_medians["gbdesk"],
        "page_ratio": page_medians["gbdesk"] / medians["bare"],
    }


def _isolated_offscreen_home(prefix: str) -> Path:
    """A fresh GBDESK_HOME and HF_HOME for an in-process case, offscreen, no real keyring."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "QT_QPA_PLATFORM": "offscreen",
            "GBDESK_HOME": str(home),
            "HF_HOME": str(home / "hf"),
            "HF_HUB_DISABLE_XET": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
    )
    return home


def bench_download_stall() -> dict[str, float]:
    """Largest GUI-thread gap while the Download page fetches the starter model."""
    _isolated_offscreen_home("gbdesk-bench-dl-")
    from PySide6.QtWidgets import QApplication

    from gbdesk.starter import STARTER_FILE, STARTER_ID, STARTER_REPO, require_starter_model
    from gbdesk.ui.state import AppState
    from gbdesk.ui.theme import apply_theme
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from gbdesk.ui.wizard.download import DownloadPage
    from tests.support.hub_server import HubServer
    from tests.ui.stall import StallMonitor

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, dark=False)

    with HubServer() as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        hub.add_file(STARTER_REPO, STARTER_FILE, require_starter_model())
        state = AppState()
        wizard = FirstRunWizard(state)
        wizard.show()
        wizard.next()
        _wait(app, lambda: state.profile is not None)
        wizard.next()
        choose = wizard.page_of(ChooseModelPage)
        _wait(app, lambda: bool(choose.recommendations))
        choose.select_model(STARTER_ID)
        wizard.next()
        page = wizard.page_of(DownloadPage)
        started = time.perf_counter()
        with StallMonitor() as monitor:
            page.start()
            _wait(app, page.is_complete)
        seconds = time.perf_counter() - started
        wizard.close()
        state.shutdown()
    size = page.model_path.stat().st_size if page.model_path else 0
    return {
        "largest_gap_ms": monitor.largest_ms,
        "ticks": monitor.ticks,
        "download_s": seconds,
        "mb_per_s": size / 1e6 / seconds,
        "progress_updates": page.progress_updates,
    }


def bench_chat_stall() -> dict[str, float]:
    """Largest GUI-thread gap while the Chat page streams a reply from the real backend."""
    import socket

    from PySide6.QtWidgets import QApplication

    from gbdesk.starter import require_starter_model
    from gbdesk.ui.pages.chat import ChatPage
    from gbdesk.ui.state import AppState
    from tests.ui.stall import StallMonitor

    app = QApplication.instance() or QApplication(sys.argv[:1])

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = AppState()
    state.update_settings(
        model=str(require_starter_model()), backend_port=port, context_length=2048, parallel=1
    )
    try:
        state.backend.start()
        _wait(app, lambda: state.backend.view.phase in {"ready", "failed"})
        if not state.backend.is_ready():
            raise RuntimeError(f"the backend did not start: {state.backend.view}")
        page = ChatPage(state)
        page.show()
        page.composer.setPlainText("Write a short story about a robot who learns to cook.")
        started = time.perf_counter()
        with StallMonitor() as monitor:
            page.send()
            _wait(app, lambda: not page.is_streaming())
        seconds = time.perf_counter() - started
        reply = page.current.messages[-1].content
    finally:
        state.shutdown()
    return {
        "largest_gap_ms": monitor.largest_ms,
        "ticks": monitor.ticks,
        "stream_s": seconds,
        "reply_chars": len(reply),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answer(port: int, timeout_s: float = 120) -> str:
    """Ask the backend on ``port`` for a few tokens, retrying until it answers; the model id."""
    import urllib.request

    body = json.dumps(
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": False}
    ).encode()
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)["model"]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _serve_by_hand(model: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gbdesk",
            "serve",
            "--model",
            str(model),
            "--port",
            str(port),
            "--ctx",
            "1024",
            "--parallel",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def _switch_in_gui(app, first: Path, second: Path) -> float:
    """A ready backend with ``first``, then "Serve this model" with ``second``: seconds until
    the second one has answered."""
    from gbdesk.ui.pages.models import serve_model
    from gbdesk.ui.state import AppState

    port = _free_port()
    state = AppState()
    state.update_settings(model=str(first), backend_port=port, context_length=1024, parallel=1)
    backend = state.backend
    try:
        backend.start()
        _wait(app, lambda: backend.view.phase in {"ready", "failed"})
        if not backend.is_ready():
            raise RuntimeError(f"the backend did not start: {backend.view}")
        started = time.perf_counter()
        serve_model(state, str(second))
        _wait(
            app,
            lambda: (
                not backend.is_busy()
                and backend.view.phase in {"ready", "failed"}
                and backend.view.model == str(second)
            ),
        )
        model = _answer(port)
        seconds = time.perf_counter() - started
        assert "second-model" in model, model
    finally:
        state.shutdown()
    return seconds


def bench_model_switch(runs: int) -> dict[str, float]:
    """Seconds from "switch to the second model" until it answers: the GUI's "Serve this
    model" against stopping and starting `gbdesk serve` by hand."""
    import shutil

    from PySide6.QtWidgets import QApplication

    from gbdesk.starter import require_starter_model

    app = QApplication.instance() or QApplication(sys.argv[:1])
    home = Path(tempfile.mkdtemp(prefix="gbdesk-bench-switch-"))
    os.environ["GBDESK_HOME"] = str(home)
    first = require_starter_model()
    second = home / "second-model.Q4_1.gguf"
    shutil.copyfile(first, second)
    gui: list[float] = []
    by_hand: list[float] = []
    for _ in range(runs):
        gui.append(_switch_in_gui(app, first, second))
        # By hand: the same switch with `gbdesk serve` stopped (SIGTERM) and started again.
        port = _free_port()
        process = _serve_by_hand(first, port)
        try:
            _answer(port)
            started = time.perf_counter()
            process.terminate()
            process.wait(30)
            process = _serve_by_hand(second, port)
            model = _answer(port)
            by_hand.append(time.perf_counter() - started)
            assert "second-model" in model, model
        finally:
            process.terminate()
            process.wait(30)
    gui_s, hand_s = statistics.median(gui), statistics.median(by_hand)
    return {"gui_s": gui_s, "hand_s": hand_s, "ratio": gui_s / hand_s, "runs": runs}


def _hub_with_twenty_repos(hub) -> None:
    """The search tests' repos plus synthetic ones, 20 GGUF repos in all."""
    from gbdesk.starter import require_starter_model
    from tests.support import hub_repos
    from tests.support.gguf_split import split_gguf

    split_dir = Path(tempfile.mkdtemp(prefix="gbdesk-bench-split-"))
    hub_repos.populate(hub, require_starter_model(), split_gguf(require_starter_model(), split_dir))
    hub.add_file(hub_repos.GATED_REPO, "README.md", b"gated")
    shapes = [(16, 2048, 8192), (24, 2560, 6912), (28, 3584, 18944), (32, 4096, 14336)]
    for index in range(14):
        layers, width, ff = shapes[index % len(shapes)]
        repo = f"bench/Model-{index:02d}-GGUF"
        for name in ("Q4_K_M", "Q8_0"):
            hub_repos.add_synthetic(
                hub,
                repo,
                f"Model-{index:02d}-{name}.gguf",
                n_layers=layers,
                n_embd=width,
                n_ff=ff,
                n_head=width // 128,
                n_head_kv=8,
                ggml_type=hub_repos.QUANT_TYPES[name],
            )
        hub.set_meta(repo, downloads=1000 - index, likes=index, license="apache-2.0")


def bench_hub_browser() -> dict[str, float]:
    """Typing to the first verdict, header bytes for 20 results, and the largest GUI gap."""
    _isolated_offscreen_home("gbdesk-bench-hub-")
    from huggingface_hub import HfApi, constants
    from PySide6.QtWidgets import QApplication

    from gbdesk.catalog.presets import load_hardware
    from gbdesk.gguf.remote import read_remote_gguf
    from gbdesk.ui.hub_browser import HubBrowser
    from gbdesk.ui.state import AppState
    from gbdesk.ui.theme import apply_theme
    from tests.support.hub_server import HubServer
    from tests.ui.stall import StallMonitor

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, dark=False)
    with HubServer() as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        constants.ENDPOINT = hub.url
        _hub_with_twenty_repos(hub)
        listed = list(HfApi(endpoint=hub.url).list_models(filter="gguf", limit=100))
        assert len(listed) == 20, len(listed)

        # The peer: a bare listing round trip, and one header read per file without gbdesk's UI.
        began = time.perf_counter()
        list(HfApi(endpoint=hub.url).list_models(search="", filter="gguf", limit=20))
        listing_s = time.perf_counter() - began
        state = AppState()
        state.set_profile(load_hardware("rtx-3060-12gb"))
        browser = HubBrowser(state)
        browser.resize(1000, 800)
        browser.show()
        _wait(app, browser.isVisible)
        with StallMonitor() as monitor:
            started = time.perf_counter()
            browser.query.setText("GGUF")
            browser.query.textEdited.emit("GGUF")  # as typing does
            _wait(app, lambda: browser.first_verdict_s is not None)
            first_verdict_s = time.perf_counter() - started
            bar = browser.results_area.verticalScrollBar()
            while True:  # scroll through every result so each header is read
                _wait(app, lambda: bool(browser.cards) and not browser.is_busy())
                if not browser._unread():
                    break
                bar.setValue(bar.value() + browser.results_area.viewport().height())
                browser._visible_timer.start()
            total_s = time.perf_counter() - started
        rows = browser.rows()
        header_bytes = sum(
            hub.bytes_sent(row.repo.repo, name) for row in rows for name in row.quant.files
        )
        file_bytes = sum(row.quant.size_bytes for row in rows)
        checked = sum(1 for row in rows if row.result is not None)
        cards = len(browser.cards)
        browser.close()
        state.shutdown()
        # Peer 2: the same headers read one after another, no GUI, no cache.
        began = time.perf_counter()
        for row in rows:
            if row.repo.gated:
                continue
            read_remote_gguf(f"{hub.url}/{row.repo.repo}/resolve/main/{row.quant.files[0]}")
        sequential_s = time.perf_counter() - began
    return {
        "first_verdict_s": first_verdict_s,
        "all_verdicts_s": total_s,
        "listing_s": listing_s,
        "sequential_headers_s": sequential_s,
        "header_bytes": header_bytes,
        "file_bytes": file_bytes,
        "cards": cards,
        "rows": len(rows),
        "checked": checked,
        "largest_gap_ms": monitor.largest_ms,
        "ticks": monitor.ticks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="gbdesk desktop app benchmarks")
    parser.add_argument("--runs", type=int, default=7, help="interleaved cold starts of each")
    parser.add_argument("--switch-runs", type=int, default=3, help="model switches of each")
    parser.add_argument(
        "--only", choices=("cold", "download", "chat", "hub", "switch"), help="run only this case"
    )
    args = parser.parse_args()
    if args.only in (None, "cold"):
        _print_cold_start(bench_cold_start(args.runs), args.runs)
    if args.only in (None, "download"):
        _print_download(bench_download_stall())
    if args.only in (None, "chat"):
        _print_chat(bench_chat_stall())
    if args.only in (None, "hub"):
        _print_hub(bench_hub_browser())
    if args.only in (None, "switch"):
        _print_switch(bench_model_switch(args.switch_runs))
    return 0


def _print_switch(switch: dict[str, float]) -> None:
    print(f"switching the model until the new one answers, median of {switch['runs']} runs:")
    print(f"  `gbdesk serve` stopped and started by hand  {switch['hand_s']:6.2f} s   peer")
    print(
        f"  Serve this model (the GUI)                  {switch['gui_s']:6.2f} s   ratio "
        f"{switch['ratio']:.2f}"
    )


def _print_hub(hub: dict[str, float]) -> None:
    print(
        f"Hub model browser, {hub['cards']:.0f} results ({hub['rows']:.0f} files, "
        f"{hub['checked']:.0f} with a verdict) from a local Hub:"
    )
    print(
        f"  typing to the first verdict row   {hub['first_verdict_s'] * 1000:6.0f} ms "
        f"(400 ms typing pause included); every verdict after {hub['all_verdicts_s']:.1f} s"
    )
    print(
        f"  peer: one bare list_models        {hub['listing_s'] * 1000:6.0f} ms; the same headers "
        f"read one by one without the GUI: {hub['sequential_headers_s']:.1f} s"
    )
    print(
        f"  header bytes read                 {hub['header_bytes'] / (1 << 20):6.1f} MiB of "
        f"{hub['file_bytes'] / (1 << 30):.1f} GiB of files (ratio "
        f"{hub['header_bytes'] / max(1, hub['file_bytes']):.5f})"
    )
    print(
        f"  largest event-loop gap            {hub['largest_gap_ms']:6.1f} ms over "
        f"{hub['ticks']:.0f} ticks of 5 ms (target < 50 ms)"
    )


def _print_cold_start(start: dict[str, float], runs: int) -> None:
    print(f"cold start to first window, median of {runs} interleaved runs:")
    print(f"  bare PySide6 window        {start['bare_s'] * 1000:6.0f} ms")
    print(
        f"  gbdesk (CLI, main window)  {start['gbdesk_s'] * 1000:6.0f} ms   ratio "
        f"{start['ratio']:.2f}  (target <= 1.5)"
    )
    print(
        f"  gbdesk-gui (main window)   {start['gui_s'] * 1000:6.0f} ms   ratio "
        f"{start['gui_ratio']:.2f}"
    )
    print(
        f"  gbdesk, first page built   {start['gbdesk_page_s'] * 1000:6.0f} ms   ratio "
        f"{start['page_ratio']:.2f}  (the Dashboard, built right after the first paint)"
    )


def _print_download(stall: dict[str, float]) -> None:
    print("event-loop stall during a download of the starter model from a local Hub:")
    print(
        f"  largest gap {stall['largest_gap_ms']:.1f} ms over {stall['ticks']} ticks of 5 ms "
        f"(target < 50 ms); {stall['mb_per_s']:.0f} MB/s, "
        f"{stall['progress_updates']} progress updates in {stall['download_s']:.1f} s"
    )


def _print_chat(chat: dict[str, float]) -> None:
    print("event-loop stall while the Chat page streams a reply from the real backend:")
    print(
        f"  largest gap {chat['largest_gap_ms']:.1f} ms over {chat['ticks']} ticks of 5 ms "
        f"(target < 50 ms); {chat['reply_chars']} characters in {chat['stream_s']:.1f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
