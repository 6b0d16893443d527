"""The help panel, "What am I looking at?" (F1): :mod:`workbench.explain`'s sections, shown as rich text.

It computes nothing: the soft-targets panel's shown prompt, position and temperature become a
:class:`~workbench.explain.Moment`, the form's distillation fields :class:`~workbench.explain.Settings`, and the
text is rebuilt from them when either changes while the panel is visible (and when it is shown again).
:meth:`HelpPanel.show_section` scrolls to one section and marks it (the "?" buttons beside the bars, the
temperature slider and the form's T² switch call it).
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QEvent, QSize, QTimer
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from workbench.config.schema import RunConfig
from workbench.explain import SECTIONS, Moment, Section, Settings, explain, moment_from_probe
from workbench.gui import theme
from workbench.gui.soft_targets.state import SoftTargetsState


def moment_of(state: SoftTargetsState) -> Moment | None:
    """What the soft-targets panel shows now (None while it shows nothing)."""
    if state.shown is None:
        return None
    return moment_from_probe(state.shown, state.position, state.temperature)


def settings_of(cfg: RunConfig) -> Settings:
    d = cfg.distill
    return Settings(temperature=d.temperature, alpha=d.alpha, t_squared=d.t_squared, divergence=d.divergence)


class HelpPanel(QWidget):
    """The sections of :func:`workbench.explain.explain` for ``moment()`` and ``settings()``, refreshed on demand."""

    def __init__(
        self,
        moment: Callable[[], Moment | None],
        settings: Callable[[], Settings],
        caption: Callable[[], str] = lambda: "",
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._moment, self._settings, self._caption = moment, settings, caption
        self._sections: list[Section] = []
        self._current: str | None = None  # the section a "?" asked for (marked)
        self._stale = True
        self.caption = QLabel("", self)
        self.caption.setObjectName("muted")
        self.caption.setWordWrap(True)
        self.browser = QTextBrowser(self)
        self.browser.setOpenLinks(True)  # the contents line's #anchors scroll within the text
        self.browser.setOpenExternalLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.caption)
        layout.addWidget(self.browser, 1)

    # -- public API ---------------------------------------------------------------------------------------------------
    @property
    def current_section(self) -> str | None:
        return self._current

    def sections(self) -> list[Section]:
        """The sections as last drawn."""
        return list(self._sections)

    def section_text(self, key: str) -> str:
        return next(s.text() for s in self._sections if s.key == key)

    def refresh(self) -> None:
        """Rebuild the text now if the panel is visible; otherwise when it is next shown."""
        if not self.isVisible():
            self._stale = True
            return
        self._draw()

    def show_section(self, key: str) -> None:
        """Mark section ``key`` and scroll it to the top of the panel."""
        if key not in SECTIONS:
            raise ValueError(f"unknown help section {key!r}; use one of {SECTIONS}")
        self._current = key
        self._draw()
        self.browser.scrollToAnchor(key)
        # again once the layout has settled: a dock that has just opened reflows the text as it takes its width
        QTimer.singleShot(0, self._scroll_to_current)

    def _scroll_to_current(self) -> None:
        if self._current is not None:
            self.browser.scrollToAnchor(self._current)

    # -- drawing ------------------------------------------------------------------------------------------------------
    def _draw(self) -> None:
        self._stale = False
        moment = self._moment()
        self._sections = explain(moment, self._settings())
        caption = self._caption() if moment is not None else ""
        self.caption.setText(caption or "No prompt on the bars yet: the numbers below fill in once there is one.")
        scroll = self.browser.verticalScrollBar().value()
        self.browser.setHtml(self._html())
        self.browser.verticalScrollBar().setValue(scroll)  # a refresh must not jump to the top

    def _html(self) -> str:
        c = theme.colors()
        contents = " · ".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in self._sections)
        parts = [f"<p style='color:{c['muted']}'>{contents}</p>"]
        for s in self._sections:
            marked = s.key == self._current
            style = f"background-color:{c['highlight']}; color:#ffffff;" if marked else ""
            parts.append(
                f"<a name='{s.key}'></a><h3 style='{style}'>{'▶ ' if marked else ''}{html.escape(s.title)}</h3>{s.html}"
            )
        css = (
            f"<style>.muted {{ color:{c['muted']}; }} th {{ color:{c['muted']}; font-weight:600; }}"
            f" a {{ color:{theme.STUDENT_COLOR}; }} td, th {{ border-bottom: 1px solid {c['border']}; }}</style>"
        )
        return css + "".join(parts)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(460, 600)  # the tables read without wrapped headings

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if self._stale:
            self._draw()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) and self._sections:
            self.refresh()
        elif event.type() == QEvent.Type.FontChange:  # presentation mode: the style sheet stops the propagation
            for child in (self.caption, self.browser):
                child.setFont(self.font())
            self.browser.document().setDefaultFont(self.font())
        super().changeEvent(event)
