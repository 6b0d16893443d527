"""The runs panel: run folders as a table, overlays, config diff and per-run actions.

Run folders are written with the engine's own writers (config, status, summary,
events), so the panel reads exactly what a real run leaves behind without
training one.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Slot

from workbench.config.schema import RunConfig
from workbench.events import Eval, Finished, StageStarted, Step, to_json
from workbench.gui.runs.runs_panel import COL_OVERLAY, COL_STATUS, RunsPanel
from workbench.gui.window.baselines import baseline_config, baseline_config_of_run
from workbench.run_folder import write_status


def make_run(
    runs_dir: Path,
    folder: str,
    status: str,
    *,
    temperature=2.0,
    steps=10,
    summary=None,
    config: RunConfig | None = None,
) -> Path:
    path = runs_dir / folder
    path.mkdir(parents=True)
    cfg = config.copy() if config is not None else RunConfig(runs_dir=str(runs_dir))
    cfg.name = folder.split("-", 2)[-1]
    cfg.distill.temperature = temperature
    cfg.save(path / "config.toml")
    write_status(path, status)
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    lines = [StageStarted("distill", steps)]
    lines += [
        Step("distill", i, steps, 3.0 - 0.1 * i, 1.0, 2.0, 1e-3, 1.0, 1e4, i, steps - i) for i in range(1, steps + 1)
    ]
    lines += [
        Eval("distill", steps, {"student_ce": 2.0, "kl_teacher_student": 0.3}),
        Finished(status, str(path), summary or {}),
    ]
    (path / "events.jsonl").write_text("".join(to_json(e) + "\n" for e in lines))
    return path


class Catch(QObject):
    def __init__(self):
        super().__init__()
        self.got = []

    @Slot(object)
    def take(self, value):
        self.got.append(value)

    @Slot(list)
    def take_list(self, value):
        self.got.append(value)

    @Slot(str)
    def take_str(self, value):
        self.got.append(value)


def _panel(qtbot, runs_dir):
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_runs_dir(runs_dir)
    return panel


def test_table_lists_runs_newest_first_with_status_and_final_metrics(qtbot, runs_dir):
    make_run(
        runs_dir,
        "20260101-100000-kd",
        "completed",
        summary={"student_ce": 2.3456, "kl_teacher_student": 0.25, "top1_agreement": 0.5, "steps": 10},
    )
    make_run(runs_dir, "20260102-100000-later", "stopped")
    panel = _panel(qtbot, runs_dir)
    assert panel.row_count() == 2
    assert panel.table.item(0, 1).text() == "later"
    assert panel.table.item(0, COL_STATUS).text() == "stopped"
    row = [panel.table.item(1, c).text() for c in range(panel.table.columnCount())]
    assert "completed" in row and "2.346" in row and "50.0%" in row


def test_resume_is_offered_only_for_stopped_runs_and_not_while_training(qtbot, runs_dir):
    done = make_run(runs_dir, "20260101-100000-done", "completed")
    stopped = make_run(runs_dir, "20260102-100000-stopped", "stopped")
    panel = _panel(qtbot, runs_dir)
    catch = Catch()
    panel.resume_requested.connect(catch.take_str)
    panel.select_run(done)
    assert not panel.resume_button.isEnabled()
    assert "completed" in panel.resume_button.toolTip()
    panel.select_run(stopped)
    assert panel.resume_button.isEnabled()
    panel.set_busy(True)
    assert not panel.resume_button.isEnabled() and not panel.baseline_button.isEnabled()
    panel.set_busy(False)
    panel.resume_button.click()
    assert catch.got == [str(stopped.resolve())]


def test_ticking_runs_overlays_them_and_two_ticks_show_the_config_diff(qtbot, runs_dir):
    a = make_run(runs_dir, "20260101-100000-a", "completed", temperature=2.0)
    b = make_run(runs_dir, "20260102-100000-b", "completed", temperature=4.0)
    panel = _panel(qtbot, runs_dir)
    catch = Catch()
    panel.overlays_changed.connect(catch.take_list)
    panel.table.item(1, COL_OVERLAY).setCheckState(Qt.CheckState.Checked)  # a (older, second row)
    assert catch.got[-1] == [str(a.resolve())]
    assert panel.diff_text() == ""
    panel.set_checked(b, True)
    assert catch.got[-1] == [str(a.resolve()), str(b.resolve())]
    diff = panel.diff_text()
    assert "distill.temperature" in diff and "2.0" in diff and "4.0" in diff
    assert "name" in diff
    panel.set_checked(a, False)
    assert catch.got[-1] == [str(b.resolve())]
    assert panel.diff_text() == ""


def test_open_config_emits_the_runs_configuration(qtbot, runs_dir):
    path = make_run(runs_dir, "20260101-100000-hot", "completed", temperature=7.5)
    panel = _panel(qtbot, runs_dir)
    catch = Catch()
    panel.open_config_requested.connect(catch.take)
    panel.select_run(path)
    panel.open_button.click()
    assert catch.got[0].distill.temperature == 7.5


def test_new_run_folders_appear_without_a_click(qtbot, runs_dir):
    panel = _panel(qtbot, runs_dir)
    assert panel.row_count() == 0
    make_run(runs_dir, "20260101-100000-new", "completed")
    qtbot.waitUntil(lambda: panel.row_count() == 1, timeout=10_000)


def test_baseline_config_turns_distillation_off():
    cfg = RunConfig(name="kd")
    cfg.distill.alpha = 0.7
    base = baseline_config(cfg)
    assert base.distill.alpha == 0.0 and base.name == "kd-baseline"
    assert cfg.distill.alpha == 0.7  # the original is untouched
    assert baseline_config(base).name == "kd-baseline"


def test_window_overlays_ticked_runs_and_baseline_overlays_its_source(make_window, runs_dir, qtbot, tiny_config):
    source = make_run(
        runs_dir,
        "20260101-100000-kd",
        "completed",
        config=tiny_config(runs_dir),
        summary={"kl_true_student": 0.001, "student_ce": 2.0},
    )
    window = make_window(tiny_config(runs_dir))
    window.runs_panel.set_checked(source, True)
    overlays = window.charts.charts["loss"].overlays
    assert overlays, "ticking a run did not overlay its curves"
    window.runs_panel.set_checked(source, False)
    assert not window.charts.charts["loss"].overlays

    window.runs_panel.select_run(source)
    with qtbot.waitSignal(window.controller.finished, timeout=90_000) as finished:
        window.runs_panel.baseline_button.click()
        assert window.controller.config().distill.alpha == 0.0
        assert window.controller.config().name.endswith("-baseline")
    assert finished.args[0].status == "completed"
    assert str(source.resolve()) in window.runs_panel.checked_paths()
    assert window.charts.charts["loss"].overlays  # the distilled run, dashed, next to the live baseline
    baseline_kl = finished.args[0].summary["kl_true_student"]
    card = window.runs_panel.bought_card  # the source run beside the baseline that just finished
    assert card is not None and card.isVisible()
    assert card.card.run_path == str(source.resolve()) and card.card.baseline_path == finished.args[0].run_dir
    assert card.card.values["kl_true"] == {"teacher": None, "distilled": 0.001, "baseline": baseline_kl}
    assert card.cells[("kl_true", "baseline")].text() == f"{baseline_kl:.3f}"
    assert window.banner.isVisible() and window.banner.message() == (
        f"Distilled student: KL to the true distribution 0.001, {baseline_kl / 0.001:.1f}x closer to the truth "
        f"than the hard-label baseline's {baseline_kl:.3f}."
    )


def test_the_gap_sentence_says_what_soft_targets_bought_or_that_they_did_not():
    from workbench.gui.window.baselines import gap_sentence

    assert gap_sentence({"kl_true_student": 0.1}, {"kl_true_student": 0.3})[0] == (
        "Distilled student: KL to the true distribution 0.100, 3.0x closer to the truth than the hard-label "
        "baseline's 0.300."
    )
    assert "no closer" in gap_sentence({"kl_true_student": 0.3}, {"kl_true_student": 0.2})[0]
    real = gap_sentence({"student_ce": 2.5, "kl_true_student": None}, {"student_ce": 2.75})  # no known truth
    assert real[0] == "Distilled student: held-out cross-entropy 2.500, lower than the hard-label baseline's 2.750."
    assert gap_sentence(None, {"kl_true_student": 0.2}) is None
    assert gap_sentence({"status": "completed"}, {"kl_true_student": 0.2}) is None


def test_baseline_of_a_run_reuses_the_teacher_it_trained(tmp_path):
    cfg = RunConfig(name="kd")
    run_dir = tmp_path / "20260101-100000-kd"
    (run_dir / "teacher").mkdir(parents=True)
    base = baseline_config_of_run(run_dir, cfg)
    assert base.teacher.source == "train", "no trained teacher saved yet: the baseline trains its own"
    (run_dir / "teacher" / "config.json").write_text("{}")
    base = baseline_config_of_run(run_dir, cfg)
    assert base.teacher.source == "local" and base.teacher.path == str((run_dir / "teacher").resolve())
    assert base.distill.alpha == 0.0


def test_overlay_labels_say_when_and_whether_the_run_distilled():
    from workbench.gui.window.runs_tab import overlay_label

    assert overlay_label("/r/20261128-034301-kd", "kd", 0.7) == "kd (α 0.7, 03:43)"
    assert overlay_label("/r/20261128-034301-kd-baseline", "", 0.0) == "kd-baseline (α 0, 03:43)"
    assert overlay_label("/r/my-folder", "", None) == "my-folder"


def test_toolbar_baseline_is_the_forms_and_a_new_run_drops_old_overlays(make_window, runs_dir, qtbot, tiny_config):
    other = make_run(runs_dir, "20260101-090000-other", "completed", temperature=3.0, config=tiny_config(runs_dir))
    window = make_window(tiny_config(runs_dir))
    window.runs_panel.set_checked(other, True)
    window.runs_panel.select_run(other)  # selected, but it ran another configuration than the form's
    assert window.charts.charts["loss"].overlays
    form = window.config()
    with qtbot.waitSignal(window.controller.finished, timeout=90_000):
        window.baseline_action.trigger()
        started = window.controller.config()
        assert started.name == f"{form.name}-baseline" and started.distill.alpha == 0.0
        assert started.distill.temperature == form.distill.temperature and started.teacher == form.teacher
        assert window.runs_panel.checked_paths() == [], "the overlay ticks went with the curves they drew"
        assert not window.charts.charts["loss"].overlays


def test_export_gguf_writes_the_selected_runs_student_and_says_why_when_it_cannot(qtbot, runs_dir, tmp_path):
    from tests.helpers_models import save_tiny_model, write_tiny_gguf
    from workbench.engine.models.load import load_pretrained

    gguf_teacher = RunConfig(runs_dir=str(runs_dir))
    gguf_teacher.teacher.source, gguf_teacher.teacher.path = "gguf", str(tmp_path / "teacher.gguf")
    bpe = make_run(runs_dir, "20260101-000000-bpe", "completed", summary={"student_ce": 1.0}, config=gguf_teacher)
    write_tiny_gguf(tmp_path / "teacher.gguf", layers=2, hidden=64, heads=4)
    model, tokenizer = load_pretrained("gguf", str(tmp_path / "teacher.gguf"))
    model.save_pretrained(bpe / "student")
    tokenizer.save_pretrained(bpe / "student")
    word = make_run(runs_dir, "20260101-000001-word", "completed", summary={"student_ce": 1.0})
    save_tiny_model(word / "student", family="llama")  # word-level, like the built-in language's
    stopped = make_run(runs_dir, "20260101-000002-stopped", "stopped")
    asked = []
    panel = _panel(qtbot, runs_dir)
    panel.gguf_row._ask_path = lambda suggested: asked.append(suggested) or str(tmp_path / "out" / suggested.name)
    (tmp_path / "out").mkdir()

    panel.select_run(stopped)
    assert not panel.gguf_row.button.isEnabled()  # no student written yet
    panel.select_run(bpe)
    assert panel.gguf_row.button.isEnabled()
    panel.gguf_row.export("q8_0")
    qtbot.waitUntil(lambda: panel.gguf_row.status.text().startswith("Wrote"), timeout=60_000)
    assert asked[-1] == bpe.resolve() / "student-q8_0.gguf"
    written = tmp_path / "out" / "student-q8_0.gguf"
    assert written.stat().st_size > 0 and str(written) in panel.gguf_row.status.text()
    assert panel.gguf_row.button.isEnabled()

    panel.select_run(word)  # a built-in-language run: its student cannot be GGUF, the button says so
    assert not panel.gguf_row.button.isEnabled() and "word-level" in panel.gguf_row.button.toolTip()
    panel.gguf_row.export("f16")  # asked anyway (the menu of a button enabled before): refused in one line
    qtbot.waitUntil(lambda: "word-level tokenizer" in panel.gguf_row.status.text(), timeout=60_000)
    assert not (tmp_path / "out" / "student-f16.gguf").exists()
    panel.shutdown()
