"""The sweep grid: a 2x2 sweep as a heatmap whose cells are the summaries', the best cell starred, the metric
switched, a running cell filled in live, a double-click giving the cell's run folder, the CSV; a one-axis sweep as
lines; the Runs tab listing a sweep as one line and opening its grid. Sweep folders are written by hand
(tests/gui/sweep_folders.py), with workbench.sweep's own writers for sweep.json."""

from __future__ import annotations

import csv
import io
import json

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.gui.sweep_folders import make_sweep, summary_of
from workbench.gui.runs.sweep_grid import BEST_ROLE, CELL_ROLE, SweepGrid
from workbench.run_folder import write_status
from workbench.sweep import load_sweep, write_sweep_file
from workbench.sweep_folder import read_sweep

GRID = ["distill.temperature=1,2", "distill.alpha=0.5,0.9"]
# cells in the sweep's order: (T=1, a=0.5), (T=1, a=0.9), (T=2, a=0.5), (T=2, a=0.9)
KL = [0.41, 0.37, 0.30, 0.33]
TOP1 = [0.78, 0.86, 0.81, 0.80]
MS = [1.10, 1.05, 0.95, 1.20]


def done(i: int) -> dict:
    return summary_of(KL[i], kl_teacher=0.2 + i / 100, ce=2.5 + i / 10, top1=TOP1[i], ms=MS[i])


def _grid(qtbot, path, refresh_ms=1000) -> SweepGrid:
    grid = SweepGrid(refresh_ms=refresh_ms)
    qtbot.addWidget(grid)
    grid.resize(800, 500)
    grid.set_sweep(path)
    grid.show()
    qtbot.waitExposed(grid)
    return grid


def _ids(path):
    return [c.id for c in read_sweep(path).cells]


def test_the_heatmap_cells_are_the_summaries_and_the_best_is_the_lowest_kl(qtbot, runs_dir):
    path = make_sweep(runs_dir, GRID, {i: done(i) for i in range(4)}, status="completed")
    grid = _grid(qtbot, path)
    ids = _ids(path)
    table = grid.table
    assert (table.rowCount(), table.columnCount()) == (2, 2)
    assert [table.verticalHeaderItem(r).text() for r in range(2)] == ["temperature = 1", "temperature = 2"]
    assert [table.horizontalHeaderItem(c).text() for c in range(2)] == ["alpha = 0.5", "alpha = 0.9"]
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        item = table.item(r, c)
        assert item.data(CELL_ROLE) == str(path / ids[i])  # the cell of those values, where its row and column meet
        assert item.text().lstrip("★ ") == f"{KL[i]:.3f}"
    assert grid.best.id == ids[2]
    assert table.item(1, 0).text() == "★ 0.300" and table.item(1, 0).data(BEST_ROLE)
    assert [table.item(r, c).data(BEST_ROLE) for r, c in [(0, 0), (0, 1), (1, 1)]] == [False] * 3
    assert table.item(1, 0).background().color() != table.item(0, 0).background().color()  # a colour scale
    assert grid.detail.text().startswith("Brighter is better: 0.300 ★ … 0.410.")
    assert not grid.timer.isActive()  # a complete sweep is not polled


def test_switching_the_metric_changes_the_values_and_the_best(qtbot, runs_dir):
    path = make_sweep(runs_dir, GRID, {i: done(i) for i in range(4)}, status="completed")
    grid = _grid(qtbot, path)
    ids = _ids(path)
    grid.set_metric("top1_agreement")  # higher is better
    assert grid.best.id == ids[1]
    assert grid.cell_text(ids[1]) == "★ 86.0%" and grid.cell_text(ids[0]) == "78.0%"
    assert "higher is better" in grid.metric_box.currentText()
    assert grid.detail.text().startswith("Brighter is better: 86.0% ★ … 78.0%.")
    grid.set_metric("student_latency_ms")
    assert grid.best.id == ids[2] and grid.cell_text(ids[2]) == "★ 0.95 ms" and grid.cell_text(ids[3]) == "1.20 ms"
    grid.set_metric("student_ce")
    assert grid.best.id == ids[0] and grid.cell_text(ids[0]) == "★ 2.500"


