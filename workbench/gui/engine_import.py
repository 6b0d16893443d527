"""One place, one lock, for loading the engine from the window's background threads.

Several of them want the engine at about the same time: the warm-up right after the
window appears, the planner, the data preview, a run that starts at once, the
soft-target panel's predictor. Python imports a module graph with circular parts
(``train`` -> ``loading`` -> ``models``, ``plan`` -> ``loading``) from two threads at
once by handing one of them a half-initialised module when it sees a deadlock, which
surfaces as "cannot import name 'train' from 'workbench.engine'". Importing the heavy
modules under one lock, before anything else touches them, makes the first import a
single-threaded one.
"""

from __future__ import annotations

import gc
import importlib
import threading
from types import ModuleType

_LOCK = threading.Lock()
_MODULES = ("train", "plan")  # the part of the engine with import cycles; its leaves import safely anywhere


_frozen = False


def load_engine() -> ModuleType:
    """Import the engine (torch and transformers with it) once; returns ``workbench.engine.train``."""
    global _frozen
    with _LOCK:
        for name in _MODULES:
            importlib.import_module(f"workbench.engine.{name}")
        if not _frozen:
            # Several hundred thousand objects of imported modules live as long as the process: out of the
            # cycle collector's sight, a full collection (now on the GUI thread) takes a few ms, not tens.
            gc.freeze()
            _frozen = True
    return importlib.import_module("workbench.engine.train")
