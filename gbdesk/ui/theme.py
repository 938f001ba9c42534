"""Light and dark palettes, and applying one to the application.

The theme follows the system's colour scheme (``QStyleHints.colorScheme``) and switches when the
system does. Colours live here once; the style sheet (resources/style.qss) and the painted
widgets (charts, memory bars, badges) read them from :func:`current_palette`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from string import Template

from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from gbdesk.ui.resources_access import read_text


@dataclass(frozen=True)
class ThemePalette:
    """The colours of one theme, as #rrggbb strings."""

    dark: bool
    window: str
    sidebar: str
    surface: str
    input: str
    alternate: str
    text: str
    muted: str
    border: str
    border_strong: str
    hover: str
    pressed: str
    track: str
    accent: str
    accent_hover: str
    accent_soft: str
    accent_text: str
    success: str
    success_bg: str
    warning: str
    warning_bg: str
    error: str
    error_bg: str
    info_bg: str
    # Memory bar and chart series.
    weights: str
    kv_cache: str
    overhead: str
    series_cpu: str
    series_ram: str
    series_vram: str
    series_backend: str


LIGHT = ThemePalette(
    dark=False,
    window="#f5f6fa",
    sidebar="#eceef4",
    surface="#ffffff",
    input="#ffffff",
    alternate="#f8f9fc",
    text="#1d2130",
    muted="#5f6679",
    border="#e0e3ec",
    border_strong="#c9cdd9",
    hover="#e6e9f2",
    pressed="#d9ddea",
    track="#e3e6ee",
    accent="#4560e6",
    accent_hover="#3a52cc",
    accent_soft="#dde3fd",
    accent_text="#2a3ea8",
    success="#1f8a4c",
    success_bg="#e3f5ea",
    warning="#b36b00",
    warning_bg="#fff3dc",
    error="#c6322f",
    error_bg="#fde7e6",
    info_bg="#e8edff",
    weights="#4560e6",
    kv_cache="#9b59d0",
    overhead="#e39b2d",
    series_cpu="#4560e6",
    series_ram="#1f8a4c",
    series_vram="#9b59d0",
    series_backend="#d9822b",
)

DARK = ThemePalette(
    dark=True,
    window="#181a21",
    sidebar="#14161c",
    surface="#21242d",
    input="#1b1e26",
    alternate="#252933",
    text="#e6e8ef",
    muted="#9aa1b4",
    border="#2e323d",
    border_strong="#3d4250",
    hover="#2b2f3a",
    pressed="#353a47",
    track="#2f3340",
    accent="#6b84ff",
    accent_hover="#8196ff",
    accent_soft="#2e3766",
    accent_text="#c9d2ff",
    success="#4cc47f",
    success_bg="#1b3326",
    warning="#f0aa45",
    warning_bg="#3a2e18",
    error="#ff6b66",
    error_bg="#3d1f1f",
    info_bg="#232b4d",
    weights="#6b84ff",
    kv_cache="#bb86fc",
    overhead="#f0aa45",
    series_cpu="#6b84ff",
    series_ram="#4cc47f",
    series_vram="#bb86fc",
    series_backend="#ffa94d",
)

_current: ThemePalette = LIGHT
_applied = False  # whether apply_theme has replaced the platform's palette


def current_palette() -> ThemePalette:
    """The palette in use now (light until :func:`apply_theme` has run)."""
    return _current


def system_prefers_dark() -> bool:
    """True when the system's colour scheme is dark.

    Before gbdesk's own palette is applied, the platform's palette says it (Qt derives it from
    the same system setting): asking ``QStyleHints.colorScheme()`` returns a ``Qt.ColorScheme``,
    and PySide then builds every ``Qt.*`` enum, about 20 ms before the first window. Later calls
    (the palette is then gbdesk's own) ask the style hints.
    """
    if not _applied:
        return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
    from PySide6.QtCore import Qt

    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def style_sheet(palette: ThemePalette) -> str:
    """The application style sheet filled with ``palette``'s colours."""
    values = {k: v for k, v in asdict(palette).items() if isinstance(v, str)}
    return Template(read_text("style.qss")).substitute(values)


def _qt_palette(palette: ThemePalette) -> QPalette:
    qp = QPalette()
    role = QPalette.ColorRole
    qp.setColor(role.Window, QColor(palette.window))
    qp.setColor(role.WindowText, QColor(palette.text))
    qp.setColor(role.Base, QColor(palette.input))
    qp.setColor(role.AlternateBase, QColor(palette.alternate))
    qp.setColor(role.Text, QColor(palette.text))
    qp.setColor(role.Button, QColor(palette.surface))
    qp.setColor(role.ButtonText, QColor(palette.text))
    qp.setColor(role.Highlight, QColor(palette.accent))
    qp.setColor(role.HighlightedText, QColor("#ffffff"))
    qp.setColor(role.ToolTipBase, QColor(palette.surface))
    qp.setColor(role.ToolTipText, QColor(palette.text))
    qp.setColor(role.PlaceholderText, QColor(palette.muted))
    qp.setColor(role.Link, QColor(palette.accent))
    qp.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor(palette.muted))
    qp.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor(palette.muted))
    qp.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor(palette.muted))
    return qp


def apply_theme(
    app: QApplication, *, dark: bool | None = None, set_style: bool = True
) -> ThemePalette:
    """Style ``app`` light or dark (the system's choice when ``dark`` is None).

    ``set_style`` False: the app was started with ``-style Fusion`` already.
    """
    global _current, _applied  # noqa: PLW0603 - the theme is process-wide
    _current = DARK if (system_prefers_dark() if dark is None else dark) else LIGHT
    _applied = True
    if set_style:
        app.setStyle("Fusion")  # the same look on every platform; the palette does the rest
    app.setPalette(_qt_palette(_current))
    app.setStyleSheet(style_sheet(_current))
    return _current


def follow_system_theme(app: QApplication) -> None:
    """Re-apply the theme whenever the system switches between light and dark."""
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
