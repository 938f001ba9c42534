"""Small widgets shared by the wizard and the main window: cards, banners, badges, bars, charts.

The painted ones (memory bar, line chart, badge) read their colours from the current theme, so
they follow light and dark like the style sheet does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetrics,
    QGuiApplication,
    QPainter,
    QPainterPath,
    QPen,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QToolTip,
    QVBoxLayout,
    QWidget,
    QWidgetItem,
)
from shiboken6 import isValid

from gbdesk.errors import GbdeskError
from gbdesk.options import option
from gbdesk.ui.theme import current_palette

SPACING = 12
MARGIN = 24


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'. Binary units, as the core writes them (the estimator's reasons, the
    probe's summary), so a page never mixes GB with GiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_duration(seconds: float) -> str:
    """75 -> '1 min 15 s'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def choose_env_file(parent: QWidget, field: QLineEdit) -> None:
    """Ask for botserver's .env file (it may not exist yet) and put the choice in ``field``."""
    path, _filter = QFileDialog.getSaveFileName(
        parent, "botserver .env file", field.text() or ".env"
    )
    if path:
        field.setText(path)


def page_layout(page: QWidget, title: str, subtitle: str, *, spacing: int = 12) -> QVBoxLayout:
    """The frame every main-window page shares: style-sheet name, margins and header."""
    page.setObjectName("Page")
    layout = QVBoxLayout(page)
    layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
    layout.setSpacing(spacing)
    layout.addWidget(page_header(title, subtitle))
    return layout


