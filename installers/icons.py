"""Render the app icon (resources/app-icon.svg) into the files each installer needs.

    python installers/icons.py OUT_DIR

writes OUT_DIR/hicolor/<size>x<size>/apps/gbdesk.png for the Linux icon theme, a copy of the
SVG as OUT_DIR/hicolor/scalable/apps/gbdesk.svg, OUT_DIR/gbdesk.ico (Windows) and
OUT_DIR/gbdesk.icns (macOS). It uses Qt's own SVG renderer and image writers, so it needs
nothing beyond PySide6; it runs headless.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_SVG = REPO / "resources" / "app-icon.svg"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICON_NAME = "gbdesk"


def render_icons(out_dir: Path, source: Path = SOURCE_SVG) -> list[Path]:
    """Write every icon file into ``out_dir`` and return their paths.

    Raises:
        FileNotFoundError: the source SVG is missing.
        RuntimeError: Qt could not render or write an image.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    if not source.is_file():
        raise FileNotFoundError(f"the app icon is missing: {source}")
    # A QApplication, not just a QGuiApplication: when this runs inside a test session, the
    # same (one per process) application must also serve the widget tests that follow.
    _app = QApplication.instance() or QApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise RuntimeError(f"Qt cannot render {source}")

    def render(size: int) -> QImage:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        return image

    written: list[Path] = []

    def save(image: QImage, path: Path, fmt: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), fmt):
            raise RuntimeError(f"Qt could not write {path}")
        written.append(path)

    for size in PNG_SIZES:
        save(
            render(size),
            out_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png",
            "PNG",
        )
    scalable = out_dir / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, scalable)
    written.append(scalable)
    save(render(256), out_dir / f"{ICON_NAME}.ico", "ICO")
    save(render(512), out_dir / f"{ICON_NAME}.icns", "ICNS")
    save(render(256), out_dir / f"{ICON_NAME}.png", "PNG")
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python installers/icons.py OUT_DIR")
    for path in render_icons(Path(sys.argv[1])):
        print(path)
