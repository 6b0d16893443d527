"""The soft-targets panel's replay row: a slider over the run's probed steps, Play/Pause and "Live".

It shows what the panel tells it (how many probes, which one is shown, its label) and says what the user
chose (``step_chosen(index)``, ``live_requested()``); Play steps on with a timer, ``REPLAY_INTERVAL_MS`` per
probe, and stops at the newest. The probes themselves live in :class:`~.state.SoftTargetsState`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

REPLAY_INTERVAL_MS = 250  # four probes a second: slow enough to follow one bar, fast enough for a demo


class ReplayBar(QWidget):
    """Slider, Play/Pause, the shown step's label and Live; hidden until the run has a probe."""

    step_chosen = Signal(int)  # the index in the run's probe history to show
    live_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._count, self._index = 0, 0
        self.timer = QTimer(self)
        self.timer.setInterval(REPLAY_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.play_button = QPushButton("▶ Play", self)
        self.play_button.setToolTip("Step through the run's probes, four a second, to watch the student learn")
        self.play_button.clicked.connect(self.toggle_play)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setMinimumWidth(200)
        self.slider.valueChanged.connect(self._moved)
        self.slider.sliderPressed.connect(self.stop)
        self.label = QLabel("", self)
        self.label.setStyleSheet("font-weight: 600;")
        self.live_button = QPushButton("Live", self)
        self.live_button.setToolTip("Follow the newest probe again")
        self.live_button.clicked.connect(self._live_clicked)
        self.live_button.hide()
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 0, 0, 2)
        row.addWidget(QLabel("Replay", self))
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        row.addWidget(self.live_button)
        self.hide()

    def show_history(self, count: int, index: int | None, label: str, *, offer_live: bool) -> None:
        """``count`` probes, the one at ``index`` shown (None: none), ``offer_live`` when moved back on a live run."""
        self._count, self._index = count, index or 0
        self.setVisible(count > 0)
        self.play_button.setEnabled(count > 1)
        self.slider.setEnabled(count > 1)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(count - 1, 0))
        self.slider.setValue(self._index)
        self.slider.blockSignals(False)
        self.slider.setToolTip(
            f"Probe {self._index + 1} of {count}: drag to see the predictions as they were at that step"
        )
        self.label.setText(label if count else "")
        self.live_button.setVisible(offer_live)

    @Slot()
    def toggle_play(self) -> None:
        """Play from the shown step (from the first when at the end), or pause."""
        if self.timer.isActive():
            self.stop()
            return
        if self._count < 2:
            return
        if self._index == self._count - 1:
            self.step_chosen.emit(0)
        self.timer.start()
        self.play_button.setText("⏸ Pause")

    @Slot()
    def stop(self) -> None:
        self.timer.stop()
        self.play_button.setText("▶ Play")

    @Slot()
    def _tick(self) -> None:
        """One step on; playing stops at the newest probe (and a live run is followed from there)."""
        last = self._count - 1
        if self._index >= last:
            self.stop()
            return
        self.step_chosen.emit(self._index + 1)
        if self._index >= last:
            self.stop()

    @Slot(int)
    def _moved(self, index: int) -> None:
        if index != self._index:
            self.step_chosen.emit(index)

    @Slot()
    def _live_clicked(self) -> None:
        self.stop()
        self.live_requested.emit()
