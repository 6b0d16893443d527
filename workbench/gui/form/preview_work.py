"""What the data preview computes off the GUI thread: plain functions over config copies, no Qt.

:class:`DataPreviewer` answers a :class:`PreviewRequest` with ``engine.data.preview``'s dict, or a
note (str) saying why there is none. It keeps the tokenizers it made, so an edit of the data
settings does not load the teacher's tokenizer again. It runs on the form's background-jobs
thread only (one request at a time), so its cache needs no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.config.schema import DataConfig, RunConfig, TeacherConfig
from workbench.errors import ConfigError, one_line
from workbench.gui.background.engine_import import load_engine


@dataclass(frozen=True)
class PreviewRequest:
    """What the data preview needs: copies, so later edits cannot race the background work."""

    data: DataConfig
    teacher: TeacherConfig
    seq_len: int
    seed: int

    @classmethod
    def of(cls, cfg: RunConfig) -> PreviewRequest:
        copy = cfg.copy()
        return cls(data=copy.data, teacher=copy.teacher, seq_len=copy.train.seq_len, seed=copy.train.seed)


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
            return (
                None,
                f"{teacher.path.strip()} is not in the local cache, so its tokenizer cannot be previewed offline.",
            )
        return None, f"No preview: {err.message if isinstance(err, ConfigError) else one_line(err, 200)}."


class DataPreviewer:
    """``engine.data.preview`` for a request, with the tokenizers kept between requests."""

    def __init__(self) -> None:
        self._tokenizers: dict[tuple, tuple[Any | None, str]] = {}

    def preview(self, request: PreviewRequest) -> dict | str:
        """The preview dict, or a note to show instead of numbers (no tokenizer, bad path, unreadable file)."""
        try:
            return self._preview(request)
        except Exception as err:  # noqa: BLE001 - a preview must never take the window down
            return one_line(err)

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

        from workbench.engine.data.generated import teacher_cache_key
        from workbench.engine.data.preview import preview

        # the same key the run uses, so already generated samples are found in the cache
        return preview(
            request.data,
            tokenizer,
            request.seq_len,
            seed=request.seed,
            n_examples=3,
            teacher_key=teacher_cache_key(teacher),
        )
