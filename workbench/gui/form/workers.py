"""Work the configuration panel does off the GUI thread: data preview and model fetch.

Each worker is a plain ``QObject`` moved onto a ``QThread`` owned by the panel;
the panel asks for work through a queued signal and receives results through
signals connected to its ``@Slot`` methods (never lambdas). The workers only
call engine functions and never touch widgets.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from workbench.config.schema import DataConfig, TeacherConfig
from workbench.errors import ConfigError, one_line
from workbench.gui.background.engine_import import load_engine


@dataclass(frozen=True)
class PreviewRequest:
    """What the data preview needs: copies, so later edits cannot race the worker."""

    data: DataConfig
    teacher: TeacherConfig
    seq_len: int
    seed: int


def preview_tokenizer(teacher: TeacherConfig, data: DataConfig) -> tuple[Any | None, str]:
    """The tokenizer the run would use, if it can be had without loading weights; else (None, why not).

    A teacher trained here on text data gives (None, ""): ``data.preview`` then trains the
    tokenizer on the text, as the run will.
    """
    if teacher.source != "train" and not teacher.path.strip():
        return None, "Choose a teacher to preview how its tokenizer reads the data."
    # The tokenizer imports transformers, which the warm-up may be importing on another thread: two
    # threads importing its lazy modules at once can get a half-made one.
    load_engine()
    from workbench.engine.assemble import data_tokenizer

    try:
        return data_tokenizer(teacher, data, train_on_text=False), ""
    except Exception as err:  # noqa: BLE001 - any failure only means "no preview"
        if teacher.source == "hub":
            return None, f"{teacher.path.strip()} is not in the local cache, so its tokenizer cannot be previewed offline."
        return None, f"No preview: {err.message if isinstance(err, ConfigError) else one_line(err, 200)}."


class PreviewWorker(QObject):
    """Computes ``engine.data.preview`` for a request; emits ``done(request_id, dict | str)``.

    A ``str`` result is a note to show instead of numbers (no tokenizer, bad
    path); a dict is the preview itself.
    """

    done = Signal(int, object)

    def __init__(self) -> None:
        super().__init__()
        self._tokenizers: dict[tuple, tuple[Any | None, str]] = {}

    @Slot(int, object)
    def compute(self, request_id: int, request: PreviewRequest) -> None:
        try:
            self.done.emit(request_id, self._preview(request))
        except Exception as err:  # noqa: BLE001 - a preview must never take the window down
            self.done.emit(request_id, one_line(err))

    def _preview(self, request: PreviewRequest) -> dict | str:
        teacher = request.teacher
        key = (teacher.source, teacher.path, teacher.revision, request.data.source == "toy")
        if key not in self._tokenizers:
            self._tokenizers[key] = preview_tokenizer(teacher, request.data)
        tokenizer, note = self._tokenizers[key]
        if note:
            return note
        if tokenizer is None and request.data.source == "generated":
            return "Generated data needs a pretrained teacher (local, hub or .gguf) to write it."

        from workbench.engine.data.blocks import preview
        from workbench.engine.data.generated import teacher_cache_key

        # the same key the run uses, so already generated samples are found in the cache
        return preview(request.data, tokenizer, request.seq_len, seed=request.seed, n_examples=3,
                       teacher_key=teacher_cache_key(teacher))


class _Cancelled(Exception):
    pass


def load_fetch_function() -> tuple[Callable | None, str]:
    """``fetch_smollm2`` from the engine if it is there, else from ``scripts/fetch_smollm2.py``.

    Returns (function or None, where it came from / why it is missing).
    """
    for name in ("workbench.engine.models.fetch",):
        try:
            return importlib.import_module(name).fetch_smollm2, name
        except (ImportError, AttributeError):
            pass
    script = Path(__file__).resolve().parents[2] / "scripts" / "fetch_smollm2.py"
    if script.is_file():
        spec = importlib.util.spec_from_file_location("_workbench_fetch_smollm2", script)
        module = importlib.util.module_from_spec(spec)
        try:
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module.fetch_smollm2, str(script)
        except Exception as err:  # noqa: BLE001
            return None, f"scripts/fetch_smollm2.py could not be loaded: {err}"
    return None, "The SmolLM2 fetcher is not installed with this copy of the workbench."


class FetchWorker(QObject):
    """Runs ``fetch_smollm2(progress)``; cancel() makes the next progress report abort it."""

    progress = Signal(float, str)  # fraction done (negative when unknown), message
    succeeded = Signal(str)  # path of the .gguf file
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Thread-safe: the fetch stops at its next progress report."""
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        self._cancel.clear()
        fetch, origin = load_fetch_function()
        if fetch is None:
            self.failed.emit(origin)
            return
        try:
            try:
                path = fetch(self._report, should_stop=self._cancel.is_set)
            except TypeError as err:
                if "should_stop" not in str(err):
                    raise
                path = fetch(self._report)  # a fetcher without a stop flag: cancel via the progress callback
        except (_Cancelled, InterruptedError):
            self.failed.emit("Fetch cancelled.")
            return
        except Exception as err:  # noqa: BLE001 - shown to the user as one sentence
            self.failed.emit(one_line(err))
            return
        self.succeeded.emit(str(path))

    def _report(self, *args: Any, **kwargs: Any) -> None:
        """Accepts the shapes a progress callback commonly has: (fraction), (done, total), (message), (done, total, message)."""
        if self._cancel.is_set():
            raise _Cancelled()
        numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        numbers += [v for k, v in kwargs.items() if k in ("done", "total", "fraction") and isinstance(v, (int, float))]
        texts += [v for k, v in kwargs.items() if isinstance(v, str)]
        fraction = -1.0
        if len(numbers) >= 2 and numbers[1]:
            fraction = float(numbers[0]) / float(numbers[1])
        elif len(numbers) == 1 and 0.0 <= numbers[0] <= 1.0:
            fraction = float(numbers[0])
        message = texts[0] if texts else ""
        if not message and len(numbers) >= 2 and numbers[1]:
            message = f"{numbers[0] / 1e6:.1f} of {numbers[1] / 1e6:.1f} MB"
        self.progress.emit(fraction, message)
