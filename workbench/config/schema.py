"""Run configuration: what a run does, as plain dataclasses (ground floor: no torch, no Qt).

One source of truth for the CLI, the TOML files and the GUI form. Every field
carries its documentation and its allowed values in ``field(metadata=...)``:

- ``help``: one sentence (the GUI shows it as a tooltip, ``workbench presets
  --fields`` prints it);
- ``choices``: the allowed strings, or ``min`` / ``max`` (inclusive bounds) and
  ``min_exclusive`` for numbers; ``zero``: what a 0 means.

``RunConfig.errors()`` checks single fields against that metadata (:mod:`.fields`) and then the
relations between fields (:mod:`.checks`); each problem is a :class:`ConfigError` that names the
field, the value and what is allowed. Checks that need a model or a file on disk (sequence length
above the model's positions, tokenizer compatibility) live with the code that loads them
(``engine/plan.py``) and return the same errors.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import tomli_w

from workbench.config import checks
from workbench.config.fields import (
    child,
    coerce,
    drop_none,
    field_errors,
    field_names,
    from_dict,
)
from workbench.errors import ConfigError

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
TEACHER_CACHES = ("full", "topk")
CACHE_TAILS = ("lowrank", "prior", "bucket")
HIDDEN_LOSSES = ("cosine", "mse")
DATA_SOURCES = ("toy", "file", "hf", "disk", "generated")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FAMILIES = ("llama", "gpt2")
KEEP_CHOICES = ("evenly", "importance")


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
    kv_heads: int = _f(
        0, "Key/value heads for grouped-query attention; 0 means as many as heads.", min=0, max=256, zero="as heads"
    )
    intermediate: int = _f(
        0, "Width of the MLP; 0 means about 8/3 x hidden (llama) or 4 x hidden (gpt2).", min=0, max=65536, zero="auto"
    )
    max_positions: int = _f(
        256, "Longest sequence the model can see (position embeddings / RoPE range).", min=8, max=1_048_576
    )
    tie_embeddings: bool = _f(True, "Share the input embedding and the output head.")
    dropout: float = _f(0.0, "Dropout probability inside the blocks.", min=0.0, max=0.9)


@dataclass
class TeacherConfig:
    """Where the teacher comes from."""

    source: str = _f(
        "train",
        "train: build and train it here (stage 1); local: a save_pretrained folder; hub: a Hugging Face model id; gguf: a .gguf file.",
        choices=TEACHER_SOURCES,
    )
    path: str = _f("", "Folder, hub id or .gguf file, depending on the source (unused when trained here).")
    revision: str = _f("", "Hub revision (branch, tag or commit); empty means the default branch.")
    trust_remote_code: bool = _f(False, "Run modelling code shipped with a hub model. Only for models you trust.")
    arch: ArchConfig = _f(ArchConfig(), "Architecture when the teacher is trained here.")


@dataclass
class StudentConfig:
    """What the student is."""

    source: str = _f(
        "derived",
        "derived: keep some of the teacher's layers; custom: a new model of the same family; local/hub: an existing model.",
        choices=STUDENT_SOURCES,
    )
    keep_layers: int = _f(2, "Derived student: how many teacher layers to keep.", min=1, max=256)
    keep: str = _f(
        "evenly",
        "Derived student: which keep_layers layers. evenly: evenly spaced, first and last included; importance: "
        "the ones whose skipping changes the teacher's next-token distribution most (KL, measured on held-out "
        "blocks when the run starts).",
        choices=KEEP_CHOICES,
    )
    layer_ids: list[int] = _f(
        [], "Derived student: exactly which teacher layers to keep (0-based); overrides keep_layers and keep."
    )
    path: str = _f("", "Folder or hub id when the student is an existing model.")
    arch: ArchConfig = _f(ArchConfig(layers=2, hidden=64, heads=2), "Architecture of a custom student.")


@dataclass
class DistillConfig:
    """The objective: loss = alpha * T^2 * D(teacher_T || student_T) + (1 - alpha) * CE(labels, student)."""

    temperature: float = _f(
        2.0,
        "Softening temperature T applied to both teacher and student logits.",
        min=0.0,
        min_exclusive=True,
        max=100.0,
    )
    alpha: float = _f(
        0.5,
        "Weight of the soft-target (teacher) term; 1 - alpha weighs the hard labels. 0 = no distillation.",
        min=0.0,
        max=1.0,
    )
    divergence: str = _f(
        "forward_kl",
        "Divergence D between the teacher's and the student's softened distributions.",
        choices=DIVERGENCES,
    )
    beta: float = _f(0.5, "JSD only: mixture weight (0 gives forward KL, 1 gives reverse KL).", min=0.0, max=1.0)
    skew: float = _f(0.1, "Skew KL only: how much of the other distribution is mixed in.", min=0.0, max=1.0)
    t_squared: bool = _f(True, "Multiply the soft term by T^2 so its gradients keep their scale when T changes.")
    chunk_positions: int = _f(
        1024,
        "Positions per chunk when computing the loss (bounds its memory); capped at 4M logits a chunk on the CPU, 64M on a GPU.",
        min=1,
        max=1_000_000,
    )
    fused_loss: bool = _f(
        False,
        "Computes the logits a chunk at a time from the final hidden states; same result, less memory.",
    )
    teacher_cache: str = _f(
        "full",
        "full: the teacher runs on every batch and the loss sees its whole distribution. topk: the teacher runs "
        "once over the data before distillation and only its top cache_k tokens per position (plus the tail's "
        "mass and a 16-number sketch of its logits) are kept on disk and reused by later runs. The top-k and "
        "the tail's mass are exact; the tail's shape is an approximation (see cache_tail). Forward KL only.",
        choices=TEACHER_CACHES,
    )
    cache_k: int = _f(
        64,
        "topk cache: teacher tokens kept per position (ids, log-probabilities); the rest is the tail.",
        min=1,
        max=1024,
    )
    cache_tail: str = _f(
        "lowrank",
        "topk cache: how the loss sees the teacher's tokens outside each position's top-k. lowrank: their mass "
        "spread like the teacher's own logits at that position, rebuilt from 16 numbers a position stored with "
        "the cache (its logits projected on their 16 main directions), so the tail's shape follows the context "
        "and T re-tempers it. prior: spread like the teacher's average tail over the cached data, the same "
        "shape everywhere. bucket: one tail bucket, the student's shape inside it left free, re-tempered at T "
        "as if the tail were uniform.",
        choices=CACHE_TAILS,
    )
    transfer_blocks: int = _f(
        0,
        "Distillation reads only the first N training blocks (0 = all of them): scarce transfer data, "
        "where soft targets carry the most that hard labels do not. The teacher stage reads them all.",
        min=0,
        max=1_000_000_000,
        zero="all",
    )
    on_policy: float = _f(
        0.0,
        "On-policy distillation: the fraction lambda of distillation steps whose sequences the student writes "
        "itself (a prompt from a training block, continued by sampling), scored by the teacher on the generated "
        "tokens only, with the soft term alone (no hard labels on the student's own text). 0 = off. Reverse KL "
        "and JSD(beta) are the usual divergences here (mode-seeking: on_policy_divergence), from a student "
        "trained off-policy first (on_policy_start). Generation time is reported apart "
        "(generate_s). Which steps, and the samples, follow from the seed and the step, so a resumed run repeats them.",
        min=0.0,
        max=1.0,
    )
    on_policy_start: float = _f(
        0.0,
        "On-policy: the share of the distillation steps done off-policy first, before any on-policy step "
        "(a warm start: a student that starts random writes gibberish, which teaches it little). From there "
        "each step is on-policy with probability on_policy. 0 = on-policy from the first step. On the built-in "
        "language 0.5 measured best, with on_policy_divergence = reverse_kl and on_policy_sequence_weight = 0.5 for "
        "the truest samples (docs/quality-results.md).",
        min=0.0,
        max=1.0,
    )
    on_policy_divergence: str = _f(
        "same",
        "On-policy: the divergence of the on-policy steps (same = distill.divergence, which the off-policy steps "
        "keep). With a warm start, the usual recipe is forward KL off-policy, then reverse KL or JSD(beta) on "
        "the student's own samples.",
        choices=("same", *DIVERGENCES),
    )
    on_policy_temperature: float = _f(
        1.0, "On-policy: the student's sampling temperature.", min=0.0, min_exclusive=True, max=10.0
    )
    on_policy_top_p: float = _f(
        1.0, "On-policy: nucleus sampling threshold (1 = the whole distribution).", min=0.0, min_exclusive=True, max=1.0
    )
    on_policy_new_tokens: int = _f(
        32, "On-policy: tokens the student generates after each prompt (the loss's targets).", min=1, max=100_000
    )
    on_policy_prompt_tokens: int = _f(
        8,
        "On-policy: the prompt is the first N tokens of each training block; prompt + new tokens is at most train.seq_len.",
        min=1,
        max=100_000,
    )
    on_policy_sequence_weight: float = _f(
        0.0,
        "On-policy: the weight of the sequence-level term (MiniLLM's long-term part of reverse KL). Each sampled "
        "token is also pushed by how far the rest of its sample strays from the teacher (the summed log student - "
        "log teacher of the later tokens, at T = 1, against the batch's other rows): the student learns which "
        "words lead its own text astray, not only each next word. With on_policy_divergence = reverse_kl, 1 is "
        "the whole samples' reverse KL (at temperature 1, sampling temperature 1 and top-p 1). Mode-seeking: its samples get truer, its coverage of the data's other "
        "continuations less (docs/quality-results.md). Needs the logits, so these steps skip fused_loss. 0 = off.",
        min=0.0,
        max=100.0,
    )
    hidden_weight: float = _f(
        0.0,
        "Hidden-state matching (derived students only): adds hidden_weight x the mean, over the student's "
        "layers, of the distance between each student layer's output and the output of the teacher layer it "
        "was copied from, per valid token. 0 = off (the teacher's hidden states are never computed).",
        min=0.0,
        max=1000.0,
    )
    hidden_loss: str = _f(
        "cosine",
        "Hidden-state matching: cosine = 1 - cosine similarity per token (ignores the scale of the stream); "
        "mse = mean squared difference over the hidden dimension.",
        choices=HIDDEN_LOSSES,
    )


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
    min_lr_ratio: float = _f(
        0.1, "The cosine schedule ends at this fraction of the peak learning rate.", min=0.0, max=1.0
    )
    warmup_steps: int = _f(
        30, "Steps of linear warm-up before the cosine decay (at most the stage's steps).", min=0, max=10_000_000
    )
    weight_decay: float = _f(0.01, "AdamW weight decay.", min=0.0, max=10.0)
    grad_clip: float = _f(1.0, "Clip the gradient norm to this value; 0 turns clipping off.", min=0.0, max=1e6)
    log_interval: int = _f(5, "Steps between Step events (loss, lr, tokens/s).", min=1, max=1_000_000)
    eval_interval: int = _f(50, "Steps between held-out evaluations.", min=1, max=1_000_000)
    eval_batches: int = _f(8, "Held-out batches per evaluation.", min=1, max=100_000)
    probe_interval: int = _f(
        25, "Steps between Probe events (next-word distributions for the probe prompts).", min=1, max=1_000_000
    )
    checkpoint_interval: int = _f(
        100,
        "Steps between checkpoints; 0 writes them only when stopped or asked to (Save now).",
        min=0,
        max=10_000_000,
        zero="on stop only",
    )
    probe_prompts: list[str] = _f(
        ["the cat is sitting on the", "the dogs near the house are"],
        "Prompts whose next-word distributions are watched during the run.",
    )
    probe_samples: int = _f(
        16,
        "Continuations the student samples after each probe prompt at every distillation probe (its own seed, the "
        "same at each probe; the training RNG is not touched): the first is shown in the soft-targets panel's "
        "Student's text tab, and on the built-in language all are judged by its grammar.",
        min=0,
        max=256,
        zero="off",
    )
    processes: int = _f(
        1,
        "Processes that train together (data parallel: each reads batch_size sequences of every micro-batch, so a "
        "step sees processes x batch_size). Above 1 the window launches them with torch.distributed.run "
        "(--standalone; gloo on the CPU, one GPU each with NCCL) and follows their run folder; from a terminal, "
        "`torchrun --nproc_per_node N -m workbench.cli run CONFIG --run-dir DIR` decides instead.",
        min=1,
        max=256,
    )
    device: str = _f("auto", "auto picks cuda, then mps, then cpu.", choices=DEVICES)
    precision: str = _f("auto", "auto: bf16 autocast where the device supports it, else fp32.", choices=PRECISIONS)
    compile: bool = _f(
        False,
        "Runs the loss's per-chunk function through torch.compile (the chunked and the fused loss, and the "
        "top-k cache's low-rank loss): the same loss, compiled once at the first step; needs a working compiler "
        "(a C++ compiler on the CPU).",
    )
    seed: int = _f(
        0, "Seed for weights, data order and sampling; the same seed repeats a run on the CPU.", min=0, max=2**32 - 1
    )


@dataclass
class DataConfig:
    """What the models read."""

    source: str = _f(
        "toy",
        "toy: the built-in language; file: .txt/.jsonl/.csv/.parquet; hf: a hub dataset; disk: a save_to_disk folder; generated: text sampled from the teacher.",
        choices=DATA_SOURCES,
    )
    path: str = _f("", "File, folder or hub dataset name, depending on the source.")
    hf_config: str = _f("", "Hub dataset configuration name, if it has several.")
    split: str = _f("train", "Dataset split to read.")
    text_column: str = _f("text", "Column holding the text (jsonl, csv, parquet, datasets).")
    max_documents: int = _f(0, "Read at most this many documents; 0 reads all.", min=0, max=1_000_000_000, zero="all")
    val_fraction: float = _f(0.05, "Fraction of blocks held out for evaluation.", min=0.0, min_exclusive=True, max=0.5)
    toy_seed: int = _f(1234, "Built-in language: seed of the corpus sampler.", min=0, max=2**32 - 1)
    toy_sentences: int = _f(40_000, "Built-in language: sentences in the corpus.", min=100, max=100_000_000)
    gen_prompts: list[str] = _f(
        [], "Generated data: prompts the teacher continues (the chat template is applied for instruct models)."
    )
    gen_samples: int = _f(64, "Generated data: how many samples to draw in all.", min=1, max=10_000_000)
    gen_max_new_tokens: int = _f(64, "Generated data: tokens per sample.", min=1, max=100_000)
    gen_temperature: float = _f(1.0, "Generated data: sampling temperature.", min=0.0, min_exclusive=True, max=10.0)
    gen_top_p: float = _f(0.95, "Generated data: nucleus sampling threshold.", min=0.0, min_exclusive=True, max=1.0)


@dataclass
class RunConfig:
    """Everything a run needs. Saved as ``config.toml`` in each run folder."""

    name: str = _f("run", "Short name used in the run folder's name.")
    runs_dir: str = _f(
        "runs",
        "Folder where run folders are created. A relative path is taken from the folder the workbench was started in.",
    )
    teacher: TeacherConfig = _f(TeacherConfig(), "Teacher.")
    student: StudentConfig = _f(StudentConfig(), "Student.")
    distill: DistillConfig = _f(DistillConfig(), "Distillation objective.")
    train: TrainConfig = _f(TrainConfig(), "Training.")
    data: DataConfig = _f(DataConfig(), "Data.")

    # -- conversion -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, validate: bool = True) -> RunConfig:
        """Build from nested dicts; unknown keys and wrong types raise ConfigError, and so do disallowed
        values unless ``validate`` is False (a form shows those at their fields instead)."""
        config = from_dict(cls, data, prefix="")
        if validate:
            config.validate()
        return config

    def to_toml(self) -> str:
        return tomli_w.dumps(drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str, source: str = "config", *, validate: bool = True) -> RunConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError("", f"{source} is not valid TOML: {err}", "check the line it names") from None
        except RecursionError:
            raise ConfigError(
                "",
                f"{source} nests tables or lists too deeply to be read",
                "a config has sections such as [teacher] and [teacher.arch] holding plain values",
            ) from None
        return cls.from_dict(data, validate=validate)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    def copy(self) -> RunConfig:
        return copy.deepcopy(self)

    # -- access by dotted name -------------------------------------------
    def get(self, dotted: str) -> Any:
        obj: Any = self
        for part in dotted.split("."):
            if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
                raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(field_names(obj))}")
            obj = getattr(obj, part)
        return obj

    def set(self, dotted: str, value: Any) -> None:
        """Set one field, converting strings (as typed on a command line) to its type."""
        parts = dotted.split(".")
        obj: Any = self
        for part in parts[:-1]:
            obj = child(obj, part, dotted)
        name = parts[-1]
        fields = {f.name: f for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {}
        if name in fields and dataclasses.is_dataclass(getattr(obj, name)):
            table = getattr(obj, name)
            raise ConfigError(
                dotted,
                "is a table of fields, not one value",
                f"set one of its fields, e.g. {dotted}.{field_names(table)[0]}=...; its fields: {', '.join(field_names(table))}",
            )
        if name not in fields:
            raise ConfigError(dotted, "unknown field", f"fields here: {', '.join(field_names(obj))}")
        hint = get_type_hints(type(obj))[name]
        setattr(obj, name, coerce(value, hint, dotted))

    def apply_overrides(self, overrides: list[str]) -> None:
        """Apply ``key=value`` strings such as ``distill.temperature=4``."""
        for item in overrides:
            if "=" not in item:
                raise ConfigError(
                    "", f"override {item!r} is not of the form key=value", "e.g. --set distill.temperature=4"
                )
            key, value = item.split("=", 1)
            if not key.strip():
                raise ConfigError("", f"override {item!r} names no field", "e.g. --set distill.temperature=4")
            self.set(key.strip(), value.strip())
        self.validate()

    # -- checks -----------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for the first value that is not allowed."""
        for error in self.errors():
            raise error

    def errors(self) -> list[ConfigError]:
        """Every problem found, in form order (the GUI marks all of them)."""
        errors = list(field_errors(self, ""))
        errors.extend(checks.relation_errors(self))
        return errors
