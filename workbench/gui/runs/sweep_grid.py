"""A sweep's results at a glance: a heatmap for two axes, lines for one, filled in live while it runs.

:class:`SweepGrid` reads a sweep folder (``workbench.sweep.read_sweep``) and shows one final metric of every cell:
two axes as a table of coloured cells (rows: the first axis, columns: the second), one axis as a plot of the
metric against the value (a choice field such as ``distill.divergence`` as evenly spaced names) with a row of
cells under it. The best finished cell has a star and a border; cells not finished say so (queued, running,
failed, ...); hard-label baselines are a reference row, column or dashed line. While the sweep is not complete
the folder is polled every second, and read again only when a file in it changed. A click on a cell that has a
run folder (on its point in the one-axis plot, or "Show run" for the selected cell) emits ``run_requested(run
folder)``: the window shows that run (its curves, its soft targets; a running cell live). Arrow keys only select.

:class:`~workbench.gui.runs.sweep_window.SweepGridWindow` is the window the Runs tab opens around it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QRect, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.gui import theme
from workbench.gui.runs.sweep_cells import (
    METRIC_KEYS,
    METRICS,
    Metric,
    best_cell,
    csv_text,
    grid_layout,
    has_run,
    metric_value,
)
from workbench.gui.runs.sweep_lines import SweepLines
from workbench.sweep import SWEEP_FILE, value_text
from workbench.sweep_folder import CellInfo, SweepInfo, read_sweep

STATUS_TEXT = {"pending": "queued", "running": "running…"}
STATUS_COLORS = {
    "running": theme.STUDENT_COLOR,
    "failed": theme.ERROR_COLOR,
    "stopped": theme.WARNING_COLOR,
    "interrupted": theme.WARNING_COLOR,
    "cancelled": theme.BASELINE_COLOR,
}
CELL_ROLE = Qt.ItemDataRole.UserRole  # the CellInfo's run folder (str)
BEST_ROLE = Qt.ItemDataRole.UserRole + 1
STAR = "★ "
HINT = "Click a cell to show its run in the main window: its curves and its soft targets (a running one live)."


class _BestDelegate(QStyledItemDelegate):
    """Draws a cell in its own colour even when selected (the selection is an outline), and a thick border round
    the best one."""

    def paint(self, painter: QPainter, option: Any, index: Any) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        super().paint(painter, plain, index)
        painter.save()
        if selected:
            pen = QPen(QColor(theme.colors()["highlight"]))
            pen.setWidth(2)
            painter.setPen(pen)
            painter.drawRect(QRect(option.rect).adjusted(1, 1, -1, -1))
        if index.data(BEST_ROLE):
            pen = QPen(QColor(theme.colors()["text"]))
            pen.setWidth(3)
            painter.setPen(pen)
            painter.drawRect(QRect(option.rect).adjusted(4, 4, -4, -4))
        painter.restore()


class SweepGrid(QWidget):
    """One metric of every cell of a sweep folder; ``run_requested(str)`` carries a cell's run folder."""

    run_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None, refresh_ms: int = 1000):
        super().__init__(parent)
        self.info: SweepInfo | None = None
        self._path: Path | None = None
        self._signature: tuple = ()
        self._metric = METRICS[0]
        self.best: CellInfo | None = None
        self._range = (0.0, 0.0)  # the best and worst value of the distilled cells
        self.items: dict[str, QTableWidgetItem] = {}  # cell id -> its item (baselines too)

        self.title = QLabel(self)
        self.title.setFont(_font(self, 1.35, bold=True))
        self.subtitle = QLabel(self)
        self.subtitle.setObjectName("muted")
        self.metric_box = QComboBox(self)
        self.metric_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # its font grows too
        for m in METRICS:
            self.metric_box.addItem(m.title, m.key)
        self.metric_box.setToolTip("The final metric shown in the cells (from each run's summary.json)")
        self.metric_box.currentIndexChanged.connect(self._on_metric_changed)
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        top.addLayout(titles, 1)
        self.metric_label = QLabel("Metric", self)
        self.metric_label.setObjectName("muted")
        top.addWidget(self.metric_label)
        top.addWidget(self.metric_box)

        self.plot: SweepLines | None = None  # the lines of a one-axis sweep (made when needed)
        self.table = QTableWidget(0, 0, self)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setItemDelegate(_BestDelegate(self.table))
        self.table.setShowGrid(True)
        self.table.setWordWrap(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setMinimumSectionSize(54)
        self.table.setFont(_font(self, 1.15))
        self.table.itemClicked.connect(self._on_clicked)
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.detail = QLabel(HINT, self)
        self.detail.setObjectName("muted")
        self.detail.setWordWrap(True)
        self.open_button = QPushButton("Show run", self)
        self.open_button.setToolTip(
            "Show the selected cell's run in the main window: its loss curves, and its models and probes in the "
            "soft-targets panel (or click the cell)"
        )
        self.open_button.clicked.connect(self._on_open)
        bottom = QHBoxLayout()
        bottom.addWidget(self.detail, 1)
        bottom.addWidget(self.open_button)

        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addLayout(top)
        layout.addLayout(self.body, 1)
        layout.addLayout(bottom)
        self.body.addWidget(self.table, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.poll)
        self._apply_fonts()
        self._update_open_button()

    # -- public ---------------------------------------------------------------
    def set_sweep(self, path: str | Path) -> None:
        """Show the sweep folder ``path`` and follow it while it is not complete."""
        self._path = Path(path)
        self._signature = ()
        if self.plot is not None:
            self.plot.setParent(None)
            self.plot = None
        self.poll()

    def current_metric(self) -> Metric:
        return self._metric

    def set_metric(self, key: str) -> None:
        self.metric_box.setCurrentIndex(METRIC_KEYS.index(key))

    def cell_text(self, cell_id: str) -> str:
        return self.items[cell_id].text()

    def complete(self) -> bool:
        return self.info is not None and self.info.status == "completed"

    def csv_text(self) -> str:
        return csv_text(self.info) if self.info is not None else ""

    def save_csv(self, path: str | Path) -> None:
        Path(path).write_text(self.csv_text(), encoding="utf-8")

    def start_following(self) -> None:
        if self._path is not None and not self.complete():
            self.timer.start()

    def stop_following(self) -> None:
        self.timer.stop()

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            if self.plot is not None:
                self.plot.apply_palette()
            self._rebuild()  # the cells' colours are the theme's
        elif event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self._apply_fonts()  # presentation mode: the title, the cells, the headers and the plot grow with it
            self._rebuild()
        super().changeEvent(event)

    def _apply_fonts(self) -> None:
        """Title, cells and headers at their share of the widget's font, and the one-axis plot's text."""
        self.title.setFont(_font(self, 1.35, bold=True))
        for widget in (self.subtitle, self.metric_label, self.metric_box, self.detail, self.open_button):
            widget.setFont(_font(self, 1.0))  # a style sheet stops the propagation: handed on here
        longest = max(QFontMetrics(self.metric_box.font()).horizontalAdvance(m.title) for m in METRICS)
        self.metric_box.setMinimumWidth(longest + 44)  # the arrow and the frame
        self.table.setFont(_font(self, 1.15))
        for header in (self.table.horizontalHeader(), self.table.verticalHeader()):
            header.setFont(_font(self, 1.15))  # the axis values, as large as the cells
        self.table.verticalHeader().setMinimumSectionSize(int(QFontMetrics(self.table.font()).height() * 2.6))
        if self.plot is not None:
            self.plot.apply_font(self.font())

    # -- reading ----------------------------------------------------------------
    @Slot()
    def poll(self) -> None:
        """Read the sweep again if a file it shows changed (sweep.json, a cell's status or summary)."""
        if self._path is None:
            return
        signature = self._files_signature()
        if signature != self._signature or self.info is None:
            try:
                info = read_sweep(self._path)
            except Exception:  # noqa: BLE001 - being rewritten or removed: try again on the next tick
                info = None
            if info is not None:
                self.info = info
                self._signature = self._files_signature()
                self._rebuild()
        if self.complete():
            self.timer.stop()
        elif not self.timer.isActive():
            self.timer.start()

    def _files_signature(self) -> tuple:
        assert self._path is not None
        files = [self._path / SWEEP_FILE]
        for cell in self.info.cells if self.info is not None else []:
            files += [cell.run_dir / "status.json", cell.run_dir / "summary.json", cell.run_dir / "config.toml"]
        stamps = []
        for f in files:
            try:
                st = os.stat(f)
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        alive = None
        if self.info is not None and self.info.status == "running":
            from workbench.run_folder import _pid_alive

            alive = _pid_alive(self.info.pid)  # a killed sweep changes no file
        return (tuple(stamps), alive)

    # -- drawing ----------------------------------------------------------------
    @Slot(int)
    def _on_metric_changed(self, index: int) -> None:
        self._metric = METRICS[index]
        self._rebuild()

    def _rebuild(self) -> None:
        info = self.info
        if info is None:
            return
        selected = self._selected_cell()
        cells = [c for c in info.cells if c.kind == "cell"]
        done = sum(c.status == "completed" for c in info.cells)
        shape = "×".join(str(len(a.values)) for a in info.axes)
        shape += " values" if len(info.axes) == 1 else ""
        self.title.setText(f"Sweep {info.name}")
        baselines = [c for c in info.cells if c.kind == "baseline"]
        extra = f" + {len(baselines)} baseline{'s' if len(baselines) > 1 else ''}" if baselines else ""
        self.subtitle.setText(
            f"{' × '.join(a.field for a in info.axes)}   ·   {shape}{extra}   ·   {done}/{len(info.cells)} done"
            f"   ·   {info.status}   ·   {info.path.name}"
        )
        self.best = best_cell(cells, self._metric)
        finished = [v for v in (metric_value(c, self._metric.key) for c in cells) if v is not None]  # not baselines
        self._range = (min(finished), max(finished)) if finished else (0.0, 0.0)
        self.items = {}
        self._fill(info)
        if len(info.axes) == 1:
            if self.plot is None:
                self.plot = SweepLines(self)
                self.plot.apply_font(self.font())
                self.plot.cell_clicked.connect(self._on_point_clicked)
                self.body.insertWidget(0, self.plot, 1)
            self.plot.draw(info.axes[0], cells, baselines, self._metric, self.best)
        if selected is not None and selected in self.items:
            self.table.setCurrentItem(self.items[selected])
        self._on_selection()

    def hint(self) -> str:
        """What the colours mean (best ... worst value of the distilled cells) and what a click does."""
        lo, hi = self._range
        if self.best is None:
            return HINT
        best, worst = (lo, hi) if self._metric.lower_is_better else (hi, lo)
        scale = f"Brighter is better: {self._metric.text(best)} ★ … {self._metric.text(worst)}. "
        return scale + HINT

    def _fill(self, info: SweepInfo) -> None:
        where = grid_layout(info)
        self.table.clearSpans()
        self.table.clear()
        self.table.setRowCount(len(where.row_labels))
        self.table.setColumnCount(len(where.col_labels))
        self.table.setHorizontalHeaderLabels(where.col_labels)
        self.table.setVerticalHeaderLabels(where.row_labels)
        header_font = self.table.horizontalHeader().font()
        for i in range(len(where.col_labels)):
            self.table.horizontalHeaderItem(i).setFont(header_font)  # an item's own font wins over the header's
        for i in range(len(where.row_labels)):
            self.table.verticalHeaderItem(i).setFont(header_font)
        for r in range(len(where.row_labels)):
            for c in range(len(where.col_labels)):
                blank = QTableWidgetItem("")
                blank.setFlags(Qt.ItemFlag.NoItemFlags)
                self.table.setItem(r, c, blank)
        for r, c, rows, cols in where.spans:
            self.table.setSpan(r, c, rows, cols)
        for cell in info.cells:
            if cell.id in where.places:
                self.table.setItem(*where.places[cell.id], self._item(cell))
        n_rows = len(where.row_labels)
        row = self.table.verticalHeader().minimumSectionSize() + 6  # two lines of the cells' font, and a margin
        if len(info.axes) == 1:  # under the plot: only as tall as its rows
            self.table.setMinimumHeight(row * n_rows + 36)
            self.table.setMaximumHeight((row + 4) * n_rows + 40)
        else:
            self.table.setMinimumHeight(min(row * n_rows + 40, 520))
            self.table.setMaximumHeight(16777215)

    def _item(self, cell: CellInfo) -> QTableWidgetItem:
        value = metric_value(cell, self._metric.key)
        is_best = self.best is not None and cell.id == self.best.id
        lines = []
        if value is not None:
            lines.append((STAR if is_best else "") + self._metric.text(value))
        elif cell.status == "completed":
            lines.append("–")  # finished without this metric (not measured for this data)
        if cell.status != "completed":
            lines.append(STATUS_TEXT.get(cell.status, cell.status))
        item = QTableWidgetItem("\n".join(lines))
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setData(CELL_ROLE, str(cell.run_dir))
        item.setData(BEST_ROLE, is_best)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        c = theme.colors()
        if value is not None:
            background = self._color(value)
            item.setBackground(background)
            luminance = 0.299 * background.redF() + 0.587 * background.greenF() + 0.114 * background.blueF()
            item.setForeground(QColor("#111111" if luminance > 0.5 else "#f5f5f5"))
            if cell.kind == "baseline":
                item.setBackground(QColor(c["alt_base"]))
                item.setForeground(QColor(theme.BASELINE_COLOR))
        else:
            item.setBackground(QColor(c["alt_base"]))
            item.setForeground(QColor(STATUS_COLORS.get(cell.status, c["muted"])))
        if is_best:
            font = QFont(self.table.font())
            font.setBold(True)
            item.setFont(font)
        metrics = [f"{m.label}: {m.text(v)}" for m in METRICS if (v := metric_value(cell, m.key)) is not None]
        values = ", ".join(f"{k} = {value_text(v)}" for k, v in cell.values.items())
        tip = [f"{cell.id} ({'hard-label baseline' if cell.kind == 'baseline' else 'distilled'})", values, cell.status]
        item.setToolTip("\n".join(tip + metrics + (["best " + self._metric.label] if is_best else [])))
        self.items[cell.id] = item
        return item

    def _goodness(self, value: float) -> float:
        lo, hi = self._range
        if hi - lo <= 1e-12:
            return 1.0
        g = (value - lo) / (hi - lo)
        return 1.0 - g if self._metric.lower_is_better else g

    def _color(self, value: float) -> QColor:
        import pyqtgraph as pg

        cmap = pg.colormap.get("viridis")
        return cmap.mapToQColor(0.15 + 0.85 * self._goodness(value))  # the darkest purple reads badly as a cell

    # -- reactions -----------------------------------------------------------------
    def _selected_cell(self) -> str | None:
        item = self.table.currentItem()
        if item is None or not item.isSelected():
            return None
        run_dir = item.data(CELL_ROLE)
        for cell_id, it in self.items.items():
            if it.data(CELL_ROLE) == run_dir:
                return cell_id
        return None

    def _cell(self, cell_id: str | None) -> CellInfo | None:
        if self.info is None or cell_id is None:
            return None
        return next((c for c in self.info.cells if c.id == cell_id), None)

    @Slot()
    def _on_selection(self) -> None:
        cell = self._cell(self._selected_cell())
        if cell is not None:
            self.detail.setText(self.items[cell.id].toolTip().replace("\n", "   ·   "))
        else:
            self.detail.setText(self.hint())
        self._update_open_button()

    def _update_open_button(self) -> None:
        cell = self._cell(self._selected_cell())
        self.open_button.setEnabled(cell is not None and has_run(cell))

    @Slot(QTableWidgetItem)
    def _on_clicked(self, item: QTableWidgetItem) -> None:
        run_dir = item.data(CELL_ROLE)
        if run_dir and (Path(run_dir) / "config.toml").is_file():  # a queued cell has no run yet
            self.run_requested.emit(str(run_dir))

    @Slot()
    def _on_open(self) -> None:
        cell = self._cell(self._selected_cell())
        if cell is not None and has_run(cell):
            self.run_requested.emit(str(cell.run_dir))

    @Slot(str)
    def _on_point_clicked(self, cell_id: str) -> None:
        if cell_id in self.items:
            self.table.setCurrentItem(self.items[cell_id])
            self._on_clicked(self.items[cell_id])


def _font(widget: QWidget, scale: float, bold: bool = False) -> QFont:
    font = QFont(widget.font())
    size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(size * scale)
    font.setBold(bold)
    return font
