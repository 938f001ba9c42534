"""The Hub model browser: search GGUF repos, a verdict per quant before download, one click.

Typing in the search box starts a search after a short pause (or at once with Enter). The
listing runs in a worker and each repo appears as it arrives; the GGUF headers are read only for
the repos on screen (scrolling reads the next ones), one repo at a time, each quant's verdict
appearing as its header arrives. *Stop* cancels the listing and every header read; a new search
cancels the previous one. Nothing here waits on the GUI thread: the core work is
:class:`gbdesk.app.hub_search.HubSearch` on :func:`gbdesk.ui.workers.run_task`, downloads go to the
app's :class:`gbdesk.download.manager.DownloadManager` queue.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gbdesk.errors import GbdeskError
from gbdesk.ui.queued_download import queue_download
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, MemoryBar, MemorySegment, VerdictBadge, human_bytes, muted
from gbdesk.ui.workers import TaskContext, TaskHandle, run_task

SEARCH_DEBOUNCE_MS = 400
# Repos whose headers are read at the same time. Parsing a header is Python work that holds the
# GIL; one reader at a time leaves the GUI thread the most of it (measured: bench/gui_bench.py).
HEADER_TASKS = 1
# While headers are parsed, the GUI thread waits for the GIL at most this long (Python's default
# is 5 ms, and a paint that crosses into Python a few times would wait that often).
GIL_SWITCH_INTERVAL_S = 0.001
CARDS_PER_TURN = 1  # repo cards built per event-loop turn (a card with its rows: ~5-15 ms)
CARD_FLUSH_MS = 25
SORTS = (
    ("downloads", "Most downloaded"),
    ("trending", "Trending"),
    ("likes", "Most liked"),
    ("updated", "Recently updated"),
)
# The use case's verdicts mapped onto the badge's keys.
BADGES = {
    "full-gpu": "gpu",
    "partial-gpu": "partial",
    "cpu-only": "cpu",
    "does-not-fit": "no_fit",
    "cannot-load": "cannot_load",
    "unknown": "unknown",
}
SPEED_SOURCES = {
    "measured": "measured",
    "calibrated": "calibrated on this CPU",
    "guess": "estimate",
}


def _count(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(int(value))


def _start_search(
    ctx: TaskContext, state_profile: Any, load: tuple[int, int], query: str, sort: str
) -> int:
    """Worker: the searcher for this machine, then each repo as the Hub lists it."""
    import gbdesk.gguf.remote  # noqa: F401 - imported here, not in the first header read
    from gbdesk.app.hub_search import HubSearch
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.estimator import FitSettings

    settings = FitSettings(n_ctx=load[0], n_parallel=load[1])
    profile = state_profile
    if profile is None:
        from gbdesk.hardware.probe import probe

        profile = probe()
    searcher = HubSearch(profile, settings, calibration=load_calibration())
    ctx.emit(("searcher", searcher))
    count = 0
    for repo in searcher.repos(query, sort=sort, cancel=ctx.cancel_event):
        ctx.emit(("repo", repo))
        count += 1
    return count


def _read_headers(ctx: TaskContext, searcher: Any, repo: Any) -> None:
    """Worker: every quant's verdict of one repo, smallest quant first."""
    for quant in repo.quants:
        ctx.check_cancelled()
        ctx.emit(searcher.evaluate(repo, quant, ctx.cancel_event))


