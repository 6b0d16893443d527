"""The Runs tab's "Export GGUF" button: the selected run's student as a .gguf file, written in the background.

The same export as ``workbench export RUN --gguf --type f16|q8_0`` (engine/models/gguf_export.py). The button's
menu picks the type, a save dialog the file; the work runs on a :class:`~workbench.gui.background.jobs.Jobs`
thread and the line beside the button says what happened: the file and its size, or the one-sentence
reason and its hint (a built-in-language student has no GGUF form, for one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QMenu, QPushButton, QWidget

from workbench.errors import ConfigError, one_line
from workbench.gui import theme
from workbench.gui.background.jobs import Jobs
from workbench.gui.charts.elided_label import ElidedLabel
from workbench.gui.form.units import format_bytes

TYPES = (("f16", "f16 (half precision)"), ("q8_0", "q8_0 (8-bit, about half the size)"))


def _write(student: Path, target: Path, type_: str, name: str) -> Path:
    from workbench.engine.models.gguf_export import export_gguf

    return export_gguf(student, target, type_=type_, name=name)


class GGUFExportRow(QWidget):
    """A button with a menu of GGUF types, and a status line. ``set_run(info)`` follows the selection."""

    def __init__(self, parent: QWidget | None = None, *, ask_path=None):
        super().__init__(parent)
        self._run: Any = None  # the selected RunInfo
        self._ask_path = ask_path or self._ask_with_dialog  # tests pass a function instead of the dialog
        self._jobs: Jobs | None = None
        self._writing = False
        self.button = QPushButton("Export GGUF", self)
        menu = QMenu(self.button)
        for type_, label in TYPES:
            menu.addAction(label).triggered.connect(lambda _checked=False, t=type_: self.export(t))
        self.button.setMenu(menu)
        self.status = ElidedLabel("", self)  # a long path shortens instead of pushing the buttons apart
        self.status.setObjectName("muted")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.status)
        self.set_run(None)

    def set_run(self, info: Any) -> None:
        self._run = info
        ready = info is not None and (Path(info.path) / "student" / "config.json").is_file()
        config = getattr(info, "config", None)
        word_level = config is not None and config.teacher.source == "train" and config.data.source == "toy"
        self.button.setEnabled(ready and not word_level and not self._writing)
        if word_level:
            tip = "A student of the built-in language has a word-level tokenizer, which GGUF cannot hold"
        elif ready:
            tip = "Write the selected run's student as a .gguf file for llama.cpp, Ollama and LM Studio (Llama family)"
        else:
            tip = "Select a run whose student was written (a completed run) to export it as .gguf"
        self.button.setToolTip(tip)

    def export(self, type_: str) -> None:
        """Ask where, then write the selected run's student as ``type_`` in the background."""
        if self._run is None:
            return
        run = Path(self._run.path)
        target = self._ask_path(run / f"student-{type_}.gguf")
        if not target:
            return
        if self._jobs is None:
            self._jobs = Jobs("gguf-export", self)
        self._say(f"Writing {Path(target).name} ({type_})...", "muted")
        self._writing = True
        self.button.setEnabled(False)
        self._jobs.submit(
            "export",
            lambda _job: _write(run / "student", Path(target), type_, run.name),
            on_done=self._done,
            on_error=self._failed,
        )

    def shutdown(self) -> None:
        if self._jobs is not None:
            self._jobs.shutdown()

    def _ask_with_dialog(self, suggested: Path) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export the student as GGUF", str(suggested), "GGUF files (*.gguf)")
        return path

    def _done(self, path: Path) -> None:
        self._writing = False
        self._say(f"Wrote {path} ({format_bytes(path.stat().st_size)})", "ok")
        self.set_run(self._run)

    def _failed(self, err: BaseException) -> None:
        self._writing = False
        if isinstance(err, ConfigError):
            text = err.what + (f" ({err.hint})" if err.hint else "")
        else:
            text = f"GGUF export failed: {one_line(err)} (check the disk and the run's student/ folder)"
        self._say(text, "error")
        self.set_run(self._run)

    def _say(self, text: str, level: str) -> None:
        colour = {"ok": theme.OK_COLOR, "error": theme.ERROR_COLOR}.get(level)
        self.status.setStyleSheet(f"color: {colour};" if colour else "")
        self.status.setText(text)
        self.status.setToolTip(text)