def scrolling_page_layout(
    page: QWidget, title: str, subtitle: str, *, spacing: int = 12
) -> QVBoxLayout:
    """Like :func:`page_layout`, but the content scrolls up and down when the window is shorter
    than it (cards never overlap or clip; a scroll bar appears instead)."""
    from PySide6.QtWidgets import QScrollArea

    page.setObjectName("Page")
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea()
    area.setObjectName("PageScroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    # Only up and down: the content wraps and stacks to the width it is given.
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    body = QWidget()
    body.setObjectName("Page")
    area.setWidget(body)
    outer.addWidget(area)
    return page_layout(body, title, subtitle, spacing=spacing)


def page_header(title: str, subtitle: str = "") -> QWidget:
    """A page's title and, below it, one muted sentence saying what the page is for."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.setSpacing(2)
    heading = QLabel(title)
    heading.setObjectName("PageTitle")
    layout.addWidget(heading)
    if subtitle:
        sub = QLabel(subtitle)
        sub.setObjectName("PageSubtitle")
        sub.setWordWrap(True)
        layout.addWidget(sub)
    return box


def muted(text: str, *, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setObjectName("Muted")
    label.setWordWrap(wrap)
    return label


def labelled(caption: str, widget: QWidget) -> QWidget:
    """A caption and its control kept side by side (one item of a :class:`FlowLayout`)."""
    pair = QWidget()
    layout = QHBoxLayout(pair)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    layout.addWidget(QLabel(caption))
    layout.addWidget(widget)
    return pair


def scrolls_sideways(view: QWidget) -> None:
    """Mark ``view`` (a log, a table of many columns) as one whose rows are not reflowed: it may
    scroll sideways, and it opens at its left edge. Every other view wraps or stacks to its
    width instead (tests/ui/test_layouts.py holds both to that)."""
    view.setProperty("scrollsSideways", True)


def section_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("SectionTitle")
    return label


def option_spin(
    name: str, value: int, *, minimum: int | None = None, automatic: bool = True
) -> QSpinBox:
    """A spin box for the integer setting ``name``: range, tooltip and "Automatic" (0) from
    :mod:`gbdesk.options`. ``minimum`` raises the schema's floor (the wizard asks for a real
    number of chats, a port above the privileged ones); ``automatic=False`` drops the 0 choice.
    """
    item = option(name)
    low = item.minimum if item.minimum is not None else 0
    if minimum is not None:
        low = max(low, minimum)
    elif not automatic and item.auto_text and low == 0:
        low = 1
    spin = QSpinBox()
    spin.setRange(low, item.maximum if item.maximum is not None else 2**31 - 1)
    if item.auto_text and low == 0:
        spin.setSpecialValueText(item.auto_text)
    spin.setToolTip(item.help)
    spin.setValue(value)
    return spin


def primary_button(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setProperty("primary", True)
    return button


class FlowLayout(QLayout):
    """Items side by side, wrapping onto the next line when the width runs out (like words).

    Rows of controls (a caption and its spin box, a row of buttons) use it so that a narrow
    window stacks them instead of cutting them or scrolling sideways. ``stretch_last`` lets the
    last item of each line take the rest of the line (a search box, a status text).
    """

    def __init__(self, parent: QWidget | None = None, *, spacing: int = 10) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(spacing)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802
        self._items.append(item)

    def add(self, widget: QWidget) -> None:
        """Add ``widget`` (what :meth:`addWidget` does, typed)."""
        self.addChildWidget(widget)
        self.addItem(QWidgetItem(widget))
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        # Everything on one line.
        visible = [i for i in self._items if not i.isEmpty()]
        width = sum(i.sizeHint().width() for i in visible) + self.spacing() * max(
            0, len(visible) - 1
        )
        height = max((i.sizeHint().height() for i in visible), default=0)
        margins = self.contentsMargins()
        return QSize(
            width + margins.left() + margins.right(), height + margins.top() + margins.bottom()
        )

    def minimumSize(self) -> QSize:  # noqa: N802
        # The widest item alone on its line.
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        lines: list[list[tuple[QLayoutItem, int]]] = [[]]
        x = 0
        for item in self._items:
            if item.isEmpty():
                continue
            width = min(item.sizeHint().width(), area.width())
            width = max(width, item.minimumSize().width())
            if lines[-1] and x + width > area.width():
                lines.append([])
                x = 0
            lines[-1].append((item, width))
            x += width + self.spacing()
        y = area.top()
        for line in lines:
            if not line:
                continue
            height = max(item.sizeHint().height() for item, _ in line)
            if move:
                x = area.left()
                for item, width in line:
                    item.setGeometry(QRect(x, y, width, height))
                    x += width + self.spacing()
            y += height + self.spacing()
        return max(0, y - self.spacing() - area.top()) + margins.top() + margins.bottom()


class ElidingComboBox(QComboBox):
    """A drop-down that shows its whole current text when there is room, ends it in "…" when
    there is not (the full text in the tooltip), and never asks for more than a few words."""

    def __init__(self, parent: QWidget | None = None, *, minimum_chars: int = 14) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(minimum_chars)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        # The size hint follows the current text, also when a caller blocks the signals.
        self.currentIndexChanged.connect(lambda _index: self.updateGeometry())
        model = self.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal.connect(lambda *_args: self.updateGeometry())

    def setCurrentIndex(self, index: int) -> None:  # noqa: N802
        super().setCurrentIndex(index)
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802
        # Room for the whole current text (the base class: only ``minimum_chars``).
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        text = QSize(self.fontMetrics().horizontalAdvance(self.currentText()) + 8, 0)
        if not self.itemIcon(self.currentIndex()).isNull():
            text += QSize(self.iconSize().width() + 4, 0)
        full = self.style().sizeFromContents(
            QStyle.ContentsType.CT_ComboBox, option, text.expandedTo(QSize(0, 1)), self
        )
        return super().sizeHint().expandedTo(QSize(full.width(), 0))

    def shown_text(self) -> str:
        """The current text as drawn at the present width (ends in "…" when cut)."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox,
            option,
            QStyle.SubControl.SC_ComboBoxEditField,
            self,
        )
        return self.fontMetrics().elidedText(
            self.currentText(), Qt.TextElideMode.ElideRight, max(0, field.width() - 4)
        )

    def full_tooltip(self) -> str:
        """The whole current text, then what the control is for."""
        return "\n".join(t for t in (self.currentText(), self.toolTip()) if t)

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self.shown_text()
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and self.currentText():
            QToolTip.showText(event.globalPos(), self.full_tooltip(), self)  # type: ignore[attr-defined]
            return True
        return super().event(event)


