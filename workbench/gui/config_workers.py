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

from workbench.config import DataConfig, TeacherConfig


@dataclass(frozen=True)
class PreviewRequest:
    """What the data preview needs: copies, so later edits cannot race the worker."""

    data: DataConfig
    teacher: TeacherConfig
    seq_len: int
    seed: int


def preview_tokenizer(teacher: TeacherConfig, data: DataConfig) -> tuple[Any | None, str]:
    """The tokenizer the run would use, if it is cheap to get; else (None, why not).

    Only tokenizer files are read: never model weights.
    """
    if teacher.source == "train":
        if data.source == "toy":
            from workbench.engine import toylang

            return toylang.get_language().tokenizer(), ""
        return None, "The tokenizer is trained on this data when the run starts, so there is no token preview yet."
    path = teacher.path.strip()
    if not path:
        return None, "Choose a teacher to preview how its tokenizer reads the data."
    from transformers import AutoTokenizer

    try:
        if teacher.source == "local":
            return AutoTokenizer.from_pretrained(path), ""
        if teacher.source == "gguf":
            gguf = Path(path).expanduser()
            if not gguf.is_file():
                return None, f"{gguf.name} does not exist yet."
            # transformers reads the tokenizer straight from the GGUF metadata (no weights)
            return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), ""
        return AutoTokenizer.from_pretrained(path, revision=teacher.revision or None, local_files_only=True), ""
    except Exception as err:  # noqa: BLE001 - any failure only means "no preview"
        if teacher.source == "hub":
            return None, f"{path} is not in the local cache, so its tokenizer cannot be previewed offline."
        return None, f"Could not read the teacher's tokenizer: {str(err).splitlines()[0][:160]}"


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
            text = str(err)
            message = getattr(err, "message", None) or (text.splitlines()[0] if text else type(err).__name__)
            hint = getattr(err, "hint", "")
            self.done.emit(request_id, f"{message}" + (f" ({hint})" if hint else ""))

    def _preview(self, request: PreviewRequest) -> dict | str:
        if request.data.source == "generated":
            prompts = [p for p in request.data.gen_prompts if p.strip()]
            return (f"The teacher writes {request.data.gen_samples} samples from {len(prompts)} prompt(s) "
                    "when the run starts; the preview appears in the run's log.")
        key = (request.teacher.source, request.teacher.path, request.teacher.revision, request.data.source == "toy")
        if key not in self._tokenizers:
            self._tokenizers[key] = preview_tokenizer(request.teacher, request.data)
        tokenizer, note = self._tokenizers[key]
        if tokenizer is None:
            return note
        from workbench.engine import data as engine_data

        return engine_data.preview(request.data, tokenizer, request.seq_len, seed=request.seed, n_examples=3)


class _Cancelled(Exception):
    pass


def load_fetch_function() -> tuple[Callable | None, str]:
    """``fetch_smollm2(progress)`` from the package if it is there, else from ``scripts/fetch_smollm2.py``.

    Returns (function or None, where it came from / why it is missing).
    """
    try:
        module = importlib.import_module("workbench.engine.fetch")
        return module.fetch_smollm2, "workbench.engine.fetch"
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
            path = fetch(self._report)
        except _Cancelled:
            self.failed.emit("Fetch cancelled.")
            return
        except Exception as err:  # noqa: BLE001 - shown to the user as one sentence
            message = getattr(err, "message", None) or str(err) or type(err).__name__
            hint = getattr(err, "hint", "")
            self.failed.emit(message.splitlines()[0] + (f" ({hint})" if hint else ""))
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