class QuantRow(QFrame):
    """One quant: name, size, verdict badge, memory bar, speed and context, Download."""

    download_requested = Signal(object)  # this row

    def __init__(self, repo: Any, quant: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("QuantRow")
        self.repo = repo
        self.quant = quant
        self.result: Any = None
        self.job: Any = None
        layout = QGridLayout(self)
        layout.setContentsMargins(4, 6, 4, 6)
        layout.setHorizontalSpacing(12)
        parts = f" in {len(quant.files)} parts" if len(quant.files) > 1 else ""
        self.title = QLabel(f"<b>{quant.name}</b>  {human_bytes(quant.size_bytes)}{parts}")
        layout.addWidget(self.title, 0, 0)
        self.badge = VerdictBadge("pending")
        layout.addWidget(self.badge, 0, 1, Qt.AlignmentFlag.AlignRight)
        self.download_button = QPushButton("Download")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self))
        layout.addWidget(self.download_button, 0, 2, Qt.AlignmentFlag.AlignRight)
        self.facts = muted("Reading the file's header…")  # wraps: never wider than the page
        layout.addWidget(self.facts, 1, 0, 1, 3)
        # Shown (empty) from the start: a verdict then repaints this row only, without moving
        # every row below it.
        self.bar = MemoryBar()
        layout.addWidget(self.bar, 2, 0, 1, 3)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        layout.addWidget(self.progress, 3, 0, 1, 3)
        layout.setColumnStretch(0, 1)

    @property
    def verdict(self) -> str:
        return "pending" if self.result is None else self.result.verdict

    def set_result(self, result: Any) -> None:
        self.result = result
        self.badge.set_verdict(BADGES.get(result.verdict, "unknown"))
        if result.verdict == "unknown":  # the header could not be read
            self.facts.setText(result.message)
            self.facts.setToolTip(result.fix)
            self.bar.hide()
            self.download_button.setEnabled(not result.gated)
            return
        fit = result.fit
        speed = SPEED_SOURCES.get(result.speed_source, result.speed_source)
        from gbdesk.fit.recommend import context_words

        text = (
            f"~{fit.speed.generation_tps:.1f} tokens/s ({speed})  ·  {context_words(fit)}  ·  "
            f"{_count(result.params)} parameters, {result.architecture}"
        )
        if result.loadable is False:
            text = (
                f"The installed llama.cpp cannot load the {result.architecture!r} architecture: "
                "this file would not run here."
            )
        elif not fit.runs:
            text = fit.reasons[0] if fit.reasons else "Does not fit this computer."
        self.facts.setText(text)
        self.facts.setToolTip("\n".join(fit.reasons))
        cpu, gpus = fit.devices[0], fit.devices[1:]
        self.bar.set_usage(
            [
                MemorySegment("weights", sum(d.weights for d in fit.devices), "weights"),
                MemorySegment("KV cache", sum(d.kv_cache for d in fit.devices), "kv_cache"),
                MemorySegment(
                    "overhead", sum(d.compute + d.overhead for d in fit.devices), "overhead"
                ),
            ],
            cpu.capacity + sum(d.capacity for d in gpus),
            "RAM + VRAM available" if gpus else "RAM available",
        )
        self.download_button.setEnabled(result.loadable is not False and fit.runs)

    def set_download_state(self, text: str, fraction: float | None = None) -> None:
        self.download_button.setEnabled(False)
        self.download_button.setText(text)
        if fraction is not None:
            self.progress.show()
            self.progress.setValue(round(1000 * fraction))


