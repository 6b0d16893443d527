"""Run configuration: what a run does, as plain dataclasses.

One source of truth for the CLI, the TOML files and the GUI form. Every field
carries its documentation and its allowed values in ``field(metadata=...)``:

- ``help``: one sentence (the GUI shows it as a tooltip, ``workbench presets
  --fields`` prints it);
- ``choices``: the allowed strings, or ``min`` / ``max`` (inclusive bounds) and
  ``min_exclusive`` for numbers.

``validate()`` checks single fields against that metadata and then the
relations between fields; it raises :class:`ConfigError`, whose message names
the field, the value and what is allowed, so the CLI and the GUI can show it
as is. Checks that need a model or a file on disk (sequence length above the
model's positions, tokenizer compatibility) live with the code that loads them
and raise the same error.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import tomli_w

RESOURCES = Path(__file__).resolve().parent / "resources"
PRESETS_DIR = RESOURCES / "presets"

DIVERGENCES = (
    "forward_kl",
    "reverse_kl",
    "jsd",
    "skew_forward_kl",
    "skew_reverse_kl",
    "tv",
)
TEACHER_SOURCES = ("train", "local", "hub", "gguf")
STUDENT_SOURCES = ("derived", "custom", "local", "hub")
DATA_SOURCES = ("toy", "file", "hf", "disk", "generated")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FAMILIES = ("llama", "gpt2")


class WorkbenchWarning(UserWarning):
    """Something the user should know that does not stop the work (remote code will run, a cache
    could not be written). The CLI prints it as one ``warning:`` line; inside a run it becomes a
    warning ``Log`` event instead, so it is also in the run's record and the window's log."""


class ConfigError(ValueError):
    """A value a user chose is not allowed. ``str(err)`` is one readable line.

    ``field`` is the dotted path (``distill.temperature``) when the error is about
    one field, so the GUI can mark it; ``hint`` says what to do about it.
    """

    def __init__(self, field: str, message: str, hint: str = ""):
        self.field = field
        self.message = message
        self.hint = hint
        text = f"{field}: {message}" if field else message
        super().__init__(text + (f" ({hint})" if hint else ""))


def resolve_path(text: str) -> Path:
    """A path as written in a config, made real.

    ``models:NAME`` is the workbench's models folder (``$WORKBENCH_HOME/models``, where
    ``scripts/fetch_smollm2.py`` puts files); ``resources:REL`` is the package's own
    resources folder; anything else is expanded (``~``) and taken as is. The prefixes
    keep presets portable across machines.
    """
    from workbench import paths

    text = text.strip()
    if text.startswith("models:"):
        return paths.home() / "models" / text[len("models:"):].lstrip("/\\")
    if text.startswith("resources:"):
        return RESOURCES / text[len("resources:"):].lstrip("/\\")
    return Path(text).expanduser()


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its documentation and allowed values (``min``, ``max``, ``choices``; ``zero``:
    what a 0 means, shown in the window's box instead of the digit)."""
    meta["help"] = help
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        value = default
        return field(default_factory=lambda: copy.deepcopy(value), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ArchConfig:
    """The shape of a model built from scratch (a Hugging Face config is made from it)."""

    family: str = _f("llama", "Model family: llama (RoPE, RMSNorm, SwiGLU) or gpt2.", choices=FAMILIES)
    layers: int = _f(4, "Number of transformer blocks.", min=1, max=256)
    hidden: int = _f(128, "Width of the residual stream (hidden size).", min=8, max=16384)
    heads: int = _f(4, "Attention heads; must divide the hidden size.", min=1, max=256)
    kv_heads: int = _f(0, "Key/value heads for grouped-query attention; 0 means as many as heads.", min=0, max=256, zero="as heads")
    intermediate: int = _f(0, "Width of the MLP; 0 means about 8/3 x hidden (llama) or 4 x hidden (gpt2).", min=0, max=65536, zero="auto")
    max_positions: int = _f(256, "Longest sequence the model can see (position embeddings / RoPE range).", min=8, max=1_048_576)
    tie_embeddings: bool = _f(True, "Share the input embedding and the output head.")
    dropout: float = _f(0.0, "Dropout probability inside the blocks.", min=0.0, max=0.9)


@dataclass
class TeacherConfig:
    """Where the teacher comes from."""

    source: str = _f("train", "train: build and train it here (stage 1); local: a save_pretrained folder; hub: a Hugging Face model id; gguf: a .gguf file.", choices=TEACHER_SOURCES)
    path: str = _f("", "Folder, hub id or .gguf file, depending on the source (unused when trained here).")
    revision: str = _f("", "Hub revision (branch, tag or commit); empty means the default branch.")
    trust_remote_code: bool = _f(False, "Run modelling code shipped with a hub model. Only for models you trust.")
    arch: ArchConfig = _f(ArchConfig(), "Architecture when the teacher is trained here.")


@dataclass
class StudentConfig:
    """What the student is."""

    source: str = _f("derived", "derived: keep some of the teacher's layers; custom: a new model of the same family; local/hub: an existing model.", choices=STUDENT_SOURCES)
    keep_layers: int = _f(2, "Derived student: how many teacher layers to keep (evenly spaced).", min=1, max=256)
    layer_ids: list[int] = _f([], "Derived student: exactly which teacher layers to keep (0-based); overrides keep_layers.")
    path: str = _f("", "Folder or hub id when the student is an existing model.")
    arch: ArchConfig = _f(ArchConfig(layers=2, hidden=64, heads=2), "Architecture of a custom student.")


@dataclass
class DistillConfig:
    """The objective: loss = alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE(labels, student)."""

    temperature: float = _f(2.0, "Softening temperature T applied to both teacher and student logits.", min=0.0, min_exclusive=True, max=100.0)
    alpha: float = _f(0.5, "Weight of the soft-target (teacher) term; 1 - alpha weighs the hard labels. 0 = no distillation.", min=0.0, max=1.0)
    divergence: str = _f("forward_kl", "Divergence D between the teacher's and the student's softened distributions.", choices=DIVERGENCES)
    beta: float = _f(0.5, "JSD only: mixture weight (0 gives forward KL, 1 gives reverse KL).", min=0.0, max=1.0)
    skew: float = _f(0.1, "Skew KL only: how much of the other distribution is mixed in.", min=0.0, max=1.0)
    t_squared: bool = _f(True, "Multiply the soft term by T^2 so its gradients keep their scale when T changes.")
    chunk_positions: int = _f(1024, "Positions per chunk when computing the loss (bounds its memory).", min=1, max=1_000_000)


@dataclass
class TrainConfig:
    """How long, how fast, where."""

    teacher_steps: int = _f(300, "Optimizer steps of stage 1 when the teacher is trained here.", min=0, max=10_000_000)
    teacher_lr: float = _f(3e-3, "Peak learning rate of stage 1.", min=0.0, min_exclusive=True, max=1.0)
    max_steps: int = _f(300, "Optimizer steps of the distillation stage.", min=1, max=10_000_000)
    batch_size: int = _f(16, "Sequences per micro-batch.", min=1, max=65536)
    grad_accum: int = _f(1, "Micro-batches per optimizer step.", min=1, max=4096)
    seq_len: int = _f(64, "Tokens per training sequence.", min=2, max=1_048_576)
    lr: float = _f(3e-3, "Peak learning rate of the student.", min=0.0, min_exclusive=True, max=1.0)
    min_lr_ratio: float = _f(0.1, "The cosine schedule ends at this fraction of the peak learning rate.", min=0.0, max=1.0)
    warmup_steps: int = _f(30, "Steps of linear warm-up before the cosine decay (at most the stage's steps).", min=0, max=10_000_000)
    weight_decay: float = _f(0.01, "AdamW weight decay.", min=0.0, max=10.0)
    grad_clip: float = _f(1.0, "Clip the gradient norm to this value; 0 turns clipping off.", min=0.0, max=1e6)
    log_interval: int = _f(5, "Steps between Step events (loss, lr, tokens/s).", min=1, max=1_000_000)
    eval_interval: int = _f(50, "Steps between held-out evaluations.", min=1, max=1_000_000)
    eval_batches: int = _f(8, "Held-out batches per evaluation.", min=1, max=100_000)
    probe_interval: int = _f(25, "Steps between Probe events (next-word distributions for the probe prompts).", min=1, max=1_000_000)
    checkpoint_interval: int = _f(100, "Steps between checkpoints; 0 writes them only when stopped or asked to (Save now).", min=0, max=10_000_000, zero="on stop only")
    probe_prompts: list[str] = _f(["the cat is sitting on the", "the dogs near the house are"], "Prompts whose next-word distributions are watched during the run.")
    device: str = _f("auto", "auto picks cuda, then mps, then cpu.", choices=DEVICES)
    precision: str = _f("auto", "auto: bf16 autocast where the device supports it, else fp32.", choices=PRECISIONS)
    seed: int = _f(0, "Seed for weights, data order and sampling; the same seed repeats a run on the CPU.", min=0, max=2**32 - 1)


@dataclass
class DataConfig:
    """What the models read."""

    source: str = _f("toy", "toy: the built-in language; file: .txt/.jsonl/.csv/.parquet; hf: a hub dataset; disk: a save_to_disk folder; generated: text sampled from the teacher.", choices=DATA_SOURCES)
    path: str = _f("", "File, folder or hub dataset name, depending on the source.")
    hf_config: str = _f("", "Hub dataset configuration name, if it has several.")
    split: str = _f("train", "Dataset split to read.")
    text_column: str = _f("text", "Column holding the text (jsonl, csv, parquet, datasets).")
    max_documents: int = _f(0, "Read at most this many documents; 0 reads all.", min=0, max=1_000_000_000, zero="all")
    val_fraction: float = _f(0.05, "Fraction of blocks held out for evaluation.", min=0.0, min_exclusive=True, max=0.5)
    toy_seed: int = _f(1234, "Built-in language: seed of the corpus sampler.", min=0, max=2**32 - 1)
    toy_sentences: int = _f(40_000, "Built-in language: sentences in the corpus.", min=100, max=100_000_000)
    gen_prompts: list[str] = _f([], "Generated data: prompts the teacher continues (the chat template is applied for instruct models).")
    gen_samples: int = _f(64, "Generated data: how many samples to draw in all.", min=1, max=10_000_000)
    gen_max_new_tokens: int = _f(64, "Generated data: tokens per sample.", min=1, max=100_000)
    gen_temperature: float = _f(1.0, "Generated data: sampling temperature.", min=0.0, min_exclusive=True, max=10.0)
    gen_top_p: float = _f(0.95, "Generated data: nucleus sampling threshold.", min=0.0, min_exclusive=True, max=1.0)


@dataclass
class RunConfig:
    """Everything a run needs. Saved as ``config.toml`` in each run folder."""

    name: str = _f("run", "Short name used in the run folder's name.")
    runs_dir: str = _f("runs", "Folder where run folders are created.")
    teacher: TeacherConfig = _f(TeacherConfig(), "Teacher.")
    student: StudentConfig = _f(StudentConfig(), "Student.")
    distill: DistillConfig = _f(DistillConfig(), "Distillation objective.")
    train: TrainConfig = _f(TrainConfig(), "Training.")
    data: DataConfig = _f(DataConfig(), "Data.")

    # -- conversion -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, validate: bool = True) -> "RunConfig":
        """Build from nested dicts; unknown keys and wrong types raise ConfigError, and so do disallowed
        values unless ``validate`` is False (a form shows those at their fields instead)."""
        config = _from_dict(cls, data, prefix="")
        if validate:
            config.validate()
        return config

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str, source: str = "config", *, validate: bool = True) -> "RunConfig":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError("", f"{source} is not valid TOML: {err}", "check the line it names") from None
        return cls.from_dict(data, validate=validate)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    def copy(self) -> "RunConfig":
        return copy.deepcopy(self)

    # -- access by dotted name -------------------------------------------
    def get(self, dotted: str) -> Any:
        obj: Any = self
        for part in dotted.split("."):
            if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
                raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(_field_names(obj))}")
            obj = getattr(obj, part)
        return obj

    def set(self, dotted: str, value: Any) -> None:
        """Set one field, converting strings (as typed on a command line) to its type."""
        parts = dotted.split(".")
        obj: Any = self
        for part in parts[:-1]:
            obj = _child(obj, part, dotted)
        name = parts[-1]
        fields = {f.name: f for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {}
        if name not in fields or dataclasses.is_dataclass(getattr(obj, name)):
            raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(_field_names(obj))}")
        hint = get_type_hints(type(obj))[name]
        setattr(obj, name, _coerce(value, hint, dotted))

    def apply_overrides(self, overrides: list[str]) -> None:
        """Apply ``key=value`` strings such as ``distill.temperature=4``."""
        for item in overrides:
            if "=" not in item:
                raise ConfigError("", f"override {item!r} is not of the form key=value", "e.g. --set distill.temperature=4")
            key, value = item.split("=", 1)
            self.set(key.strip(), value.strip())
        self.validate()

    # -- checks -----------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for the first value that is not allowed."""
        for error in self.errors():
            raise error

    def errors(self) -> list[ConfigError]:
        """Every problem found, in form order (the GUI marks all of them)."""
        errors = list(_field_errors(self, ""))
        errors.extend(self._relation_errors())
        return errors

    def _relation_errors(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        t, s, tr, d = self.teacher, self.student, self.train, self.data
        for prefix, arch in (("teacher.arch", t.arch), ("student.arch", s.arch)):
            if arch.hidden % arch.heads:
                errors.append(ConfigError(f"{prefix}.heads", f"{arch.heads} heads do not divide hidden size {arch.hidden}", "pick a divisor of the hidden size"))
            kv = arch.kv_heads or arch.heads
            if arch.heads % kv:
                errors.append(ConfigError(f"{prefix}.kv_heads", f"{kv} key/value heads do not divide {arch.heads} heads", "pick a divisor of the number of heads"))
            if arch.family == "llama" and (arch.hidden // arch.heads) % 2:
                errors.append(ConfigError(f"{prefix}.heads", f"head size {arch.hidden // arch.heads} is odd; rotary embeddings need an even head size", "change hidden or heads"))
        if t.source != "train" and not t.path.strip():
            errors.append(ConfigError("teacher.path", f"is empty but the teacher source is {t.source!r}", "give a folder, a hub id or a .gguf file"))
        if t.source == "gguf" and t.path and not t.path.lower().endswith(".gguf"):
            errors.append(ConfigError("teacher.path", f"{t.path!r} is not a .gguf file", "choose a file ending in .gguf, or change the teacher source"))
        if t.source in ("local", "gguf") and t.path and not resolve_path(t.path).exists():
            hint = "fetch it first: python scripts/fetch_smollm2.py (or the Fetch button in the window)" if t.path.startswith("models:") else "check the path"
            errors.append(ConfigError("teacher.path", f"{t.path!r} does not exist", hint))
        if s.source in ("local", "hub") and not s.path.strip():
            errors.append(ConfigError("student.path", f"is empty but the student source is {s.source!r}", "give a folder or a hub id"))
        if s.source == "local" and s.path and not resolve_path(s.path).exists():
            errors.append(ConfigError("student.path", f"{s.path!r} does not exist", "check the path"))
        if s.source == "derived":
            if t.source == "train":
                if s.layer_ids:
                    bad = [i for i in s.layer_ids if i < 0 or i >= t.arch.layers]
                    if bad:
                        errors.append(ConfigError("student.layer_ids", f"{bad} are not layers of a {t.arch.layers}-layer teacher", f"use numbers from 0 to {t.arch.layers - 1}"))
                    if len(set(s.layer_ids)) != len(s.layer_ids):
                        errors.append(ConfigError("student.layer_ids", f"{s.layer_ids} repeats a layer", "list each layer once"))
                    if len(s.layer_ids) >= t.arch.layers:
                        errors.append(ConfigError("student.layer_ids", f"keeps {len(s.layer_ids)} of {t.arch.layers} teacher layers, so the student is not smaller", f"keep fewer than {t.arch.layers}"))
                elif s.keep_layers >= t.arch.layers:
                    errors.append(ConfigError("student.keep_layers", f"{s.keep_layers} is not fewer than the teacher's {t.arch.layers} layers, so the student would not be smaller", f"choose 1 to {t.arch.layers - 1}"))
        if s.source == "custom" and t.source == "train" and s.arch.family != t.arch.family:
            errors.append(ConfigError("student.arch.family", f"{s.arch.family!r} differs from the teacher's {t.arch.family!r}", "a custom student uses the teacher's family"))
        if t.source == "train":
            if tr.teacher_steps < 1:
                errors.append(ConfigError("train.teacher_steps", "is 0 but the teacher is trained here", "give it at least 1 step, or load a trained teacher"))
            if tr.seq_len > t.arch.max_positions:
                errors.append(ConfigError("train.seq_len", f"{tr.seq_len} is above the teacher's {t.arch.max_positions} positions", f"use at most {t.arch.max_positions}"))
        if s.source == "custom" and tr.seq_len > s.arch.max_positions:
            errors.append(ConfigError("train.seq_len", f"{tr.seq_len} is above the student's {s.arch.max_positions} positions", f"use at most {s.arch.max_positions}, or raise student.arch.max_positions"))
        if d.source == "file":
            if not d.path.strip():
                errors.append(ConfigError("data.path", "is empty but the data source is a file", "choose a .txt, .jsonl, .csv or .parquet file"))
            elif not resolve_path(d.path).exists():
                errors.append(ConfigError("data.path", f"{d.path!r} does not exist", "check the path"))
        if d.source in ("hf", "disk") and not d.path.strip():
            errors.append(ConfigError("data.path", f"is empty but the data source is {d.source!r}", "give a dataset name or a save_to_disk folder"))
        if d.source == "disk" and d.path and not resolve_path(d.path).exists():
            errors.append(ConfigError("data.path", f"{d.path!r} does not exist", "check the path"))
        if d.source == "generated" and not any(p.strip() for p in d.gen_prompts):
            errors.append(ConfigError("data.gen_prompts", "is empty but the data is generated by the teacher", "give at least one prompt"))
        if d.source == "generated" and self.teacher.source == "train":
            errors.append(ConfigError("data.source", "generated text needs a pretrained teacher to write it, and this teacher is trained here",
                                      "load a teacher (local, hub or .gguf), or choose another data source"))
        if not self.name.strip() or any(c in self.name for c in "/\\:"):
            errors.append(ConfigError("name", f"{self.name!r} cannot be part of a folder name", "use letters, digits, '-' and '_'"))
        return errors


# -- presets ----------------------------------------------------------------

def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_description(name: str) -> str:
    """The first comment line of a preset file."""
    for line in (PRESETS_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_config(name_or_path: str | Path, *, validate: bool = True) -> RunConfig:
    """A preset name (``toy``) or a path to a TOML file.

    ``validate=False`` accepts values the run would refuse (a model file not fetched yet, an alpha of 2):
    for the window, which marks them at their fields, and for the CLI, which checks after ``--set``."""
    path = Path(name_or_path).expanduser()
    if not path.suffix and not path.exists():
        candidate = PRESETS_DIR / f"{name_or_path}.toml"
        if not candidate.exists():
            raise ConfigError("", f"{name_or_path!r} is neither a preset nor a file", f"presets: {', '.join(preset_names())}")
        path = candidate
    if path.is_dir():
        raise ConfigError("", f"{str(path)!r} is a folder, not a config file", "give a preset name or a path to a .toml file")
    if not path.is_file():
        raise ConfigError("", f"config file {str(path)!r} does not exist", "give a preset name or a path to a .toml file")
    return RunConfig.from_toml(read_config_text(path), source=str(path), validate=validate)


def read_config_text(path: Path) -> str:
    """A config file's text; unreadable or non-UTF-8 files are a ConfigError, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("", f"{str(path)!r} is not a UTF-8 text file", "a config is a .toml text file, e.g. one saved by the window or by `workbench run`") from None
    except OSError as err:
        raise ConfigError("", f"{str(path)!r} cannot be read: {err.strerror or err}", "check the file's permissions") from None


def field_help(dotted: str) -> str:
    """The documentation of a field, for tooltips and ``--help``."""
    return field_meta(dotted).get("help", "")


def field_meta(dotted: str) -> dict[str, Any]:
    cls: Any = RunConfig
    meta: dict[str, Any] = {}
    for part in dotted.split("."):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise KeyError(dotted)
        meta = dict(fields[part].metadata)
        cls = get_type_hints(cls)[part]
    return meta


def diff_configs(a: RunConfig, b: RunConfig) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for each field that differs."""
    out: list[tuple[str, Any, Any]] = []

    def walk(x: dict, y: dict, prefix: str) -> None:
        for key in x:
            name = f"{prefix}{key}"
            if isinstance(x[key], dict):
                walk(x[key], y[key], name + ".")
            elif x[key] != y[key]:
                out.append((name, x[key], y[key]))

    walk(a.to_dict(), b.to_dict(), "")
    return out


def overrides_between(base: RunConfig, config: RunConfig) -> list[str]:
    """``key=value`` strings that turn ``base`` into ``config`` (for "copy command")."""
    items = []
    for name, _, value in diff_configs(base, config):
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        items.append(f"{name}={text}")
    return items


# -- helpers ----------------------------------------------------------------

def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []


def _child(obj: Any, part: str, dotted: str) -> Any:
    if not dataclasses.is_dataclass(obj) or part not in _field_names(obj):
        raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(_field_names(obj))}")
    child = getattr(obj, part)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(dotted, "unknown field", f"{part} has no sub-fields")
    return child


def _coerce(value: Any, hint: Any, dotted: str) -> Any:
    """Convert a TOML or command-line value to the field's type, or raise ConfigError."""
    origin = get_origin(hint)
    if origin is list:
        (item_type,) = get_args(hint)
        if isinstance(value, str):
            value = [v for v in (p.strip() for p in value.split(",")) if v] if value.strip() else []
            if item_type is str:
                return value
        if not isinstance(value, list):
            raise ConfigError(dotted, f"{value!r} is not a list", "write a list, e.g. [1, 2] in TOML or 1,2 with --set")
        return [_coerce(v, item_type, dotted) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(dotted, f"{value!r} is not true or false", "write true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(dotted, f"{value!r} is not a whole number", "write e.g. 100")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(dotted, f"{value!r} is not a whole number", "write e.g. 100")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(dotted, f"{value!r} is not a number", "write e.g. 0.5")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(dotted, f"{value!r} is not a number", "write e.g. 0.5")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(dotted, f"{value!r} is not text", "quote it in TOML")
    raise TypeError(f"unsupported field type {hint!r} for {dotted}")


def _from_dict(cls: Any, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip("."), f"should be a table of fields, got {data!r}", "see `workbench presets --fields`")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}", "unknown field", f"fields here: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def _field_errors(obj: Any, prefix: str):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _field_errors(value, name + ".")
            continue
        meta = f.metadata
        if "choices" in meta and value not in meta["choices"]:
            yield ConfigError(name, f"{value!r} is not one of {', '.join(meta['choices'])}", "pick one of those")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value:  # NaN
                yield ConfigError(name, "is not a number", "write a finite number")
                continue
            low, high = meta.get("min"), meta.get("max")
            if low is not None:
                if meta.get("min_exclusive") and value <= low:
                    yield ConfigError(name, f"{value} must be greater than {low}", f"use a value above {low}")
                elif value < low:
                    yield ConfigError(name, f"{value} is below the minimum {low}", f"use {low} or more")
            if high is not None and value > high:
                yield ConfigError(name, f"{value} is above the maximum {high}", f"use {high} or less")


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
