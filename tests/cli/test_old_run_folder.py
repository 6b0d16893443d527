"""A run folder written before the restructure (commit d45484f, the layout of 2026-11) resumes and predicts.

``tests/data/run-before-restructure`` is a tiny run stopped at distillation step 6 by that code: a teacher it
trained, a checkpoint, an events.jsonl with NaN literals (the old, non-strict JSON).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from workbench.cli import main
from workbench.events import Step, read_events

OLD_RUN = Path(__file__).resolve().parents[1] / "data" / "run-before-restructure"


def test_a_run_folder_from_before_the_restructure_resumes_and_predicts(tmp_path, capsys):
    run = tmp_path / OLD_RUN.name
    shutil.copytree(OLD_RUN, run)
    assert main(["run", "--resume", str(run)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    steps = [e.step for e in read_events(str(run / "events.jsonl")) if isinstance(e, Step) and e.stage == "distill"]
    assert steps[:3] == [2, 4, 6] and steps[-1] == 20  # the old steps read back, then the resumed ones
    assert (run / "student" / "model.safetensors").is_file()

    assert main(["predict", str(run), "the cat is sitting on the", "--top-k", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[1].split() == ["token", "teacher", "student", "true"] and len(out) == 2 + 3
