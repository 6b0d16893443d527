"""The architecture view's "Measure importance": off the GUI thread, bars beside the teacher, refused for a
teacher trained from scratch."""

from __future__ import annotations

import threading

from tests.engine.test_keep_importance import _identity_layers
from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.config.schema import RunConfig
from workbench.engine import importance
from workbench.engine.plan import plan_run
from workbench.gui.form.architecture_view import ArchitectureView


def _local_config(tmp_path) -> RunConfig:
    tokenizer = tiny_tokenizer()
    model = _identity_layers(tiny_model(tokenizer, layers=4, seed=7), [0, 3])
    model.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    cfg = RunConfig()
    cfg.teacher.source, cfg.teacher.path = "local", str(tmp_path / "teacher")
    cfg.student.keep_layers, cfg.student.keep = 2, "importance"
    cfg.train.seq_len, cfg.train.device = 16, "cpu"
    cfg.data.toy_sentences = 600
    return cfg


def test_a_teacher_trained_here_cannot_be_measured(qtbot):
    view = ArchitectureView()
    qtbot.addWidget(view)
    cfg = RunConfig()
    view.update_plan(plan_run(cfg), cfg)
    assert not view.measure_button.isEnabled()
    assert "trained from scratch" in view.measure_button.toolTip()


def test_measuring_runs_off_the_gui_thread_and_draws_the_bars(qtbot, tmp_path, monkeypatch):
    cfg = _local_config(tmp_path)
    threads: list[threading.Thread] = []
    real = importance.layer_importance

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(importance, "layer_importance", spy)
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(520, 420)
    view.update_plan(plan_run(cfg), cfg)
    assert view.measure_button.isEnabled()
    view.measure_button.click()
    qtbot.waitUntil(lambda: view.canvas.importance is not None, timeout=60_000)
    assert threads and threads[0] is not threading.main_thread()
    assert view.canvas.importance["by_importance"] == [1, 2]
    assert "Importance keeps [1, 2], evenly spaced [0, 3]" in view.status.text()
    view.grab()  # paints: each bar gets its tooltip
    tips = [text for _, text in view.canvas._hits if "KL when skipped" in text]
    assert len(tips) == 4 and sum("kept by importance" in t for t in tips) == 2
    # keep = "importance": the student's layers are linked to the measured choice
    links = [text for _, text in view.canvas._hits if text.startswith("student layer")]
    assert [t.split("\n")[0] for t in links] == [
        "student layer 0 (teacher layer 1)",
        "student layer 1 (teacher layer 2)",
    ]
    # another teacher: the old bars go
    other = cfg.copy()
    other.teacher.path = str(tmp_path / "elsewhere")
    view.update_plan(plan_run(cfg), other)
    assert view.canvas.importance is None
    view.shutdown()
