"""The one helper that finds the UI's package data (icons, style sheet).

Files live in gbdesk/ui/resources (copied from the repository's resources/ so the wheel has them)
and are read from the package folder when it is one on disk (a wheel, an editable install: no
need to import importlib.resources, with zipfile and tempfile, before the first paint), else
through importlib.resources, so they are found in a zip or a frozen app too.
Icons are SVG with ``currentColor`` strokes, tinted with the theme's colour and rendered at the
screen's device pixel ratio, so they stay sharp on HiDPI screens.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRect, QSize
from PySide6.QtGui import QColor, QIcon, QIconEngine, QImage, QImageReader, QPainter, QPixmap

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

_PACKAGE = "gbdesk.ui.resources"
_FOLDER = Path(__file__).with_name("resources")


def _resource(name: str) -> Path | Traversable:
    path = _FOLDER / name
    if path.is_file():
        return path
    from importlib import resources

    return resources.files(_PACKAGE).joinpath(name)


def read_text(name: str) -> str:
    """The text of the resource file ``name`` (a path under gbdesk/ui/resources)."""
    return _resource(name).read_text(encoding="utf-8")


def read_bytes(name: str) -> bytes:
    """The bytes of the resource file ``name``."""
    return _resource(name).read_bytes()


class _SvgIconEngine(QIconEngine):
    """Renders the SVG at whatever size and pixel ratio Qt asks for: sharp on HiDPI screens.

    Rendering goes through Qt's SVG image plugin (QImageReader), so start-up does not pay for
    importing the QtSvg Python module.
    """

    def __init__(self, svg: bytes) -> None:
        super().__init__()
        self._svg = svg

    def _image(self, width: int, height: int) -> QImage:
        buffer = QBuffer()
        buffer.setData(QByteArray(self._svg))
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        reader = QImageReader(buffer, b"svg")
        reader.setScaledSize(QSize(max(1, width), max(1, height)))
        return reader.read()

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        image = self._image(round(rect.width() * ratio), round(rect.height() * ratio))
        if mode == QIcon.Mode.Disabled:
            painter.setOpacity(0.4)
        painter.drawImage(rect, image)

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap.fromImage(self._image(size.width(), size.height()))
        if mode == QIcon.Mode.Disabled:
            faded = QPixmap(pixmap.size())
            faded.fill(QColor(0, 0, 0, 0))
            painter = QPainter(faded)
            painter.setOpacity(0.4)
            painter.drawPixmap(0, 0, pixmap)
            painter.end()
            return faded
        return pixmap

    def clone(self) -> QIconEngine:
        return _SvgIconEngine(self._svg)


@lru_cache(maxsize=128)
def icon(name: str, color: str = "#5f6679") -> QIcon:
    """The icon ``icons/<name>.svg`` with its strokes drawn in ``color``."""
    svg = read_bytes(f"icons/{name}.svg").replace(b"currentColor", color.encode("ascii"))
    return QIcon(_SvgIconEngine(svg))


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """gbdesk's application icon (app-icon.svg)."""
    return QIcon(_SvgIconEngine(read_bytes("app-icon.svg")))
