"""Colours and the light/dark look of the window, in one place.

Every widget that draws teacher, student or truth uses the constants here, so a
colour means the same thing on every chart and every bar. ``apply_theme`` sets
the application palette, a small style sheet, and pyqtgraph's default
background and foreground (plots created afterwards pick them up; existing
plots are updated by their owners through :func:`plot_colors`).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from workbench.gui import palette as _palette
from workbench.gui.palette import (  # noqa: F401 - the widgets read the colours through theme
    BASELINE_COLOR,
    CE_COLOR,
    ERROR_COLOR,
    HARD_LABEL_COLOR,
    HIDDEN_COLOR,
    KD_COLOR,
    LR_COLOR,
    OK_COLOR,
    OVERLAY_COLORS,
    STUDENT_COLOR,
    TEACHER_COLOR,
    THEMES,
    TRUTH_COLOR,
    WARNING_COLOR,
    colors,
    current_theme,
    plot_colors,
)


def apply_theme(app: QApplication, theme: str = "dark", font_scale: float = 1.0) -> None:
    """Apply a palette, a style sheet and pyqtgraph defaults for ``theme``.

    ``font_scale`` enlarges every font (presentation mode uses ~1.4).
    """
    _palette.set_current_theme(theme)
    # Restyling every widget is slow (seconds with the charts); do only what changed.
    if not app.property("_wb_fusion"):
        app.setStyle("Fusion")  # the native styles ignore parts of the palette
        app.setProperty("_wb_fusion", True)
    font = app.font()
    base_size = app.property("_wb_base_point_size")
    if base_size is None:
        base_size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
        app.setProperty("_wb_base_point_size", base_size)
    if app.property("_wb_theme") != theme:
        app.setProperty("_wb_theme", theme)
        # The style sheet fixes the font every widget has when it is applied (menus, toolbars and docks keep
        # it afterwards): apply it at the base size, so a theme switched in presentation mode leaves them at
        # their normal size when presentation mode ends. The panels are scaled by the window itself.
        if abs(font.pointSizeF() - float(base_size)) > 1e-6:
            font.setPointSizeF(float(base_size))
            app.setFont(font)
        _apply_colors(app, _palette.colors(theme))
    size = float(base_size) * font_scale
    if abs(font.pointSizeF() - size) > 1e-6:
        font.setPointSizeF(size)
        app.setFont(font)


def _apply_colors(app: QApplication, c: dict[str, str]) -> None:
    palette = QPalette()
    role = QPalette.ColorRole
    palette.setColor(role.Window, QColor(c["window"]))
    palette.setColor(role.WindowText, QColor(c["text"]))
    palette.setColor(role.Base, QColor(c["base"]))
    palette.setColor(role.AlternateBase, QColor(c["alt_base"]))
    palette.setColor(role.Text, QColor(c["text"]))
    palette.setColor(role.Button, QColor(c["button"]))
    palette.setColor(role.ButtonText, QColor(c["text"]))
    palette.setColor(role.ToolTipBase, QColor(c["base"]))
    palette.setColor(role.ToolTipText, QColor(c["text"]))
    palette.setColor(role.Highlight, QColor(c["highlight"]))
    palette.setColor(role.HighlightedText, QColor("#ffffff"))
    palette.setColor(role.PlaceholderText, QColor(c["muted"]))
    palette.setColor(role.Link, QColor(c["highlight"]))
    palette.setColor(role.Mid, QColor(c["border"]))
    palette.setColor(role.Dark, QColor(c["border"]))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.Text, role.ButtonText, role.WindowText):
        palette.setColor(disabled, r, QColor(c["muted"]))
    app.setPalette(palette)
    app.setStyleSheet(_style_sheet(c))
    try:
        import pyqtgraph as pg

        pg.setConfigOptions(background=c["plot_bg"], foreground=c["plot_fg"])
    except ImportError:  # pragma: no cover - pyqtgraph is a dependency
        pass


def _style_sheet(c: dict[str, str]) -> str:
    return f"""
QToolTip {{ color: {c["text"]}; background: {c["base"]}; border: 1px solid {c["border"]}; padding: 4px; }}
QGroupBox {{ border: 1px solid {c["border"]}; border-radius: 6px; margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {c["muted"]}; }}
QTabWidget::pane {{ border: 1px solid {c["border"]}; border-radius: 4px; top: -1px; }}
QTabBar::tab {{ padding: 6px 14px; border: 1px solid transparent; border-bottom: none; color: {c["muted"]}; }}
QTabBar::tab:selected {{ color: {c["text"]}; border-color: {c["border"]}; border-top-left-radius: 4px;
    border-top-right-radius: 4px; background: {c["base"]}; }}
QPushButton {{ padding: 5px 12px; border: 1px solid {c["border"]}; border-radius: 4px; background: {c["button"]}; }}
QPushButton:hover {{ border-color: {c["highlight"]}; }}
QPushButton:disabled {{ color: {c["muted"]}; }}
QToolBar {{ spacing: 4px; padding: 3px; border: none; }}
QToolButton {{ padding: 4px 10px; border: 1px solid transparent; border-radius: 4px; }}
QToolButton:hover {{ border-color: {c["border"]}; }}
QToolButton:disabled {{ color: {c["muted"]}; }}
QToolButton#primary {{ background: {c["highlight"]}; color: white; font-weight: 600; }}
QToolButton#primary:disabled {{ background: {c["button"]}; color: {c["muted"]}; }}
QPushButton#primary {{ background: {c["highlight"]}; color: white; border-color: {c["highlight"]}; font-weight: 600; }}
QPushButton#primary:disabled {{ background: {c["button"]}; color: {c["muted"]}; border-color: {c["border"]}; }}
QProgressBar {{ border: 1px solid {c["border"]}; border-radius: 4px; text-align: center; background: {c["base"]};
    min-height: 18px; }}
QProgressBar::chunk {{ background: {c["highlight"]}; border-radius: 3px; }}
QLabel#muted {{ color: {c["muted"]}; }}
QFrame#banner {{ border: 1px solid {ERROR_COLOR}; border-radius: 6px; background: {c["alt_base"]}; }}
QFrame#banner[level="info"] {{ border-color: {c["highlight"]}; }}
QFrame#banner[level="ok"] {{ border-color: {OK_COLOR}; }}
QPlainTextEdit, QTextEdit, QTableWidget, QTreeWidget {{ border: 1px solid {c["border"]}; border-radius: 4px; }}
QHeaderView::section {{ background: {c["alt_base"]}; color: {c["muted"]}; border: none;
    border-bottom: 1px solid {c["border"]}; padding: 4px 6px; }}
QSplitter::handle {{ background: {c["window"]}; }}
QStatusBar {{ color: {c["muted"]}; }}
"""
