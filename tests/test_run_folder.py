"""What the Runs table reads from a run folder."""

from __future__ import annotations

import os
import time

from workbench.config.schema import RunConfig
from workbench.run_folder import create_run_dir, read_run, write_status


def test_created_is_when_the_folder_was_made_not_its_last_status(tmp_path):
    config = RunConfig()
    config.runs_dir = str(tmp_path)
    run_dir = create_run_dir(config)
    made = time.time() - 3 * 86400  # as if made three days ago
    os.utime(run_dir / "config.toml", (made, made))
    write_status(run_dir, "completed")  # today: moves the folder's own times
    assert read_run(run_dir).created == time.strftime("%Y-%m-%d %H:%M", time.localtime(made))
