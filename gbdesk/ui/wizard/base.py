"""The wizard's frame: numbered steps on the left, the current page, Back / Skip / Next.

Each step is a :class:`WizardPage`. A page says when the person may go on
(:meth:`WizardPage.is_complete`, re-checked on ``complete_changed``), may offer Skip, and does
its work when entered (:meth:`WizardPage.enter`), always through workers.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gbdesk.ui.resources_access import app_icon
from gbdesk.ui.screen_fit import fit_to_screen
from gbdesk.ui.state import AppState
from gbdesk.ui.theme import current_palette
from gbdesk.ui.widgets import primary_button

# The size the wizard opens at where the screen has room, and the smallest it holds at (every
# step fits a 1024x600 screen; smaller work areas shrink both, see gbdesk/ui/screen_fit.py).
WIZARD_SIZE = QSize(980, 680)
WIZARD_MINIMUM_SIZE = QSize(720, 480)


class WizardPage(QWidget):
    """One step. Subclasses fill ``self.body`` and override the hooks they need.

    ``step_title`` names the step in the steps list and the window title; ``step_detail`` says
    in a few words what it does (the Welcome step lists every step with both).
    """

    complete_changed = Signal()
    step_title = ""
    step_detail = ""

    def __init__(self, state: AppState, title: str, subtitle: str = "") -> None:
        super().__init__()
        self.state = state
        self.wizard: WizardFrame | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Only up and down: the content wraps and stacks to the width it is given.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget()
        self.body = QVBoxLayout(content)
        self.body.setContentsMargins(32, 28, 32, 20)
        self.body.setSpacing(14)
        heading = QLabel(title)
        heading.setObjectName("PageTitle")
        heading.setWordWrap(True)
        self.body.addWidget(heading)
        if subtitle:
            sub = QLabel(subtitle)
            sub.setObjectName("PageSubtitle")
            sub.setWordWrap(True)
            self.body.addWidget(sub)
        scroll.setWidget(content)
        outer.addWidget(scroll)

    def is_complete(self) -> bool:
        return True

    def can_skip(self) -> bool:
        return False

    def next_label(self) -> str:
        return "Next"

    def enter(self) -> None:
        """Called each time the page becomes current."""

    def leave(self) -> None:
        """Called when the person moves on (Next or Skip)."""

    def should_be_skipped(self) -> bool:
        """True when there is nothing to do on this page (e.g. the model is already here)."""
        return False


PageT = TypeVar("PageT", bound=WizardPage)


class WizardFrame(QDialog):
    """Steps list + stacked pages + navigation buttons."""

    finished_to_chat = Signal()

    def __init__(self, state: AppState, pages: list[WizardPage], parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.pages = pages
        self.setWindowTitle("Set up gbdesk")
        self.setWindowIcon(app_icon())
        fit_to_screen(self, WIZARD_SIZE, WIZARD_MINIMUM_SIZE)
        self._index = -1
        self._history: list[int] = []

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        steps = QFrame()
        steps.setObjectName("WizardSteps")
        steps.setFixedWidth(220)
        palette = current_palette()
        steps.setStyleSheet(
            f"#WizardSteps {{ background: {palette.sidebar}; border-right: 1px solid "
            f"{palette.border}; }}"
        )
        steps_layout = QVBoxLayout(steps)
        steps_layout.setContentsMargins(20, 28, 16, 20)
        steps_layout.setSpacing(6)
        brand = QLabel("gbdesk setup")
        brand.setObjectName("SectionTitle")
        steps_layout.addWidget(brand)
        steps_layout.addSpacing(12)
        self.step_labels: list[QLabel] = []
        for number, page in enumerate(pages, start=1):
            label = QLabel(f"{number}   {page.step_title}")
            label.setWordWrap(True)
            label.setMinimumHeight(30)
            steps_layout.addWidget(label)
            self.step_labels.append(label)
        steps_layout.addStretch(1)
        layout.addWidget(steps)

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        self.stack = QStackedWidget()
        for page in pages:
            page.wizard = self
            page.complete_changed.connect(self._update_buttons)
            self.stack.addWidget(page)
        right.addWidget(self.stack, 1)
        bar = QFrame()
        bar.setObjectName("WizardBar")
        bar.setStyleSheet(f"#WizardBar {{ border-top: 1px solid {palette.border}; }}")
        bar_layout = QHBoxLayout(bar)
        bar_layout.setContentsMargins(32, 12, 32, 12)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self.reject)
        self.back_button = QPushButton("Back")
        self.back_button.clicked.connect(self.back)
        self.skip_button = QPushButton("Skip")
        self.skip_button.clicked.connect(self.skip)
        self.next_button = primary_button("Next")
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self.next)
        bar_layout.addWidget(self.cancel_button)
        bar_layout.addStretch(1)
        bar_layout.addWidget(self.back_button)
        bar_layout.addWidget(self.skip_button)
        bar_layout.addWidget(self.next_button)
        right.addWidget(bar)
        layout.addLayout(right, 1)
        QShortcut(QKeySequence("Alt+Right"), self, self.next)
        QShortcut(QKeySequence("Alt+Left"), self, self.back)
        QShortcut(QKeySequence("Alt+S"), self, self.skip)
        self.skip_button.setToolTip("Skip this step (Alt+S)")
        self.next_button.setToolTip("Next (Alt+Right)")
        self.go_to(0)

    # --- navigation ----------------------------------------------------------------------

    @property
    def index(self) -> int:
        return self._index

    def current_page(self) -> WizardPage:
        return self.pages[self._index]

    def page_of(self, kind: type[PageT]) -> PageT:
        """The wizard's page of class ``kind``."""
        return next(p for p in self.pages if isinstance(p, kind))

    def go_to(self, index: int, *, remember: bool = True) -> None:
        if remember and self._index >= 0:
            self._history.append(self._index)
        self._index = index
        self.stack.setCurrentIndex(index)
        # The step in the title too: screen readers and the window list say where one is.
        page = self.pages[index]
        self.setWindowTitle(
            f"Set up gbdesk: step {index + 1} of {len(self.pages)}, {page.step_title}"
        )
        palette = current_palette()
        for number, label in enumerate(self.step_labels):
            if number == index:
                style = f"color: {palette.accent_text}; font-weight: 600;"
            elif number < index:
                style = f"color: {palette.text};"
            else:
                style = f"color: {palette.muted};"
            label.setStyleSheet(style)
        self.pages[index].enter()
        self._update_buttons()
        # Keyboard focus on the page's own choice if it set one, else on Next (never Close).
        focused = self.focusWidget()
        page = self.pages[index]
        if focused is None or not page.isAncestorOf(focused):
            target = self.next_button if self.next_button.isEnabled() else self.skip_button
            target.setFocus()

    def next(self) -> None:
        page = self.current_page()
        if not self.next_button.isEnabled():
            return
        page.leave()
        if self._index == len(self.pages) - 1:
            self.finish()
            return
        self.go_to(self._next_index(self._index))

    def skip(self) -> None:
        page = self.current_page()
        if not page.can_skip():
            return
        page.leave()
        self.go_to(self._next_index(self._index))

    def _next_index(self, index: int) -> int:
        index += 1
        while index < len(self.pages) - 1 and self.pages[index].should_be_skipped():
            index += 1
        return index

    def back(self) -> None:
        if self._history:
            self.go_to(self._history.pop(), remember=False)

    def _update_buttons(self) -> None:
        page = self.current_page()
        last = self._index == len(self.pages) - 1
        self.back_button.setEnabled(bool(self._history) and not last)
        self.skip_button.setVisible(page.can_skip())
        self.next_button.setText("Open gbdesk" if last else page.next_label())
        self.next_button.setEnabled(page.is_complete())

    def finish(self) -> None:
        self.state.update_settings(first_run_done=True)
        self.accept()
        self.finished_to_chat.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        event.accept()
        super().closeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        # Esc must not throw away a download or a started backend by accident.
        if event.key() == Qt.Key.Key_Escape:
            event.ignore()
            return
        super().keyPressEvent(event)