def test_cells_not_finished_say_so_and_fill_in_while_the_sweep_runs(qtbot, runs_dir):
    path = make_sweep(runs_dir, GRID, {0: done(0), 1: done(1), 2: "running"})  # cell 3 not started: queued
    grid = _grid(qtbot, path, refresh_ms=50)
    ids = _ids(path)
    assert grid.cell_text(ids[2]) == "running…" and grid.cell_text(ids[3]) == "queued"
    assert grid.best.id == ids[1]  # of the finished cells
    assert grid.timer.isActive()
    cell_dir = path / ids[2]
    (cell_dir / "summary.json").write_text(json.dumps(done(2)))
    write_status(cell_dir, "completed")
    qtbot.waitUntil(lambda: grid.cell_text(ids[2]) == "★ 0.300", timeout=3000)
    assert grid.best.id == ids[2] and grid.cell_text(ids[3]) == "queued"
    sweep = load_sweep(path)
    last = path / ids[3]
    last.mkdir()
    sweep.cells()[3].config.save(last / "config.toml")
    write_status(last, "failed")
    statuses = {ids[0]: "completed", ids[1]: "completed", ids[2]: "completed", ids[3]: "failed"}
    write_sweep_file(path, sweep, "failed", statuses)
    qtbot.waitUntil(lambda: grid.cell_text(ids[3]) == "failed", timeout=3000)
    assert "3/4 done" in grid.subtitle.text() and "failed" in grid.subtitle.text()
    (last / "summary.json").write_text(json.dumps(done(3)))  # resumed from the command line, say
    write_status(last, "completed")
    write_sweep_file(path, sweep, "completed", {**statuses, ids[3]: "completed"})
    qtbot.waitUntil(lambda: grid.complete(), timeout=3000)
    assert grid.cell_text(ids[3]) == "0.330"
    assert not grid.timer.isActive()  # complete: no more polling


def test_a_click_on_a_cell_emits_its_run_folder_and_arrow_keys_only_select(qtbot, runs_dir):
    path = make_sweep(runs_dir, GRID, {0: done(0), 1: done(1), 2: done(2)})
    grid = _grid(qtbot, path)
    ids = _ids(path)
    table = grid.table

    def click(row, col):
        center = table.visualItemRect(table.item(row, col)).center()
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=center)

    with qtbot.waitSignal(grid.run_requested, timeout=1000) as blocker:
        click(0, 1)  # one click, as a user expects of a results grid
    assert blocker.args == [str(path / ids[1])]
    with qtbot.assertNotEmitted(grid.run_requested):
        click(1, 1)  # queued: no run folder yet
    assert not grid.open_button.isEnabled()
    with qtbot.assertNotEmitted(grid.run_requested):
        table.setCurrentItem(table.item(1, 0))  # selected (the keyboard's way): the detail line, nothing loaded
    assert grid.open_button.isEnabled() and ids[2] in grid.detail.text()
    with qtbot.waitSignal(grid.run_requested, timeout=1000) as blocker:
        grid.open_button.click()
    assert blocker.args == [str(path / ids[2])]


def test_baselines_are_a_reference_column(qtbot, runs_dir):
    base = summary_of(0.52, top1=0.7)
    path = make_sweep(runs_dir, GRID, {**{i: done(i) for i in range(4)}, 4: base}, baseline=True, status="completed")
    grid = _grid(qtbot, path)
    table = grid.table
    assert table.columnCount() == 3 and table.horizontalHeaderItem(2).text() == "baseline (alpha = 0)"
    assert table.item(0, 2).text() == "0.520" and table.rowSpan(0, 2) == 2  # one baseline for the whole grid
    assert grid.best.id == _ids(path)[2]  # a baseline is never the best cell


