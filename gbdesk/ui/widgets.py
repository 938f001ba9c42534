"""Small widgets shared by the wizard and the main window: cards, banners, badges, bars, charts.

The painted ones (memory bar, line chart, badge) read their colours from the current theme, so
they follow light and dark like the style sheet does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
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
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

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
    """Like :func:`page_layout`, but the content scrolls when the window is smaller than it
    (cards never overlap or clip; a scroll bar appears instead)."""
    from PySide6.QtWidgets import QScrollArea

    page.setObjectName("Page")
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea()
    area.setObjectName("PageScroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
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
        self.setMinimumHeight(40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_usage(
        self, segments: Iterable[MemorySegment], budget_bytes: int, budget_label: str = "available"
    ) -> None:
        self._segments = tuple(s for s in segments if s.size_bytes > 0)
        self._budget = max(0, budget_bytes)
        self._budget_label = budget_label
        self.setToolTip(self.summary())
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
        return QSize(320, 40)

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
        # Legend: one coloured dot and label per segment, then the budget.
        painter.setPen(QColor(palette.muted))
        legend_y = bar.bottom() + 6
        x = 0.0
        for segment in self._segments:
            painter.setBrush(QColor(getattr(palette, segment.colour_name)))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QRectF(x, legend_y + metrics.height() / 2 - 4, 8, 8))
            text = f"{segment.label} {human_bytes(segment.size_bytes)}"
            painter.setPen(QColor(palette.muted))
            painter.drawText(QPointF(x + 12, legend_y + metrics.ascent()), text)
            x += 12 + metrics.horizontalAdvance(text) + 14
        if need > self._budget > 0:
            painter.setBrush(QColor(palette.error))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRect(QRectF(x, legend_y + metrics.height() / 2 - 4, 8, 8))
            text = f"does not fit: {human_bytes(need - self._budget)} too much"
            painter.setPen(QColor(palette.error))
            painter.drawText(QPointF(x + 12, legend_y + metrics.ascent()), text)
            painter.setPen(QColor(palette.muted))
        budget_text = f"{human_bytes(self._budget)} {self._budget_label}"
        painter.drawText(
            QPointF(
                self.width() - metrics.horizontalAdvance(budget_text) - 2,
                legend_y + metrics.ascent(),
            ),
            budget_text,
        )
        painter.end()


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
        self.caption = muted(caption, wrap=False)
        self.value_label = QLabel("-")
        self.value_label.setObjectName("BigNumber")
        self.body.addWidget(self.caption)
        self.body.addWidget(self.value_label)

    def set_value(self, text: str) -> None:
        self.value_label.setText(text)