class WidgetList(QListWidget):
    """A list whose rows are widgets as wide as the list, as tall as their text needs at that
    width (rows wrap their text instead of scrolling sideways).

    A row's height follows its widget's width: when the list is resized the rows take its width,
    and when a row widget is resized its row takes the height the widget needs at that width
    (plus the item's own padding from the style sheet).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.viewport().installEventFilter(self)
        self._items: dict[QWidget, QListWidgetItem] = {}

    def clear(self) -> None:
        """Remove every row. The rows' widgets are deleted later than their items: forget them
        first, so a resize reaching one before it goes never touches a deleted item."""
        self._items.clear()
        super().clear()

    def set_row_widget(self, item: QListWidgetItem, widget: QWidget) -> None:
        """Show ``widget`` as the row ``item`` (added to the list already)."""
        self._items[widget] = item
        widget.destroyed.connect(lambda _obj=None, w=widget: self._items.pop(w, None))
        widget.installEventFilter(self)
        item.setSizeHint(QSize(self._row_width(), widget.sizeHint().height()))
        self.setItemWidget(item, widget)

    def _row_width(self) -> int:
        return max(1, self.viewport().width() - 2 * self.spacing())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:
            # isValid: a row whose C++ item is gone already must never be touched (a crash).
            if watched is self.viewport():
                for item in list(self._items.values()):
                    if isValid(item):
                        item.setSizeHint(QSize(self._row_width(), item.sizeHint().height()))
            elif isinstance(watched, QWidget) and watched in self._items:
                item = self._items[watched]
                if isValid(item) and isValid(watched):
                    self._fit_height(item, watched)
        return super().eventFilter(watched, event)

    def _fit_height(self, item: QListWidgetItem, widget: QWidget) -> None:
        padding = self.visualItemRect(item).height() - widget.height()
        needed = (
            widget.heightForWidth(widget.width())
            if widget.hasHeightForWidth()
            else widget.sizeHint().height()
        )
        size = QSize(self._row_width(), needed + max(0, padding))
        if item.sizeHint() != size:
            item.setSizeHint(size)


class Card(QFrame):
    """A rounded surface that groups related content; ``body`` is its vertical layout."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(16, 14, 16, 14)
        self.body.setSpacing(8)
        if title:
            self.body.addWidget(section_title(title))


