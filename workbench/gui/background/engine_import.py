"""One place, one lock, for loading the engine from the window's background threads.

Several of them want the engine at about the same time: the warm-up right after the
window appears, the planner, the data preview, a run that starts at once, the
soft-target panel's predictor. The engine's own modules import no circle, but transformers imports
its lazy modules on first use, and two threads doing that at once can get a half-initialised one
("cannot import name 'PreTrainedTokenizerFast'"). Importing the heavy modules under one lock,
before anything else touches them, makes the first import a single-threaded one.
"""

from __future__ import annotations

import gc
import importlib
import threading
from types import ModuleType

_LOCK = threading.Lock()
_MODULES = ("workbench.engine.train.run", "workbench.engine.plan", "workbench.engine.predictor")


_frozen = False


def load_engine() -> ModuleType:
    """Import the engine (torch and transformers with it) once; returns ``workbench.engine.train.run``."""
    global _frozen
    with _LOCK:
        for name in _MODULES:
            importlib.import_module(name)
        if not _frozen:
            # Several hundred thousand objects of imported modules live as long as the process: out of the
            # cycle collector's sight, a full collection (now on the GUI thread) takes a few ms, not tens.
            gc.freeze()
            _frozen = True
    return importlib.import_module("workbench.engine.train.run")
