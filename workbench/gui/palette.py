"""The window's colours, without Qt: what teacher, student, truth and each loss term are drawn in, and the
light and dark palettes. Pure data, so the chart series and the soft-target state (and their tests) read the
same colours as the widgets without importing PySide6; :mod:`workbench.gui.theme` applies them to Qt.
"""

from __future__ import annotations

# -- meaning colours (same in both themes; chosen to read on dark and light) ----
TEACHER_COLOR = "#f28e2b"  # orange
STUDENT_COLOR = "#4e9fe5"  # blue
TRUTH_COLOR = "#59a14f"  # green: the exact distribution of the built-in language
HARD_LABEL_COLOR = "#b07aa1"  # purple: the one-hot next token
BASELINE_COLOR = "#9c9c9c"  # grey: runs without distillation (alpha = 0)
KD_COLOR = "#e15759"  # red: the soft-target term of the loss
CE_COLOR = "#76b7b2"  # teal: the hard-label term of the loss
LR_COLOR = "#edc948"  # yellow: learning rate
HIDDEN_COLOR = "#9b6cf2"  # violet: the hidden-state matching term of the loss
ERROR_COLOR = "#e15759"
WARNING_COLOR = "#e8a33d"
OK_COLOR = "#59a14f"

# Colours for overlaid runs, in order; distinct from the meaning colours above.
OVERLAY_COLORS = ("#ff9da7", "#9d7660", "#bab0ac", "#d37295", "#a0cbe8", "#8cd17d", "#ffbe7d", "#86bcb6")

THEMES = ("dark", "light")

_PALETTES = {
    "dark": {
        "window": "#1e1f22",
        "base": "#26282c",
        "alt_base": "#2b2d31",
        "text": "#e6e6e6",
        "muted": "#9aa0a6",
        "button": "#2f3136",
        "border": "#3c3f45",
        "highlight": "#3d6fb6",
        "plot_bg": "#1a1b1e",
        "plot_fg": "#c8c8c8",
        "grid": "#34363b",
    },
    "light": {
        "window": "#f4f5f7",
        "base": "#ffffff",
        "alt_base": "#f0f1f3",
        "text": "#1f2328",
        "muted": "#5f6670",
        "button": "#e9ebee",
        "border": "#c9ced6",
        "highlight": "#2f6fcf",
        "plot_bg": "#ffffff",
        "plot_fg": "#30343a",
        "grid": "#e3e5e8",
    },
}

_current = "dark"


def set_current_theme(theme: str) -> None:
    """Record ``theme`` as the one in use (``theme.apply_theme`` calls this)."""
    global _current
    if theme not in _PALETTES:
        raise ValueError(f"unknown theme {theme!r}; use one of {THEMES}")
    _current = theme


def current_theme() -> str:
    """The name of the theme last applied ("dark" before any call)."""
    return _current


def colors(theme: str | None = None) -> dict[str, str]:
    """The UI colours of a theme (``window``, ``text``, ``muted``, ``plot_bg``, ...)."""
    return dict(_PALETTES[theme or _current])


def plot_colors(theme: str | None = None) -> tuple[str, str]:
    """(background, foreground) for pyqtgraph plots in a theme."""
    c = _PALETTES[theme or _current]
    return c["plot_bg"], c["plot_fg"]