class Banner(QFrame):
    """A coloured message with an optional fix, selectable so it can be copied.

    Levels: info, success, warning, error. Hidden until :meth:`show_message`, which can add one
    action button ("Use another port", "Start the backend", "Undo") on the right.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(12, 10, 12, 10)
        outer.setSpacing(12)
        layout = QVBoxLayout()
        layout.setSpacing(4)
        outer.addLayout(layout, 1)
        self.action_button = QPushButton()
        self.action_button.hide()
        self.action_button.clicked.connect(self._run_action)
        outer.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self._action: Callable[[], object] | None = None
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.message_label.font()
        font.setWeight(font.Weight.DemiBold)
        self.message_label.setFont(font)
        self.fix_label = QLabel()
        self.fix_label.setWordWrap(True)
        self.fix_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message_label)
        layout.addWidget(self.fix_label)
        self.setProperty("level", "info")
        self.hide()

    @property
    def level(self) -> str:
        return str(self.property("level"))

    def show_message(
        self,
        message: str,
        fix: str = "",
        *,
        level: str = "error",
        action: tuple[str, Callable[[], object]] | None = None,
    ) -> None:
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        from gbdesk.errors import without_errno  # no errno reaches a person, whatever the source

        message, fix = without_errno(message), without_errno(fix)
        self.message_label.setText(message)
        self.fix_label.setText(f"Fix: {fix}" if fix else "")
        self.fix_label.setVisible(bool(fix))
        self.show()

    def show_error(
        self, error: GbdeskError, *, action: tuple[str, Callable[[], object]] | None = None
    ) -> None:
        """A task's typed error (``failed`` of :func:`gbdesk.ui.workers.run_task`): its message
        and its fix."""
        self.show_message(error.message, error.fix or "", action=action)

    def clear(self) -> None:
        self.message_label.clear()
        self.fix_label.clear()
        self._action = None
        self.action_button.hide()
        self.hide()

    def _run_action(self) -> None:
        if self._action is not None:
            self._action()

    def text(self) -> str:
        """The message and the fix as plain text (what a person would copy)."""
        parts = [self.message_label.text(), self.fix_label.text()]
        return "\n".join(p for p in parts if p)


class DiagnosticRow(QFrame):
    """One probe finding: its level, sentence and fix, with a button that copies the fix."""

    def __init__(self, level: str, message: str, fix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.setProperty("level", {"error": "error", "warning": "warning"}.get(level, "info"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        text = QVBoxLayout()
        self.message_label = QLabel(message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(self.message_label)
        self.fix = fix
        if fix:
            fix_label = QLabel(fix)
            fix_label.setWordWrap(True)
            fix_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            fix_label.setStyleSheet("font-family: 'DejaVu Sans Mono', monospace;")
            text.addWidget(fix_label)
        layout.addLayout(text, 1)
        if fix:
            copy = QPushButton("Copy fix")
            copy.setToolTip("Copy the fix to the clipboard")
            copy.clicked.connect(self.copy_fix)
            layout.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)

    def copy_fix(self) -> None:
        QGuiApplication.clipboard().setText(self.fix)


# Verdict keys the recommender's verdicts map onto, with their label and palette colour.
VERDICT_STYLES: dict[str, tuple[str, str]] = {
    "gpu": ("Runs on GPU", "success"),
    "partial": ("Partly on GPU", "accent"),
    "cpu": ("Runs on CPU", "warning"),
    "no_fit": ("Does not fit", "error"),
    "cannot_load": ("Cannot load", "error"),
    "pending": ("Checking…", "muted"),
    "unknown": ("No verdict", "muted"),
}


class VerdictBadge(QWidget):
    """A coloured pill: runs on GPU / partly on GPU / on CPU / does not fit."""

    def __init__(self, verdict: str = "cpu", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._verdict = verdict
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    @property
    def verdict(self) -> str:
        return self._verdict

    def text(self) -> str:
        return VERDICT_STYLES.get(self._verdict, (self._verdict, "muted"))[0]

    def set_verdict(self, verdict: str) -> None:
        self._verdict = verdict
        self.updateGeometry()
        self.update()

    def _font(self):
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        font.setWeight(font.Weight.DemiBold)
        return font

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self._font())
        return QSize(metrics.horizontalAdvance(self.text()) + 20, metrics.height() + 8)

    def paintEvent(self, _event) -> None:  # noqa: N802
        palette = current_palette()
        colour = QColor(getattr(palette, VERDICT_STYLES.get(self._verdict, ("", "muted"))[1]))
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        fill = QColor(colour)
        fill.setAlphaF(0.16 if not palette.dark else 0.28)
        painter.setPen(QPen(colour, 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setFont(self._font())
        painter.setPen(colour if not palette.dark else QColor(palette.text))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.text())


@dataclass(frozen=True)
class MemorySegment:
    label: str
    size_bytes: int
    colour_name: str  # a ThemePalette field


class MemoryBar(QWidget):
    """A stacked bar: weights, KV cache and overhead against the memory that is available.

    The bar's full width is the larger of the need and the budget; a tick marks the budget, and
    the part past it is hatched in the error colour, so "does not fit" is visible at a glance.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._segments: tuple[MemorySegment, ...] = ()
        self._budget = 0
        self._budget_label = "available"
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_usage(
        self, segments: Iterable[MemorySegment], budget_bytes: int, budget_label: str = "available"
    ) -> None:
        self._segments = tuple(s for s in segments if s.size_bytes > 0)
        self._budget = max(0, budget_bytes)
        self._budget_label = budget_label
        self.setToolTip(self.summary())
        self.updateGeometry()
        self.update()

    def summary(self) -> str:
        parts = [f"{s.label} {human_bytes(s.size_bytes)}" for s in self._segments]
        need = sum(s.size_bytes for s in self._segments)
        over = (
            f"; does not fit: {human_bytes(need - self._budget)} too much (the red part)"
            if need > self._budget > 0
            else ""
        )
        return (
            " + ".join(parts)
            + f" = {human_bytes(need)} of {human_bytes(self._budget)} {self._budget_label}"
            + over
        )

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, self.heightForWidth(320))

    def paintEvent(self, _event) -> None:  # noqa: N802
        palette = current_palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        bar_height = 12
        bar = QRectF(0, 2, self.width() - 1, bar_height)
        need = sum(s.size_bytes for s in self._segments)
        scale_total = max(need, self._budget, 1)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(palette.track))
        painter.drawRoundedRect(bar, 5, 5)
        clip = QPainterPath()
        clip.addRoundedRect(bar, 5, 5)
        painter.setClipPath(clip)
        x = bar.left()
        for segment in self._segments:
            width = bar.width() * segment.size_bytes / scale_total
            painter.setBrush(QColor(getattr(palette, segment.colour_name)))
            painter.drawRect(QRectF(x, bar.top(), width, bar.height()))
            x += width
        if need > self._budget > 0:
            # The part past the budget in the error colour itself, hatched, and named in the
            # legend ("does not fit"): never mistaken for the segment it covers.
            over_x = bar.left() + bar.width() * self._budget / scale_total
            over_rect = QRectF(over_x, bar.top(), x - over_x, bar.height())
            painter.setBrush(QColor(palette.error))
            painter.drawRect(over_rect)
            painter.setBrush(QBrush(QColor(palette.surface), Qt.BrushStyle.BDiagPattern))
            painter.drawRect(over_rect)
        painter.setClipping(False)
        if self._budget > 0:
            tick_x = bar.left() + bar.width() * self._budget / scale_total
            painter.setPen(QPen(QColor(palette.text), 2))
            painter.drawLine(QPointF(tick_x, 0), QPointF(tick_x, bar.bottom() + 2))
        # Legend: one coloured dot and label per segment, the part that does not fit, then the
        # budget; entries wrap onto a second line when the bar is narrow.
        for entry, left, line in self._legend(self.width()):
            y = bar.bottom() + 6 + line * (metrics.height() + 2)
            text, colour_name, marker = entry
            painter.setPen(Qt.PenStyle.NoPen)
            if marker:
                painter.setBrush(QColor(getattr(palette, colour_name)))
                box = QRectF(left, y + metrics.height() / 2 - 4, 8, 8)
                painter.drawRect(box) if marker == "square" else painter.drawEllipse(box)
            text_colour = palette.error if colour_name == "error" else palette.muted
            painter.setPen(QColor(text_colour))
            painter.drawText(QPointF(left + (12 if marker else 0), y + metrics.ascent()), text)
        painter.end()

    def _entries(self) -> list[tuple[str, str, str]]:
        """The legend: (text, palette colour, marker: dot, square or none)."""
        entries = [
            (f"{s.label} {human_bytes(s.size_bytes)}", s.colour_name, "dot") for s in self._segments
        ]
        need = sum(s.size_bytes for s in self._segments)
        if need > self._budget > 0:
            entries.append(
                (f"does not fit: {human_bytes(need - self._budget)} too much", "error", "square")
            )
        entries.append((f"{human_bytes(self._budget)} {self._budget_label}", "muted", ""))
        return entries

    def _legend(self, width: int) -> list[tuple[tuple[str, str, str], float, int]]:
        """Where each legend entry goes: (entry, x, line). The budget sits at the right end."""
        metrics = QFontMetrics(self.font())
        placed: list[tuple[tuple[str, str, str], float, int]] = []
        x, line = 0.0, 0
        entries = self._entries()
        for index, entry in enumerate(entries):
            text, _colour, marker = entry
            entry_width = (12 if marker else 0) + metrics.horizontalAdvance(text)
            if x > 0 and x + entry_width > width:
                x, line = 0.0, line + 1
            last = index == len(entries) - 1
            placed.append((entry, max(x, width - entry_width - 2) if last else x, line))
            x += entry_width + 14
        return placed

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        lines = 1 + max((line for _entry, _x, line in self._legend(width)), default=0)
        return 20 + lines * (QFontMetrics(self.font()).height() + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, self.heightForWidth(max(120, self.width())))


