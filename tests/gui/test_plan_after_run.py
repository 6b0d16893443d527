"""The summary card after a run on a text file: the sizes of the tokenizer the run trained, not the plan's
assumption of 4,096 tokens."""

from __future__ import annotations

from workbench.config.schema import RunConfig, TeacherConfig
from workbench.events import Finished


def test_after_a_run_the_card_shows_the_tokenizer_the_run_trained(qtbot, tmp_path, make_window):
    from workbench.engine import assemble

    text = tmp_path / "story.txt"
    text.write_text("\n".join(f"the cat number {i} sat on the mat near the dog" for i in range(300)), "utf-8")
    cfg = RunConfig()
    cfg.apply_overrides(["teacher.source=train", "data.source=file", f"data.path={text}", f"runs_dir={tmp_path}"])
    window = make_window(cfg)
    card = window.summary_card
    qtbot.waitUntil(lambda: "up to 4,096 tokens" in card.tokenizer_value.text(), timeout=30_000)
    qtbot.wait(1500)  # the form's own first change signal and its plan have come and gone
    trained = assemble.data_tokenizer(TeacherConfig(source="train"), cfg.data)  # what a run's start does
    qtbot.wait(1500)
    assert "up to 4,096 tokens" in card.tokenizer_value.text(), "nothing planned again by itself"
    window._on_run_finished(Finished("stopped", "", {}))
    expected = f"{len(trained):,} tokens, as an earlier run trained it"
    qtbot.waitUntil(lambda: expected in card.tokenizer_value.text(), timeout=30_000)