class RepoCard(QFrame):
    """One repo: name, downloads/likes, last update, licence, gated notice, its quants."""

    def __init__(self, repo: Any, model_page: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.repo = repo
        self.headers_requested = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(2)
        title = QLabel(f"<b>{repo.repo}</b>")
        title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(title)
        updated = repo.last_modified.date().isoformat() if repo.last_modified else "unknown"
        self.facts = muted(
            f"{_count(repo.downloads)} downloads  ·  {_count(repo.likes)} likes  ·  updated "
            f"{updated}  ·  licence: {repo.licence or 'not stated'}"
        )
        layout.addWidget(self.facts)
        self.gated_note = muted(
            "Gated: accept the licence on its Hub page "
            f'(<a href="{model_page}">{model_page}</a>, signed in), then add your Hub token in '
            "Settings to read and download it."
        )
        self.gated_note.setOpenExternalLinks(True)
        self.gated_note.setVisible(repo.gated)
        layout.addWidget(self.gated_note)
        self.rows = [QuantRow(repo, quant) for quant in repo.quants]
        for row in self.rows:
            layout.addWidget(row)
        if not self.rows:
            layout.addWidget(muted("No GGUF model file in this repo."))

    def row(self, quant_name: str) -> QuantRow | None:
        return next((r for r in self.rows if r.quant.name == quant_name), None)


class HubBrowser(QWidget):
    """Search box, sort, Stop, the status line, and the results as they come."""

    downloaded = Signal(object)  # DownloadResult, after a download from a result finished
    first_verdict = Signal()  # the first quant verdict of a search is on screen

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search)
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(50)
        self._visible_timer.timeout.connect(self._read_visible)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 10, 0, 0)
        controls = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText(
            "Search the Hub for GGUF models: qwen, gemma 3, phi-4, llama…"
        )
        self.query.setClearButtonEnabled(True)
        self.query.textEdited.connect(lambda _text: self._debounce.start())
        self.query.returnPressed.connect(self.search)
        controls.addWidget(self.query, 1)
        self.sort = QComboBox()
        for key, label in SORTS:
            self.sort.addItem(label, key)
        self.sort.currentIndexChanged.connect(lambda _index: self.search())
        controls.addWidget(self.sort)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.cancel)
        controls.addWidget(self.stop_button)
        layout.addLayout(controls)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.status = muted(
            "Type a model name: each quantization gets a verdict for this computer, read from "
            "the file's header before anything is downloaded.",
            wrap=True,
        )
        layout.addWidget(self.status)
        self.results_area = QScrollArea()
        self.results_area.setWidgetResizable(True)
        # Only up and down: the cards wrap their text to the width they are given.
        self.results_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results_area.setFrameShape(QFrame.Shape.NoFrame)
        self._holder = holder = QWidget()
        self.results = QVBoxLayout(holder)
        self.results.setContentsMargins(0, 0, 6, 0)
        self.results.setSpacing(8)
        self.results.addStretch(1)
        self.results_area.setWidget(holder)
        self.results_area.verticalScrollBar().valueChanged.connect(
            lambda _v: self._visible_timer.start()
        )
        layout.addWidget(self.results_area, 1)

        self.cards: list[RepoCard] = []
        self.searcher: Any = None
        self.search_started_at = 0.0
        self.first_verdict_s: float | None = None
        self._search_task: TaskHandle | None = None
        self._header_tasks: dict[str, TaskHandle] = {}
        self._generation = 0
        self._stopped = False
        self._listing_done = False
        self._pending: list[Any] = []  # repos listed, not on screen yet
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(CARD_FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush_pending)

    # --- searching -------------------------------------------------------------------------

    def search(self) -> None:
        """Start a search for the box's text (cancelling the one running)."""
        self._debounce.stop()
        self._cancel_tasks()
        self._clear()
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # process-wide; see the constant
        self._generation += 1
        self._stopped = False
        generation = self._generation
        query = self.query.text().strip()
        sort = self.sort.currentData()
        self.banner.clear()
        self.status.setText(f"Searching the Hub for {query!r}…" if query else "Listing the Hub…")
        self.search_started_at = time.monotonic()
        self.first_verdict_s = None
        self._listing_done = False
        self.stop_button.setEnabled(True)
        settings = self.state.settings
        profile, load = (
            self.state.profile,
            (settings.context_length or 4096, settings.parallel or 1),
        )
        self._search_task = run_task(
            "search the Hub",
            lambda ctx: _start_search(ctx, profile, load, query, sort),
            on_item=lambda item: self._on_item(generation, item),
            on_done=lambda count: self._on_listing_done(generation, count),
            on_failed=lambda error: self._on_failed(generation, error),
            on_cancelled=lambda: self._on_cancelled(generation),
        )

    def cancel(self) -> None:
        """Stop the listing and every header read (scrolling reads nothing more until the
        next search)."""
        self._debounce.stop()
        self._stopped = True
        self._cancel_tasks()
        self.stop_button.setEnabled(False)
        self.status.setText(f"Stopped. {self._summary()}")

    def _cancel_tasks(self) -> None:
        if self._search_task is not None:
            self._search_task.cancel()
            self._search_task = None
        for task in self._header_tasks.values():
            task.cancel()
        self._header_tasks.clear()

    def _clear(self) -> None:
        self._pending = []
        self._flush_timer.stop()
        for card in self.cards:
            self.results.removeWidget(card)
            card.deleteLater()
        self.cards = []
        self.searcher = None

    def _on_item(self, generation: int, item: tuple[str, Any]) -> None:
        if generation != self._generation:
            return
        kind, value = item
        if kind == "searcher":
            self.searcher = value
            return
        self._pending.append(value)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush_pending(self) -> None:
        """Add a few of the repos that arrived (one layout pass); the rest on the next turns,
        so building the cards never holds the GUI thread long."""
        if not self._pending or self.searcher is None:
            return
        batch, self._pending = self._pending[:CARDS_PER_TURN], self._pending[CARDS_PER_TURN:]
        holder = self._holder
        holder.setUpdatesEnabled(False)
        for repo in batch:
            card = RepoCard(repo, self.searcher.hub.model_page(repo.repo))
            for row in card.rows:
                row.download_requested.connect(self.download)
            self.results.insertWidget(self.results.count() - 1, card)
            self.cards.append(card)
        holder.setUpdatesEnabled(True)
        self._update_status()
        if not self._visible_timer.isActive():
            self._visible_timer.start()
        if self._pending:
            self._flush_timer.start()

    def _on_listing_done(self, generation: int, count: int) -> None:
        if generation != self._generation:
            return
        self._search_task = None
        self._listing_done = True
        if count == 0:
            query = self.query.text().strip()
            self.status.setText(f"No GGUF model on the Hub matches {query!r}.")
        self._update_status()

    def _on_failed(self, generation: int, error: GbdeskError) -> None:
        if generation != self._generation:
            return
        self._search_task = None
        self.stop_button.setEnabled(False)
        self.banner.show_error(error)
        self.status.setText(
            "Models already on this computer still work: they are on the Installed tab."
        )

    def _on_cancelled(self, generation: int) -> None:
        if generation == self._generation:
            self._search_task = None

    # --- lazy header reads -----------------------------------------------------------------

    def visible_cards(self) -> list[RepoCard]:
        """The cards that are (partly) inside the scroll area's viewport, top first."""
        # Cards added since the last layout pass still have their default geometry (all of
        # them "on screen"): lay out first, so that only what a person sees gets read.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        viewport = self.results_area.viewport()
        area = QRect(0, 0, viewport.width(), viewport.height())
        visible = []
        for card in self._shown_cards():
            top_left = card.mapTo(viewport, card.rect().topLeft())
            if area.intersects(QRect(top_left, card.size())):
                visible.append(card)
        return visible

    def _shown_cards(self) -> list[RepoCard]:
        """The cards with a real place on the page: one just added is shown (and placed) by a
        queued event, and until then has the default geometry, at the top."""
        if not self.isVisible():
            return self.cards
        return [card for card in self.cards if card.isVisible()]

    def _read_visible(self) -> None:
        if self.searcher is None or self._stopped:
            return
        if len(self._shown_cards()) < len(self.cards):
            self._visible_timer.start()  # look again once the new cards have their place
        for card in self.visible_cards():
            if len(self._header_tasks) >= HEADER_TASKS:
                return
            if card.headers_requested or not card.rows:
                continue
            card.headers_requested = True
            self._start_headers(card)

    def _start_headers(self, card: RepoCard) -> None:
        searcher, repo, generation = self.searcher, card.repo, self._generation
        self._header_tasks[repo.repo] = run_task(
            "read GGUF headers",
            lambda ctx: _read_headers(ctx, searcher, repo),
            on_item=lambda result: self._on_result(generation, card, result),
            on_failed=lambda error: self._on_header_failed(generation, error),
            on_finished=lambda: self._on_headers_finished(generation, repo.repo),
        )
        self._update_status()

    def _on_result(self, generation: int, card: RepoCard, result: Any) -> None:
        if generation != self._generation:
            return
        row = card.row(result.quant)
        if row is None:
            return
        row.set_result(result)
        if self.first_verdict_s is None:
            self.first_verdict_s = time.monotonic() - self.search_started_at
            self.first_verdict.emit()

    def _on_header_failed(self, generation: int, error: GbdeskError) -> None:
        if generation == self._generation:
            self.banner.show_error(error)

    def _on_headers_finished(self, generation: int, repo: str) -> None:
        if generation != self._generation:
            return
        self._header_tasks.pop(repo, None)
        self._update_status()
        self._read_visible()

    def _summary(self) -> str:
        rows = [row for card in self.cards for row in card.rows]
        done = sum(1 for row in rows if row.result is not None)
        fits = sum(
            1
            for row in rows
            if row.result is not None
            and row.verdict not in {"does-not-fit", "cannot-load", "unknown"}
        )
        return (
            f"{len(self.cards)} repos, {len(rows)} files; {done} checked, {fits} of them run "
            "on this computer."
        )

    def _update_status(self) -> None:
        busy = self._search_task is not None or bool(self._header_tasks)
        self.stop_button.setEnabled(busy)
        if self.cards:
            more = (
                " Scroll down to check more."
                if not busy and not self._stopped and self._unread()
                else ""
            )
            reading = " Reading headers…" if self._header_tasks else ""
            stopped = "Stopped. " if self._stopped else ""
            self.status.setText(stopped + self._summary() + reading + more)

    def _unread(self) -> bool:
        return any(not card.headers_requested and card.rows for card in self.cards)

    def rows(self) -> list[QuantRow]:
        return [row for card in self.cards for row in card.rows]

    def is_busy(self) -> bool:
        """True while the listing runs, headers are read, or a check of what is on screen is
        due (which may start more reads)."""
        return (
            self._search_task is not None
            or bool(self._header_tasks)
            or self._visible_timer.isActive()
            or self._flush_timer.isActive()
        )

    # --- downloads -------------------------------------------------------------------------

    def download(self, row: QuantRow) -> None:
        """Queue the row's quant (every part of a split model) in the app's download manager."""
        from gbdesk.download.spec import with_split_parts

        def refused(error: GbdeskError) -> None:
            self.banner.show_error(error)
            row.download_button.setText("Download")
            row.download_button.setEnabled(True)

        row.set_download_state("Queued")
        queue_download(
            self,
            self.state.downloads,
            lambda: with_split_parts(row.repo.repo, row.quant.files[0]),
            on_progress=lambda p: row.set_download_state(
                f"{round(100 * p.done / max(1, p.total))} %", p.done / max(1, p.total)
            ),
            on_state=lambda job: self._on_download_state(row, job),
            on_done=lambda job: self._on_download_done(row, job),
            on_refused=refused,
            on_queued=lambda job: setattr(row, "job", job),
        )

    def _on_download_state(self, row: QuantRow, job: Any) -> None:
        from gbdesk.download.job import JobState

        if job.state is JobState.RUNNING:
            row.set_download_state("Downloading…")

    def _on_download_done(self, row: QuantRow, job: Any) -> None:
        from gbdesk.download.job import JobState

        row.progress.hide()
        if job.state is JobState.DONE:
            row.download_button.setText("Downloaded")
            self.banner.show_message(
                f"Downloaded {row.repo.repo} {row.quant.name}: it is on the Installed tab, "
                "ready to serve.",
                level="success",
            )
            self.downloaded.emit(job.result)
            return
        row.download_button.setText("Download")
        row.download_button.setEnabled(True)
        if job.state is JobState.FAILED and job.error is not None:
            error = job.error
            self.banner.show_message(
                getattr(error, "message", str(error)), getattr(error, "fix", "") or ""
            )