class LineChart(QWidget):
    """A small live chart of one or more percentages (0-100), newest on the right.

    Drawn with QPainter (no QtCharts add-on): a filled area under each series, a light grid at
    25 % steps, and the latest value of each series in the legend.
    """

    def __init__(self, capacity: int = 60, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._capacity = capacity
        self._series: dict[str, tuple[str, deque[float]]] = {}
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def add_series(self, name: str, colour_name: str) -> None:
        self._series[name] = (colour_name, deque(maxlen=self._capacity))

    def has_series(self, name: str) -> bool:
        return name in self._series

    def append(self, name: str, value: float) -> None:
        self._series[name][1].append(max(0.0, min(100.0, value)))
        self.update()

    def values(self, name: str) -> Sequence[float]:
        return tuple(self._series[name][1])

    def paintEvent(self, _event) -> None:  # noqa: N802
        palette = current_palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        legend_height = metrics.height() + 6
        plot = QRectF(metrics.horizontalAdvance("100%") + 6, 4, 0, 0)
        plot.setRight(self.width() - 4)
        plot.setBottom(self.height() - legend_height - 4)
        grid = QColor(palette.border)
        for step in range(5):
            y = plot.bottom() - plot.height() * step / 4
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(QColor(palette.muted))
            label = f"{step * 25}%"
            painter.drawText(
                QPointF(
                    plot.left() - metrics.horizontalAdvance(label) - 4, y + metrics.ascent() / 2 - 1
                ),
                label,
            )
        step_x = plot.width() / max(1, self._capacity - 1)
        legend_x = plot.left()
        for name, (colour_name, points) in self._series.items():
            colour = QColor(getattr(palette, colour_name))
            if len(points) >= 1:
                start = plot.right() - step_x * (len(points) - 1)
                line = QPainterPath()
                for i, value in enumerate(points):
                    point = QPointF(start + step_x * i, plot.bottom() - plot.height() * value / 100)
                    if i == 0:
                        line.moveTo(point)
                    else:
                        line.lineTo(point)
                area = QPainterPath(line)
                area.lineTo(QPointF(plot.right(), plot.bottom()))
                area.lineTo(QPointF(start, plot.bottom()))
                area.closeSubpath()
                fill = QColor(colour)
                fill.setAlphaF(0.14)
                painter.fillPath(area, fill)
                painter.setPen(QPen(colour, 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(line)
            latest = f"{name} {points[-1]:.0f}%" if points else f"{name} -"
            legend_y = self.height() - legend_height / 2
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(QRectF(legend_x, legend_y - 4, 8, 8))
            painter.setPen(QColor(palette.text))
            painter.drawText(QPointF(legend_x + 12, legend_y + metrics.ascent() / 2 - 1), latest)
            legend_x += 12 + metrics.horizontalAdvance(latest) + 18
        painter.end()


class StatTile(Card):
    """A card with a caption and one big number (tokens/s, requests, queue)."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.caption = muted(caption)
        self.value_label = QLabel("-")
        self.value_label.setObjectName("BigNumber")
        self.body.addWidget(self.caption)
        self.body.addWidget(self.value_label)

    def set_value(self, text: str) -> None:
        self.value_label.setText(text)
