"""Step 3: the recommender's list for this machine, with why each model fits (or does not).

Changing the context length, the parallel chats or the use case re-runs the recommender in a
worker (debounced by 150 ms), so the estimates follow the controls without blocking typing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QLabel,
    QListWidgetItem,
    QWidget,
)

from gbdesk.options import DEFAULT_CTX, DEFAULT_PARALLEL
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    FlowLayout,
    MemoryBar,
    MemorySegment,
    VerdictBadge,
    WidgetList,
    human_bytes,
    labelled,
    muted,
    option_spin,
)
from gbdesk.ui.wizard.base import WizardPage
from gbdesk.ui.workers import TaskHandle, run_task

DEBOUNCE_MS = 150
USE_CASES = (
    ("", "All uses"),
    ("qa", "Questions and answers"),
    ("customer-service", "Customer service"),
    ("reasoning", "Reasoning"),
    ("general", "General"),
)
# The estimator's verdicts mapped onto the badge's keys.
VERDICTS = {
    "full-gpu": "gpu",
    "partial-gpu": "partial",
    "cpu-only": "cpu",
    "does-not-fit": "no_fit",
}


def recommend_for(
    profile: Any, n_ctx: int, n_parallel: int, use_case: str, *, online: bool = True
) -> tuple:
    """The recommender's ranking with this machine's calibration, measured speeds and the
    starter on disk (runs in a worker); offline, what is on disk comes first."""
    from gbdesk.app.recommendation import recommend_here
    from gbdesk.fit.estimator import FitSettings

    return recommend_here(
        profile,
        FitSettings(n_ctx=n_ctx, n_parallel=n_parallel),
        use_case=use_case or None,
        online=online,
    )


class RecommendationRow(QFrame):
    """One model: name and quant, badge, memory bar, speed, size, and the reason sentence."""

    def __init__(self, recommendation: Any, starter: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recommendation = recommendation
        fit = recommendation.fit
        layout = QGridLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setHorizontalSpacing(12)
        layout.setVerticalSpacing(4)
        title = QLabel(f"<b>{recommendation.model_name}</b>  {recommendation.quant}")
        title.setWordWrap(True)
        layout.addWidget(title, 0, 0)
        if starter:
            where = "on this computer, works offline"
        elif recommendation.on_disk:
            where = "on disk, no download"
        else:
            where = f"{human_bytes(fit.download_bytes)} download"
        facts = muted(f"~{fit.speed.generation_tps:.1f} tokens/s  ·  {where}")
        if recommendation.path:
            facts.setToolTip(recommendation.path)
        layout.addWidget(facts, 1, 0)
        self.badge = VerdictBadge(VERDICTS.get(fit.verdict, "no_fit"))
        layout.addWidget(self.badge, 0, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.bar = MemoryBar()
        cpu = fit.devices[0]
        gpus = fit.devices[1:]
        self.bar.set_usage(
            [
                MemorySegment("weights", sum(d.weights for d in fit.devices), "weights"),
                MemorySegment("KV cache", sum(d.kv_cache for d in fit.devices), "kv_cache"),
                MemorySegment(
                    "overhead",
                    sum(d.compute + d.overhead for d in fit.devices),
                    "overhead",
                ),
            ],
            cpu.capacity + sum(d.capacity for d in gpus),
            "RAM + VRAM available" if gpus else "RAM available",
        )
        layout.addWidget(self.bar, 2, 0, 1, 2)
        reason = muted(recommendation.reason)
        layout.addWidget(reason, 3, 0, 1, 2)
        layout.setColumnStretch(0, 1)


class ChooseModelPage(WizardPage):
    step_title = "Choose a model"
    step_detail = "with the reason it fits, before anything is downloaded"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Choose a model",
            "Ranked for this computer: the best model that runs well comes first. The bar shows "
            "the memory a model needs (weights, conversation memory, working space) against "
            "what is available.",
        )
        # Side by side when there is room, stacked when the window is narrow.
        controls = FlowLayout(spacing=16)
        self.use_case = QComboBox()
        for key, label in USE_CASES:
            self.use_case.addItem(label, key)
        settings = state.settings
        self.context = option_spin(
            "context_length", settings.context_length or DEFAULT_CTX, minimum=512
        )
        self.context.setSingleStep(1024)
        self.context.setSuffix(" tokens")
        self.parallel = option_spin(
            "parallel", settings.parallel or DEFAULT_PARALLEL, automatic=False
        )
        controls.add(labelled("Use", self.use_case))
        controls.add(labelled("Context", self.context))
        controls.add(labelled("Parallel chats", self.parallel))
        self.body.addLayout(controls)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.status = muted("")
        self.body.addWidget(self.status)
        self.list = WidgetList()
        self.list.setSpacing(2)
        self.list.setMinimumHeight(260)
        self.list.setVerticalScrollMode(WidgetList.ScrollMode.ScrollPerPixel)
        self.list.currentRowChanged.connect(lambda _row: self.complete_changed.emit())
        self.body.addWidget(self.list, 1)
        # Models that fit only with the workers of Settings > Workers (hidden without workers).
        from gbdesk.ui.pooled_models import PooledModelsSection

        self.pooled = PooledModelsSection(state, self._fit_settings)
        self.body.addWidget(self.pooled)
        from gbdesk.ui.hub_browser import WizardHubPanel

        self.hub_panel = WizardHubPanel(state, self.list)
        self.hub_panel.changed.connect(self.complete_changed.emit)
        self.body.addWidget(self.hub_panel)
        self.recommendations: tuple = ()
        self.hub_reachable: bool | None = None  # tested once, on the first estimate
        self._task: TaskHandle | None = None
        self._stale = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)
        # the background measurement stored a calibration: the figures follow it
        state.calibration.finished.connect(lambda _result: self._debounce.start())
        for signal in (
            self.use_case.currentIndexChanged,
            self.context.valueChanged,
            self.parallel.valueChanged,
        ):
            signal.connect(lambda *_args: self._debounce.start())

    def enter(self) -> None:
        if not self.recommendations and self._task is None:
            self.refresh()

    def _fit_settings(self) -> Any:
        """The context and parallel chats chosen above (what the pooled section plans for)."""
        from gbdesk.fit.estimator import FitSettings

        return FitSettings(n_ctx=self.context.value(), n_parallel=self.parallel.value())

    def refresh(self) -> None:
        self.pooled.refresh()
        if self.state.profile is None:
            self.status.setText("Waiting for the hardware probe…")
            return
        if self._task is not None:  # run again with the latest values when this one ends
            self._stale = True
            return
        self.status.setText("Estimating…")
        args = (
            self.state.profile,
            self.context.value(),
            self.parallel.value(),
            self.use_case.currentData(),
        )
        endpoint = self.state.settings.hub_endpoint
        known = self.hub_reachable

        def work(_ctx) -> tuple:
            from gbdesk.app.recommendation import hub_is_reachable

            reachable = known if known is not None else hub_is_reachable(endpoint)
            return recommend_for(*args, online=reachable), reachable

        self._task = run_task(
            "recommend models",
            work,
            on_done=self._show_result,
            on_failed=self.banner.show_error,
            on_finished=self._on_finished,
        )

    def _on_finished(self) -> None:
        self._task = None
        if self._stale:
            self._stale = False
            self.refresh()

    def _show_result(self, result: tuple) -> None:
        recommendations, self.hub_reachable = result
        self._show(recommendations)

    @staticmethod
    def first_pick(recommendations: tuple) -> int:
        """The row to pre-select: the ranking's first model that runs here (offline, the
        ranking puts what is on disk first: the bundled starter, or a model in the library)."""
        return next((row for row, rec in enumerate(recommendations) if rec.fit.runs), 0)

    def _show(self, recommendations: tuple) -> None:
        from gbdesk.starter import STARTER_ID

        self.banner.clear()
        previous = self.chosen()
        previous_key = (previous.model_id, previous.quant) if previous else None
        self.recommendations = recommendations
        self.list.clear()
        select = self.first_pick(recommendations)
        for row, rec in enumerate(recommendations):
            widget = RecommendationRow(rec, starter=rec.model_id == STARTER_ID)
            item = QListWidgetItem()
            self.list.addItem(item)
            self.list.set_row_widget(item, widget)
            if previous_key == (rec.model_id, rec.quant):
                select = row
        if recommendations:
            self.list.setCurrentRow(select)
        fitting = sum(1 for r in recommendations if r.fit.runs)
        picked = self.chosen()
        offline = ""
        if self.hub_reachable is False and previous_key is None and picked is not None:
            # Name what was picked: the bundled starter, or a model already in the library.
            what = (
                "the bundled starter model"
                if picked.model_id == STARTER_ID
                else f"{picked.model_name}, already on this computer,"
            )
            offline = (
                f" The Hugging Face Hub cannot be reached, so {what} is picked: it needs no"
                " download."
            )
        self.status.setText(
            f"{fitting} of {len(recommendations)} models run on this computer with "
            f"{self.context.value()} tokens of context and {self.parallel.value()} parallel "
            f"chat{'s' if self.parallel.value() > 1 else ''}." + offline
        )
        self.complete_changed.emit()

    def chosen(self) -> Any:
        row = self.list.currentRow()
        return self.recommendations[row] if 0 <= row < len(self.recommendations) else None

    def select_model(self, model_id: str) -> bool:
        for row, rec in enumerate(self.recommendations):
            if rec.model_id == model_id:
                self.list.setCurrentRow(row)
                return True
        return False

    def is_complete(self) -> bool:
        if self.hub_panel.toggle.isChecked():
            return self.hub_panel.chosen_path() is not None
        chosen = self.chosen()
        return chosen is not None and chosen.fit.runs

    def leave(self) -> None:
        chosen = self.chosen()
        if chosen is not None:
            self.state.update_settings(
                context_length=self.context.value(), parallel=self.parallel.value()
            )

    def summary_line(self) -> str:
        if (hub_model := self.hub_panel.chosen_path()) is not None:
            return f"Model: {hub_model.name} (from the Hub)."
        chosen = self.chosen()
        return f"Model: {chosen.model_name} {chosen.quant}." if chosen else ""
