"""Which fields of the form matter for the chosen sources, and what a path field is called and browses for.

Pure rules over a :class:`RunConfig` (no Qt): the form hides what does not matter (keeping its value),
renames the path fields after their source ("GGUF file", "Hub id") and gives them a Browse button
for a file or a folder where there is one to choose.
"""

from __future__ import annotations

import functools

from workbench.config.schema import RunConfig

# The label of each path field for each source it is used with.
PATH_LABELS = {
    "teacher.path": {"local": "Folder", "hub": "Hub id", "gguf": "GGUF file"},
    "student.path": {"local": "Folder", "hub": "Hub id"},
    "data.path": {"file": "File", "hf": "Dataset name", "disk": "Folder"},
}
_PLACEHOLDERS = {
    ("teacher.path", "local"): "a save_pretrained folder (config.json inside)",
    ("teacher.path", "hub"): "e.g. HuggingFaceTB/SmolLM2-135M-Instruct",
    ("teacher.path", "gguf"): "a file ending in .gguf",
    ("student.path", "local"): "a save_pretrained folder",
    ("student.path", "hub"): "a model id on the hub",
    ("data.path", "hf"): "e.g. roneneldan/TinyStories",
    ("data.path", "disk"): "a folder written by save_to_disk",
}
_FOLDERS = {("teacher.path", "local"), ("student.path", "local"), ("data.path", "disk")}


def field_visible(dotted: str, cfg: RunConfig) -> bool:
    """Whether a field, or a group such as ``teacher.arch``, matters for the sources chosen in ``cfg``."""
    t, s, d = cfg.teacher.source, cfg.student.source, cfg.data.source
    if dotted == "teacher.arch" or dotted.startswith("teacher.arch."):
        return t == "train"
    if dotted == "student.arch" or dotted.startswith("student.arch."):
        return s == "custom"
    if dotted.startswith("data.gen_"):
        return d == "generated"
    if dotted.startswith("distill.on_policy_"):
        return cfg.distill.on_policy > 0
    rules = {
        "teacher.path": t != "train",
        "teacher.revision": t == "hub",
        "teacher.trust_remote_code": t in ("local", "hub"),
        "student.keep_layers": s == "derived",
        "student.layer_ids": s == "derived",
        "student.keep": s == "derived",
        "student.path": s in ("local", "hub"),
        "distill.beta": cfg.distill.divergence == "jsd",
        "distill.skew": cfg.distill.divergence.startswith("skew"),
        "distill.cache_k": cfg.distill.teacher_cache == "topk",
        "distill.cache_tail": cfg.distill.teacher_cache == "topk",
        "distill.hidden_loss": cfg.distill.hidden_weight > 0,
        "train.teacher_steps": t == "train",
        "train.teacher_lr": t == "train",
        "data.path": d in ("file", "hf", "disk"),
        "data.hf_config": d == "hf",
        "data.split": d in ("hf", "disk"),
        # a .txt file is all text: no column to choose
        "data.text_column": d in ("hf", "disk") or (d == "file" and not cfg.data.path.strip().lower().endswith(".txt")),
        "data.max_documents": d in ("file", "hf", "disk"),
        "data.toy_seed": d == "toy",
        "data.toy_sentences": d == "toy",
    }
    return rules.get(dotted, True)


def _source(path_field: str, cfg: RunConfig) -> str:
    return cfg.get(path_field.split(".")[0] + ".source")


def path_label(path_field: str, cfg: RunConfig) -> str | None:
    """The label of a field of :data:`PATH_LABELS` for its current source (None: the field is hidden)."""
    return PATH_LABELS[path_field].get(_source(path_field, cfg))


def path_placeholder(path_field: str, cfg: RunConfig) -> str:
    """The grey hint in an empty path field: what kind of path its current source wants."""
    source = _source(path_field, cfg)
    if (path_field, source) == ("data.path", "file"):
        suffixes = _data_file_suffixes()
        return f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
    return _PLACEHOLDERS.get((path_field, source), "")


def path_browse(path_field: str, cfg: RunConfig) -> tuple[str | None, str]:
    """What the field's Browse button chooses for its current source: ("folder" | "file" | None, file filter)."""
    key = (path_field, _source(path_field, cfg))
    if key in _FOLDERS:
        return "folder", ""
    if key == ("teacher.path", "gguf"):
        return "file", "GGUF models (*.gguf)"
    if key == ("data.path", "file"):
        return "file", data_file_filter()
    return None, ""


def data_file_filter() -> str:
    """The data-file dialog's filter: exactly the suffixes the data reader reads."""
    return f"Text data ({' '.join('*' + suffix for suffix in _data_file_suffixes())});;All files (*)"


@functools.cache
def _data_file_suffixes() -> tuple[str, ...]:
    # the reader's own list; its module is light (no torch) but is the engine's, so it loads when first needed
    from workbench.engine.data.sources import FILE_SUFFIXES

    return FILE_SUFFIXES
