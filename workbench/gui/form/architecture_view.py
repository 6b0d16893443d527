"""The architecture view: the teacher and the student side by side, block by block.

It draws the :class:`workbench.engine.plan.Plan` of the form's configuration (``update_plan(plan)``):
embeddings, each layer (attention and MLP as bars scaled to the largest layer), the final norm and
the head; for a derived student, which teacher layers it keeps, with connectors. It computes nothing
on the GUI thread: its "Measure importance" button runs :func:`workbench.engine.importance.measure_teacher`
on a :class:`~workbench.gui.background.jobs.Jobs` thread (a loaded teacher only: one trained here does not
exist before its run), and the KL of skipping each teacher layer is drawn as a bar beside that layer. Teacher
and student keep the colours of :mod:`workbench.gui.theme`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Slot
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from workbench.errors import one_line
from workbench.gui import theme
from workbench.gui.background.jobs import Jobs
from workbench.gui.form.units import format_count

ROW_H = 20.0  # one transformer layer
ROW_GAP = 3.0
BIG_ROW_H = 26.0  # embeddings and head
NORM_H = 18.0
TOP = 54.0  # header and legend
BAR_W = 64.0  # the importance bars left of the teacher's layers, once measured


class _ArchCanvas(QWidget):
    """Custom-painted teacher and student columns with connectors for the kept layers."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plan: Any = None
        self.importance: dict | None = None  # importance.measure_teacher's answer for the teacher shown
        self._hits: list[tuple[QRectF, str]] = []
        self.setMouseTracking(True)

    # geometry ---------------------------------------------------------------------
    def _layers(self, blocks: list[dict]) -> list[dict]:
        return [b for b in blocks if b["name"].startswith("layer ")]

    def _block(self, blocks: list[dict], name: str) -> dict | None:
        return next((b for b in blocks if b["name"] == name), None)

    def needed_height(self) -> int:
        if self.plan is None:
            return 120
        n = max(len(self._layers(self.plan.teacher_blocks)), len(self._layers(self.plan.student_blocks)), 1)
        return int(TOP + BIG_ROW_H + 10 + n * (ROW_H + ROW_GAP) + 10 + NORM_H + 6 + BIG_ROW_H + 16)

    def set_plan(self, plan: Any) -> None:
        self.plan = plan
        self.setMinimumHeight(self.needed_height())
        self.update()

    def event(self, event) -> bool:  # noqa: D102 - Qt override (tooltips per block)
        if event.type() == QEvent.Type.ToolTip:
            pos = QPointF(event.pos())
            text = next((t for rect, t in self._hits if rect.contains(pos)), "")
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    # painting -----------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = theme.colors()
        painter.fillRect(self.rect(), QColor(c["base"]))
        self._hits = []
        plan = self.plan
        if plan is None or not plan.teacher_blocks:
            painter.setPen(QColor(c["muted"]))
            message = (
                "\n".join(e.line for e in plan.errors[:2])
                if plan is not None and plan.errors
                else "The architecture appears when the teacher is known."
            )
            painter.drawText(
                self.rect().adjusted(16, 16, -16, -16), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, message
            )
            return
        width = self.width()
        t_layers, s_layers = self._layers(plan.teacher_blocks), self._layers(plan.student_blocks)
        measured = self.importance if self.importance and len(self.importance["layers"]) == len(t_layers) else None
        bars = BAR_W if measured else 0.0
        gap = max(44.0, min(110.0, width * 0.16))
        col_w = (width - 24 - gap - bars) / 2
        tx = 12.0 + bars
        sx = tx + col_w + gap
        scale = max([b["params"] for b in t_layers + s_layers] + [1])
        ids = self._kept_ids(measured)
        derived = bool(ids) or bool(getattr(plan, "kept_by_importance", 0))

        self._header(painter, tx, col_w, "Teacher", plan.teacher_params, theme.TEACHER_COLOR, c)
        if plan.student_blocks:
            self._header(painter, sx, col_w, "Student", plan.student_params, theme.STUDENT_COLOR, c)
        self._legend(painter, width, c)

        y = TOP
        emb_t = QRectF(tx, y, col_w, BIG_ROW_H)
        emb_s = QRectF(sx, y, col_w, BIG_ROW_H)
        layers_top = y + BIG_ROW_H + 10
        n = max(len(t_layers), len(s_layers), 1)
        span = n * (ROW_H + ROW_GAP) - ROW_GAP
        t_rects = self._stack(tx, col_w, layers_top, span, len(t_layers))
        s_rects = self._stack(sx, col_w, layers_top, span, len(s_layers))
        y = layers_top + span + 10
        norm_t, norm_s = QRectF(tx, y, col_w, NORM_H), QRectF(sx, y, col_w, NORM_H)
        y += NORM_H + 6
        head_t, head_s = QRectF(tx, y, col_w, BIG_ROW_H), QRectF(sx, y, col_w, BIG_ROW_H)

        # connectors first, so blocks sit on top of them
        if plan.student_blocks:
            if derived:
                copied = QColor(c["muted"])
                copied.setAlphaF(0.7)
                for a, b in ((emb_t, emb_s), (norm_t, norm_s), (head_t, head_s)):
                    self._connector(painter, a, b, copied, 1.2, dashed=True)
                link = QColor(theme.STUDENT_COLOR)
                link.setAlphaF(0.75)
                for j, teacher_index in enumerate(ids):
                    if j < len(s_rects) and 0 <= teacher_index < len(t_rects):
                        self._connector(painter, t_rects[teacher_index], s_rects[j], link, 1.6)
        kept = set(ids)
        for block, rect in (
            (self._block(plan.teacher_blocks, "embeddings"), emb_t),
            (self._block(plan.teacher_blocks, "final norm"), norm_t),
            (self._block(plan.teacher_blocks, "head"), head_t),
        ):
            self._plain_block(painter, rect, block, theme.TEACHER_COLOR, c)
        if measured:
            self._importance_bars(painter, measured, t_rects, c)
        for i, (block, rect) in enumerate(zip(t_layers, t_rects)):
            state = "kept" if (not ids or i in kept) else "dropped"
            self._layer_block(painter, rect, block, f"L{i}", theme.TEACHER_COLOR, scale, state, c)
        if plan.student_blocks:
            for block, rect in (
                (self._block(plan.student_blocks, "embeddings"), emb_s),
                (self._block(plan.student_blocks, "final norm"), norm_s),
                (self._block(plan.student_blocks, "head"), head_s),
            ):
                self._plain_block(painter, rect, block, theme.STUDENT_COLOR, c, copied=derived)
            for j, (block, rect) in enumerate(zip(s_layers, s_rects)):
                source = f" \u2190 T{ids[j]}" if j < len(ids) else ""
                self._layer_block(painter, rect, block, f"L{j}", theme.STUDENT_COLOR, scale, "kept", c, source=source)

    def _kept_ids(self, measured: dict | None) -> list[int]:
        """The teacher layer of each student layer: the plan's, or for ``keep = "importance"`` the measured
        choice once the teacher has been measured (empty until then: the run chooses at its start)."""
        plan = self.plan
        if plan.kept_layer_ids:
            return list(plan.kept_layer_ids)
        wanted = getattr(plan, "kept_by_importance", 0)
        if wanted and measured and len(measured.get("by_importance") or []) == wanted:
            if len(measured["layers"]) == len(self._layers(plan.teacher_blocks)):
                return list(measured["by_importance"])
        return []

    def _importance_bars(self, painter: QPainter, measured: dict, rects: list[QRectF], c: dict) -> None:
        """Beside each teacher layer: the KL of skipping it (bar, longest = the largest) and its rank."""
        rows = measured["layers"]
        top = max([r["kl"] for r in rows] + [1e-12])
        font = painter.font()
        small = QFont(font)
        small.setPointSizeF(font.pointSizeF() * 0.8)
        painter.setFont(small)
        painter.setPen(QColor(c["muted"]))
        if rects:
            painter.drawText(
                QRectF(4, rects[0].top() - 16, BAR_W, 14),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                "KL skipped",
            )
        chosen = set(measured.get("by_importance") or [])
        for row, rect in zip(rows, rects):
            room = BAR_W - 26
            length = max(1.0, room * row["kl"] / top)
            bar = QRectF(rect.left() - 6 - length, rect.center().y() - 4, length, 8)
            color = QColor(theme.TEACHER_COLOR)
            color.setAlphaF(1.0 if row["layer"] in chosen else 0.45)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(bar, 2, 2)
            painter.setPen(QColor(c["muted"]))
            painter.drawText(
                QRectF(2, rect.top(), 20, rect.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"#{row['rank']}",
            )
            hit = QRectF(2, rect.top(), BAR_W + 10, rect.height())
            kept = " – kept by importance" if row["layer"] in chosen else ""
            self._hits.append(
                (
                    hit,
                    f"teacher layer {row['layer']}{kept}\nKL when skipped {row['kl']:.4g}\n"
                    f"1 - cos(in, out) {row['cosine']:.4f}\nrank {row['rank']} of {len(rows)}",
                )
            )
        painter.setFont(font)

    def _stack(self, x: float, w: float, top: float, span: float, count: int) -> list[QRectF]:
        """``count`` layer rows spread over ``span`` (a shorter model's rows spread out so both columns line up)."""
        if count == 0:
            return []
        if count == 1:
            return [QRectF(x, top + (span - ROW_H) / 2, w, ROW_H)]
        step = (span - ROW_H) / (count - 1)
        return [QRectF(x, top + i * step, w, ROW_H) for i in range(count)]

    def _header(self, painter: QPainter, x: float, w: float, title: str, params: int, color: str, c: dict) -> None:
        font = painter.font()
        bold = QFont(font)
        bold.setBold(True)
        bold.setPointSizeF(font.pointSizeF() * 1.1)
        painter.setFont(bold)
        painter.setPen(QColor(color))
        painter.drawText(QRectF(x, 6, w, 22), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        painter.setFont(font)
        painter.setPen(QColor(c["muted"]))
        painter.drawText(
            QRectF(x, 6, w, 22),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"{format_count(params)} params" if params else "",
        )

    def _legend(self, painter: QPainter, width: float, c: dict) -> None:
        font = painter.font()
        small = QFont(font)
        small.setPointSizeF(font.pointSizeF() * 0.85)
        painter.setFont(small)
        x = 12.0
        for label, alpha in (("attention", 0.55), ("MLP", 1.0)):
            color = QColor(c["text"])
            color.setAlphaF(alpha * 0.8)
            painter.fillRect(QRectF(x, 35, 14, 7), color)
            painter.setPen(QColor(c["muted"]))
            painter.drawText(
                QRectF(x + 18, 29, 80, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label
            )
            x += 18 + painter.fontMetrics().horizontalAdvance(label) + 14
        ids = self._kept_ids(self.importance)
        by_importance = getattr(self.plan, "kept_by_importance", 0)
        if ids:
            pen = QPen(QColor(theme.STUDENT_COLOR), 1.6)
            painter.setPen(pen)
            painter.drawLine(QPointF(x, 38.5), QPointF(x + 16, 38.5))
            painter.setPen(QColor(c["muted"]))
            painter.drawText(
                QRectF(x + 20, 29, width - x - 30, 18),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"kept layer ({len(ids)} of {len(self._layers(self.plan.teacher_blocks))}"
                + (", by importance as measured)" if by_importance else ")"),
            )
        elif by_importance:
            painter.setPen(QColor(c["muted"]))
            painter.drawText(
                QRectF(x, 29, width - x - 12, 18),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"keeps {by_importance} of {len(self._layers(self.plan.teacher_blocks))} layers, "
                "chosen by importance at start",
            )
        elif self.plan.student_blocks:
            painter.setPen(QColor(c["muted"]))
            painter.drawText(
                QRectF(x, 29, width - x - 12, 18),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                "student: a new model, trained from random weights",
            )
        painter.setFont(font)

    def _connector(
        self, painter: QPainter, a: QRectF, b: QRectF, color: QColor, width: float, dashed: bool = False
    ) -> None:
        start, end = QPointF(a.right(), a.center().y()), QPointF(b.left(), b.center().y())
        path = QPainterPath(start)
        dx = (end.x() - start.x()) * 0.5
        path.cubicTo(QPointF(start.x() + dx, start.y()), QPointF(end.x() - dx, end.y()), end)
        pen = QPen(color, width)
        if dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)

    def _plain_block(
        self, painter: QPainter, rect: QRectF, block: dict | None, color: str, c: dict, copied: bool = False
    ) -> None:
        if block is None:
            return
        fill = QColor(color)
        fill.setAlphaF(0.14)
        painter.setPen(QPen(QColor(color), 1.0))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 4, 4)
        name = block["name"]
        if name == "head" and block.get("tied"):
            detail = "tied to embeddings"
        elif copied:
            detail = f"copied \u00b7 {format_count(block['params'])}"
        else:
            detail = format_count(block["params"])
        painter.setPen(QColor(c["text"]))
        inner = rect.adjusted(8, 0, -8, 0)
        title = name.capitalize()
        painter.drawText(inner, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        painter.setPen(QColor(c["muted"]))
        room = int(inner.width() - painter.fontMetrics().horizontalAdvance(title) - 10)
        detail = painter.fontMetrics().elidedText(detail, Qt.TextElideMode.ElideRight, max(room, 0))
        painter.drawText(inner, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, detail)
        tip = f"{name}: {block['params']:,} parameters"
        if name == "head" and block.get("tied"):
            tip = "head: shares its weight with the embeddings (0 extra parameters)"
        if copied:
            tip += "\ncopied from the teacher"
        self._hits.append((rect, tip))

    def _layer_block(
        self,
        painter: QPainter,
        rect: QRectF,
        block: dict,
        label: str,
        color: str,
        scale: float,
        state: str,
        c: dict,
        source: str = "",
    ) -> None:
        dropped = state == "dropped"
        base = QColor(color)
        fill = QColor(color)
        fill.setAlphaF(0.05 if dropped else 0.20)
        pen = QPen(QColor(c["border"]) if dropped else base, 1.0)
        if dropped:
            pen.setStyle(Qt.PenStyle.DotLine)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 3, 3)
        fm = painter.fontMetrics()
        label_w = fm.horizontalAdvance("L00 \u2190 T00") + 6 if source else fm.horizontalAdvance("L00") + 8
        painter.setPen(QColor(c["muted"] if dropped else c["text"]))
        painter.drawText(
            QRectF(rect.left() + 6, rect.top(), label_w, rect.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            label + source,
        )
        count_w = fm.horizontalAdvance("888.8K") + 8
        bar_left = rect.left() + 6 + label_w
        bar_w = max(10.0, rect.width() - (bar_left - rect.left()) - count_w - 4)
        attention, mlp = block.get("attention", 0), block.get("mlp", 0)
        h = 7.0
        top = rect.center().y() - h / 2
        attn_color = QColor(color)
        attn_color.setAlphaF(0.25 if dropped else 0.55)
        mlp_color = QColor(color)
        mlp_color.setAlphaF(0.35 if dropped else 1.0)
        a_w = bar_w * attention / scale
        m_w = bar_w * mlp / scale
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(attn_color)
        painter.drawRoundedRect(QRectF(bar_left, top, max(a_w, 1.0), h), 2, 2)
        painter.setBrush(mlp_color)
        painter.drawRoundedRect(QRectF(bar_left + a_w + 1, top, max(m_w, 1.0), h), 2, 2)
        painter.setPen(QColor(c["muted"]))
        painter.drawText(
            QRectF(rect.right() - count_w, rect.top(), count_w - 6, rect.height()),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            format_count(block["params"]),
        )
        where = (
            f"teacher layer {block['name'].split()[-1]}"
            if not source
            else f"student layer {label[1:]} (teacher layer {source.split('T')[-1]})"
        )
        status = " \u2013 dropped from the student" if dropped else ""
        self._hits.append(
            (
                rect,
                f"{where}{status}\nattention {attention:,}\nMLP {mlp:,}\nnorms {block.get('norms', 0):,}\n"
                f"total {block['params']:,} parameters",
            )
        )


class ArchitectureView(QWidget):
    """Teacher and student side by side, block by block, scrollable for deep models; a button measures how
    much each layer of a loaded teacher matters (in the background) and draws it beside the teacher."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.setContentsMargins(8, 6, 8, 0)
        self.measure_button = QPushButton("Measure importance", self)
        self.measure_button.clicked.connect(self.measure)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(140)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        row.addWidget(self.measure_button)
        row.addWidget(self.progress)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.canvas = _ArchCanvas(self.scroll)
        self.scroll.setWidget(self.canvas)
        layout.addWidget(self.scroll)
        self.config: Any = None
        self._measured_key = ""  # what the importance drawn was measured for
        self._jobs: Jobs | None = None  # its thread starts with the first measurement
        self._update_button()

    def update_plan(self, plan: Any, config: Any = None) -> None:
        """Draw a :class:`~workbench.engine.plan.Plan` (of ``config``, when given: what the button measures)."""
        if config is not None:
            self.config = config
            if self._measured_key and _key(config) != self._measured_key:
                self.canvas.importance, self._measured_key = None, ""  # another teacher or other data
                self.status.setText("")
        self.canvas.set_plan(plan)
        self._update_button()

    def _update_button(self) -> None:
        cfg = self.config
        busy = self.progress.isVisible()
        if cfg is None:
            self.measure_button.setEnabled(False)
            self.measure_button.setToolTip("The configuration is not known yet.")
        elif cfg.teacher.source == "train":
            self.measure_button.setEnabled(False)
            self.measure_button.setToolTip(
                "The teacher is trained from scratch by this run, so there is nothing to measure yet: "
                "run `workbench layers RUN_DIR` on a run folder whose teacher stage has finished."
            )
        else:
            self.measure_button.setEnabled(not busy)
            self.measure_button.setToolTip(
                "Measure how much each teacher layer matters: the KL between the teacher and the teacher with "
                "that layer skipped, on 8 held-out blocks (what student.keep = importance ranks by)."
            )

    @Slot()
    def measure(self) -> None:
        """Measure the configured teacher's layers on the jobs thread (never on the GUI thread)."""
        cfg = self.config
        if cfg is None or cfg.teacher.source == "train":
            return
        if self._jobs is None:
            self._jobs = Jobs("importance", self)
        cfg = cfg.copy()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setStyleSheet("")
        self.status.setText("Loading the teacher and the data\u2026")
        self._update_button()

        def work(job: Any) -> dict:
            from workbench.engine.importance import measure_teacher

            return measure_teacher(cfg, on_progress=lambda done, total: job.progress(done, total))

        self._jobs.submit(
            "importance",
            work,
            on_done=lambda found: self._measured(found, _key(cfg)),
            on_error=self._failed,
            on_progress=self._progressed,
        )

    def _progressed(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(f"Measuring: forward pass {done} of {total}")

    def _measured(self, found: dict, key: str) -> None:
        self.progress.hide()
        self.status.setStyleSheet("")
        if self.config is not None and _key(self.config) != key:
            self.status.setText("The teacher or the data changed while it was measured: measure again.")
        else:
            self.canvas.importance, self._measured_key = found, key
            kept = found.get("by_importance")
            self.status.setText(
                f"KL when each layer is skipped, on {found['blocks']} held-out blocks."
                + (f" Importance keeps {kept}, evenly spaced {found['evenly']}." if kept else "")
            )
            self.canvas.update()
        self._update_button()

    def _failed(self, err: BaseException) -> None:
        self.progress.hide()
        self.status.setStyleSheet(f"color: {theme.ERROR_COLOR};")
        self.status.setText(one_line(err))
        self._update_button()

    def shutdown(self) -> None:
        """Cancel a measurement in progress and wait for it (the window is closing)."""
        if self._jobs is not None:
            self._jobs.shutdown()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(460, 520)


def _key(cfg: Any) -> str:
    """What a measurement depends on: the teacher, the data, the sequence length, the seed and keep_layers."""
    return repr((cfg.teacher, cfg.data, cfg.train.seq_len, cfg.train.seed, cfg.student.keep_layers))