def test_csv_has_every_cell_with_its_values_status_and_metrics(qtbot, runs_dir, tmp_path, monkeypatch):
    from workbench.gui.runs import sweep_window

    path = make_sweep(runs_dir, GRID, {0: done(0), 1: done(1), 2: "running", 4: summary_of(0.52)}, baseline=True)
    window = sweep_window.SweepGridWindow()
    qtbot.addWidget(window)
    window.set_sweep(path)
    target = tmp_path / "grid"
    monkeypatch.setattr(sweep_window.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV"))
    window.csv_button.click()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grid.csv").read_text(encoding="utf-8"))))
    ids = _ids(path)
    assert [r["cell"] for r in rows] == ids
    assert [r["kind"] for r in rows] == ["cell"] * 4 + ["baseline"]
    assert [r["distill.temperature"] for r in rows] == ["1.0", "1.0", "2.0", "2.0", ""]
    assert [r["distill.alpha"] for r in rows] == ["0.5", "0.9", "0.5", "0.9", "0.0"]
    assert [r["status"] for r in rows] == ["completed", "completed", "running", "pending", "completed"]
    assert [r["kl_true_student"] for r in rows] == ["0.41", "0.37", "", "", "0.52"]
    assert rows[1]["top1_agreement"] == "0.86" and rows[0]["student_latency_ms"] == "1.1"
    assert rows[1]["run_dir"] == str(path / ids[1])
    assert window.save_png(tmp_path / "grid.png")
    image = QImage(str(tmp_path / "grid.png"))
    assert not image.isNull() and image.width() > 300


def test_a_one_axis_sweep_draws_lines_with_the_choices_evenly_spaced(qtbot, runs_dir):
    import pyqtgraph as pg

    grids = ["distill.divergence=forward_kl,reverse_kl,jsd"]
    cells = {0: summary_of(0.31), 1: summary_of(0.36), 2: summary_of(0.29), 3: summary_of(0.48)}
    path = make_sweep(runs_dir, grids, cells, baseline=True, status="completed")
    grid = _grid(qtbot, path)
    ids = _ids(path)
    assert grid.plot is not None and grid.plot.isVisible()
    curves = {c.name(): c for c in grid.plot.plotItem.listDataItems() if c.name()}
    xs, ys = curves["distilled"].getData()
    assert list(xs) == [0.0, 1.0, 2.0] and list(ys) == [0.31, 0.36, 0.29]
    ticks = grid.plot.getAxis("bottom")._tickLevels[0]
    assert ticks == [(0.0, "forward_kl"), (1.0, "reverse_kl"), (2.0, "jsd")]
    best_x, best_y = curves["best"].getData()
    assert (list(best_x), list(best_y)) == ([2.0], [0.29]) and grid.best.id == ids[2]
    lines = [i for i in grid.plot.plotItem.items if isinstance(i, pg.InfiniteLine)]
    assert [line.value() for line in lines] == [0.48]  # the baseline, one for all divergences
    assert grid.table.rowCount() == 2 and grid.cell_text(ids[3]) == "0.480"
    grid.set_metric("top1_agreement")
    xs, ys = {c.name(): c for c in grid.plot.plotItem.listDataItems() if c.name()}["distilled"].getData()
    assert list(ys) == [0.8, 0.8, 0.8]


def test_numbers_on_a_line_sit_at_their_value(qtbot, runs_dir):
    path = make_sweep(runs_dir, ["distill.temperature=1,2,8"], {0: summary_of(0.4), 1: summary_of(0.3)})
    grid = _grid(qtbot, path)
    curves = {c.name(): c for c in grid.plot.plotItem.listDataItems() if c.name()}
    xs, ys = curves["distilled"].getData()
    assert list(xs) == [1.0, 2.0] and list(ys) == [0.4, 0.3]  # the queued third cell has no point yet
    assert grid.cell_text(_ids(path)[2]) == "queued"


def test_the_runs_tab_lists_a_sweep_as_one_line_and_opens_its_grid(qtbot, runs_dir):
    from tests.test_bought import RUN, make_run
    from workbench.gui.runs.runs_panel import RunsPanel

    make_run(runs_dir, "20260101-100000-kd", RUN)
    path = make_sweep(runs_dir, GRID, {0: done(0), 1: done(1), 2: done(2), 3: "running"})
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs_dir(runs_dir)
    panel.show()
    assert panel.row_count() == 1  # the sweep's cells are not runs of the runs folder
    assert panel.sweeps.count() == 1 and panel.sweeps.isVisible()
    line = panel.sweeps.item_text(0)
    assert line.startswith("sweep: kd") and "2×2" in line and "3/4 done" in line and "running" in line
    assert not panel.sweeps.open_button.isEnabled()
    panel.sweeps.select(path)
    panel.sweeps.open_button.click()
    window = panel.sweep_window
    assert window is not None and window.isVisible()
    qtbot.addWidget(window)
    assert window.grid.info.path == path and window.windowTitle() == "Sweep kd"
    ids = _ids(path)
    with qtbot.waitSignal(panel.sweep_cell_requested, timeout=1000) as blocker:
        window.grid.table.setCurrentItem(window.grid.items[ids[0]])
        window.grid.open_button.click()
    assert blocker.args == [str(path / ids[0])]
    window.close()
    assert not window.grid.timer.isActive()  # a closed grid stops polling


def test_a_runs_folder_without_sweeps_hides_the_list(qtbot, runs_dir):
    from tests.test_bought import RUN, make_run
    from workbench.gui.runs.runs_panel import RunsPanel

    make_run(runs_dir, "20260101-100000-kd", RUN)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs_dir(runs_dir)
    panel.show()
    assert panel.sweeps.count() == 0 and not panel.sweeps.isVisible()


def test_where_axis_values_sit_and_which_cell_is_best_without_a_display(tmp_path):
    import math

    from workbench.gui.runs.sweep_cells import METRICS, best_cell, positions
    from workbench.sweep_folder import CellInfo

    assert positions(["forward_kl", "jsd", "tv"]) == [0.0, 1.0, 2.0]
    assert positions([True, False]) == [0.0, 1.0]
    assert positions([1, 2, 8]) == [1.0, 2.0, 8.0]
    assert positions([1e-4, 1e-3, 3e-3]) == [math.log10(1e-4), math.log10(1e-3), math.log10(3e-3)]  # spans 30x

    def cell(i, kind, status, kl):
        return CellInfo(f"c{i}", kind, {}, tmp_path / f"c{i}", status, summary_of(kl) if kl is not None else {})

    cells = [
        cell(0, "cell", "completed", 0.30),
        cell(1, "cell", "stopped", 0.10),  # a stopped run's summary: not a finished cell
        cell(2, "baseline", "completed", 0.05),  # a baseline is a reference, never the best cell
        cell(3, "cell", "completed", 0.30),  # equal: the first one wins
        cell(4, "cell", "running", None),
    ]
    kl, top1 = METRICS[0], METRICS[3]
    assert best_cell(cells, kl).id == "c0"
    assert best_cell(cells[4:], kl) is None
    assert kl.lower_is_better and not top1.lower_is_better


def test_a_cell_opened_in_the_grid_goes_to_the_windows_soft_targets_panel(qtbot, runs_dir, make_window, tiny_config):
    path = make_sweep(runs_dir, GRID, {i: done(i) for i in range(4)}, status="completed")
    window = make_window(tiny_config(runs_dir))
    loaded = []
    window.soft_targets.load_run_probes = lambda run: loaded.append(("probes", run))
    window.soft_targets.set_run_dir = lambda run: loaded.append(("models", run))
    window.show_runs()
    assert window.runs_panel.sweeps.count() == 1
    grid_window = window.runs_panel.show_sweep(path)
    qtbot.addWidget(grid_window)
    cell = str(path / _ids(path)[3])
    grid_window.grid.table.setCurrentItem(grid_window.grid.items[_ids(path)[3]])
    grid_window.grid.open_button.click()
    assert loaded[-2:] == [("probes", cell), ("models", cell)]
    assert window.tabs.currentIndex() == 0  # the soft-targets panel's tab


def test_a_running_cell_clicked_in_the_grid_is_followed_live(qtbot, runs_dir, make_window, tiny_config):
    path = make_sweep(runs_dir, GRID, {0: done(0), 1: "running"})  # a sweep running in a terminal, say
    window = make_window(tiny_config(runs_dir))
    grid_window = window.runs_panel.show_sweep(path)
    qtbot.addWidget(grid_window)
    grid = grid_window.grid
    rect = grid.table.visualItemRect(grid.items[_ids(path)[1]])
    qtbot.mouseClick(grid.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.is_following() and window._follow_dir == path / _ids(path)[1]
    assert "alpha = 0.9" in window.progress.cell_text()
    assert window.show_sweep_cell(str(path / _ids(path)[1])) == "live"  # clicked again: it is already shown
    window.stop_following()


def test_the_grid_follows_a_theme_switched_while_it_is_open(qtbot, runs_dir, qapp):
    from workbench.gui import theme

    path = make_sweep(runs_dir, ["distill.temperature=1,2"], {0: summary_of(0.4)})
    grid = _grid(qtbot, path)
    before = theme.current_theme()
    other = "light" if before == "dark" else "dark"
    try:
        theme.apply_theme(qapp, other)
        qtbot.waitUntil(
            lambda: grid.items[_ids(path)[1]].background().color().name() == theme.colors(other)["alt_base"]
        )
        assert grid.plot.backgroundBrush().color().name() == theme.plot_colors(other)[0]
    finally:
        theme.apply_theme(qapp, before)
    assert grid.items[_ids(path)[1]].background().color().name() == theme.colors(before)["alt_base"]


def test_baselines_sit_beside_the_cells_they_are_the_baseline_of(qtbot, runs_dir):
    from workbench.gui.runs.sweep_cells import BASELINE_NAME

    # one baseline per learning rate, and the learning rate is the rows: a baseline column, one per row
    rows = make_sweep(
        runs_dir, ["train.lr=0.001,0.003", "distill.temperature=1,2"], {4: summary_of(0.6), 5: summary_of(0.5)},
        baseline=True, name="by-rows",
    )  # fmt: skip
    grid = _grid(qtbot, rows)
    t = grid.table
    assert (t.rowCount(), t.columnCount()) == (2, 3) and t.horizontalHeaderItem(2).text() == BASELINE_NAME
    assert [t.item(r, 2).text() for r in range(2)] == ["0.600", "0.500"] and t.rowSpan(0, 2) == 1
    # the learning rate is the columns: a baseline row under the grid, one per column
    cols = make_sweep(
        runs_dir, ["distill.temperature=1,2", "train.lr=0.001,0.003"], {4: summary_of(0.6), 5: "running"},
        baseline=True, name="by-cols",
    )  # fmt: skip
    grid.set_sweep(cols)
    assert (t.rowCount(), t.columnCount()) == (3, 2) and t.verticalHeaderItem(2).text() == BASELINE_NAME
    assert [t.item(2, c).text() for c in range(2)] == ["0.600", "running…"]
    # both axes change the baseline: a baseline row under each row
    both = make_sweep(
        runs_dir, ["train.lr=0.001,0.003", "student.arch.layers=1,2"],
        {0: summary_of(0.4), 4: summary_of(0.61), 5: summary_of(0.62), 6: summary_of(0.63), 7: summary_of(0.64)},
        baseline=True, name="both",
    )  # fmt: skip
    grid.set_sweep(both)
    assert (t.rowCount(), t.columnCount()) == (4, 2)
    assert [t.verticalHeaderItem(r).text() for r in range(4)] == [
        "lr = 0.001", f"lr = 0.001, {BASELINE_NAME}", "lr = 0.003", f"lr = 0.003, {BASELINE_NAME}"
    ]  # fmt: skip
    assert t.item(0, 0).text() == "★ 0.400" and t.item(0, 1).text() == "queued"
    assert [[t.item(r, c).text() for c in range(2)] for r in (1, 3)] == [["0.610", "0.620"], ["0.630", "0.640"]]


def test_presentation_mode_enlarges_the_grids_cells_headers_and_plot_text(qtbot, runs_dir, make_window, tiny_config):
    from workbench.gui.window.presentation import PRESENTATION_FONT_SCALE

    two = make_sweep(runs_dir, GRID, {i: done(i) for i in range(4)}, status="completed")
    one = make_sweep(runs_dir, ["distill.temperature=1,2,4"], {i: done(i) for i in range(3)}, status="completed")
    window = make_window(tiny_config(runs_dir))
    grid_window = window.runs_panel.show_sweep(two)
    qtbot.addWidget(grid_window)
    grid = grid_window.grid

    def sizes():
        return (
            grid.title.font().pointSizeF(),
            grid.table.font().pointSizeF(),
            grid.table.horizontalHeader().font().pointSizeF(),
            grid.table.verticalHeader().font().pointSizeF(),
            grid.table.horizontalHeaderItem(0).font().pointSizeF(),  # what the header draws: "alpha = 0.5"
            grid.subtitle.font().pointSizeF(),
            grid.detail.font().pointSizeF(),
        )

    before = sizes()
    row_before = grid.table.verticalHeader().minimumSectionSize()
    window.set_presentation(True, fullscreen=False)
    after = sizes()
    for a, b in zip(after, before):
        assert a == pytest.approx(b * PRESENTATION_FONT_SCALE, rel=0.02)
    assert grid.table.verticalHeader().minimumSectionSize() > row_before  # two lines of the larger text fit
    grid_window.set_sweep(one)  # a one-axis sweep's plot, made in presentation mode
    tick = grid.plot.getAxis("bottom").style["tickFont"]
    assert tick is not None and tick.pointSizeF() == pytest.approx(grid.font().pointSizeF())
    numbers = [i for i in grid.plot.items() if isinstance(i, pg.TextItem)]
    assert numbers and all(n.textItem.font().pointSizeF() == pytest.approx(grid.font().pointSizeF()) for n in numbers)
    large = tick.pointSizeF()
    window.set_presentation(False)
    assert sizes() == pytest.approx(before, rel=0.02)
    small = grid.plot.getAxis("bottom").style["tickFont"].pointSizeF()
    assert small == pytest.approx(large / PRESENTATION_FONT_SCALE, rel=0.02)


def test_a_finished_cell_clicked_while_a_run_trains_is_drawn_beside_it(
    qtbot, runs_dir, make_window, tiny_config, monkeypatch
):
    from workbench import events as ev

    path = make_sweep(runs_dir, GRID, {i: done(i) for i in range(4)}, status="completed")
    cell = path / _ids(path)[0]
    steps = [ev.Step("distill", n, 3, 2.0 / n, 1.0, 1.0 / n, 1e-3, 1.0, 500.0, n, 0.0) for n in (1, 2, 3)]
    (cell / "events.jsonl").write_text("".join(ev.to_json(e) + "\n" for e in [ev.StageStarted("distill", 3), *steps]))
    window = make_window(tiny_config(runs_dir))
    monkeypatch.setattr(window, "run_active", lambda: True)  # a run of the window is training
    loaded = []
    monkeypatch.setattr(window.soft_targets, "set_run_dir", loaded.append)
    assert window.show_sweep_cell(str(cell)) == "overlaid"
    overlays = window.charts.charts["loss"].overlays
    assert overlays and cell.name in overlays[0].spec.label
    assert loaded == [] and "beside the running run" in window.banner.message()
    window.runs_panel.uncheck_all()
    window._on_overlays_changed([])  # the Runs tab's ticks change: the cell's curves stay
    assert window.charts.charts["loss"].overlays
    monkeypatch.undo()  # the window closes at teardown as an idle one