class WizardHubPanel(QWidget):
    """The wizard's way to the Hub: a button that swaps the recommended list for the browser.

    A model downloaded from the browser while it is shown is the wizard's pick: the Download
    step is then skipped and the backend step serves that file.
    """

    changed = Signal()

    def __init__(self, state: AppState, recommended: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.recommended = recommended
        self.browser: HubBrowser | None = None  # built on first use
        self.model_path: Any = None  # the file downloaded from the Hub
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QPushButton("Search the Hub for any GGUF model…")
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self._show_browser)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.toggle)
        layout.addLayout(row)
        self._layout = layout

    def _show_browser(self, shown: bool) -> None:
        if shown and self.browser is None:
            self.browser = HubBrowser(self.state)
            self.browser.setMinimumHeight(360)
            self.browser.downloaded.connect(self._downloaded)
            self._layout.addWidget(self.browser, 1)
        if self.browser is not None:
            self.browser.setVisible(shown)
        self.recommended.setVisible(not shown)
        self.toggle.setText(
            "Back to the recommended models" if shown else "Search the Hub for any GGUF model…"
        )
        self.changed.emit()

    def _downloaded(self, result: Any) -> None:
        self.model_path = result.path
        self.changed.emit()

    def chosen_path(self) -> Any:
        """The Hub model to use: downloaded, and the browser is the one shown."""
        return self.model_path if self.toggle.isChecked() else None
