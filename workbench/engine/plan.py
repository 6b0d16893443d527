"""What a config will build, before anything is built: sizes, memory, structure, tokenizers.

``plan_run(cfg)`` answers in a fraction of a second without loading weights:
model shapes come from configs (``ArchConfig``, a folder's ``config.json``, the
hub cache, or a ``.gguf`` header), parameter counts from models built on the
``meta`` device. Problems are :class:`ConfigError` values in ``Plan.errors`` (field, message and hint, so
the window marks them at their field) and sentences in ``Plan.warnings``;
``plan_run`` itself never raises for anything a user can type. The window's
summary card and architecture view draw a :class:`Plan`; the CLI can print one.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config.checks import by_importance, derived_layers
from workbench.config.schema import DataConfig, RunConfig, TeacherConfig
from workbench.engine.assemble import (
    TEXT_TOKENIZER_VOCAB,
    cached_tokenizer_size,
    data_tokenizer,
    text_tokenizer_entry,
)
from workbench.engine.device import pick_device
from workbench.engine.models.build import hf_config_from_arch
from workbench.engine.models.configs import gguf_config, hub_config, local_config, tokenizer_vocab
from workbench.engine.models.gguf_header import (
    GGUFHeaderError,
)
from workbench.engine.models.sizes import (
    architecture_blocks,
    estimate_training_memory,
    max_positions,
)
from workbench.engine.teacher_cache import bytes_per_position
from workbench.errors import ConfigError, one_line
from workbench.paths import folder_write_problem, resolve_path


@dataclass
class Plan:
    """The answer of :func:`plan_run`. Counts are 0 and lists empty where something could not be worked out."""

    teacher_params: int = 0
    student_params: int = 0
    compression: float = 0.0  # teacher_params / student_params; 0 when unknown
    memory: dict[str, int] = field(default_factory=dict)  # bytes by part, "total" included
    device_label: str = ""
    precision: str = ""
    device_memory: int = 0  # bytes the chosen device has (0 when unknown)
    tokenizer_status: str = ""
    tokenizer_ok: bool | None = None  # None: not known before the run
    # a teacher trained here on a text file: the size of the tokenizer an earlier run trained on it (None: none yet)
    text_tokenizer_size: int | None = None
    teacher_blocks: list[dict] = field(default_factory=list)
    student_blocks: list[dict] = field(default_factory=list)
    kept_layer_ids: list[int] = field(default_factory=list)  # derived students: teacher layer of each student layer
    kept_by_importance: int = 0  # derived students whose layers a run picks by importance: how many (ids unknown yet)
    teacher_summary: str = ""  # "llama · 30 layers · hidden 576 · 9 heads (3 KV) · vocab 49,152"
    student_summary: str = ""
    vocab_size: int = 0
    teacher_cache_bytes_per_token: int = 0  # distill.teacher_cache = "topk": disk bytes per cached position
    warnings: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def plan_run(cfg: RunConfig) -> Plan:
    """Sizes, memory estimate, blocks and tokenizer compatibility of ``cfg``; never raises for user errors."""
    plan = Plan()
    # A shape the config itself refuses (heads that do not divide the width...) is named at its field by
    # RunConfig.errors(); building a model config from it would only add a second, vaguer sentence.
    refused = [e.field for e in cfg.errors()]
    teacher_refused = cfg.teacher.source == "train" and any(f.startswith("teacher.arch.") for f in refused)
    student_refused = cfg.student.source == "custom" and any(f.startswith("student.arch.") for f in refused)
    teacher = None if teacher_refused else _teacher_config(cfg, plan)
    student = _student_config(cfg, teacher, plan) if teacher is not None and not student_refused else None
    if teacher is not None:
        plan.vocab_size = int(teacher.vocab_size)
        plan.teacher_blocks = _blocks(teacher, plan, "teacher")
        plan.teacher_params = sum(b["params"] for b in plan.teacher_blocks)
        plan.teacher_summary = describe_config(teacher)
        _check_positions(cfg, teacher, "teacher", plan)
        if cfg.distill.teacher_cache == "topk":
            k = min(cfg.distill.cache_k, plan.vocab_size)
            plan.teacher_cache_bytes_per_token = bytes_per_position(k, plan.vocab_size)
    if student is not None:
        plan.student_blocks = _blocks(student, plan, "student")
        plan.student_params = sum(b["params"] for b in plan.student_blocks)
        plan.student_summary = describe_config(student)
        if cfg.student.source != "derived":
            _check_positions(cfg, student, "student", plan)
    if plan.teacher_params and plan.student_params:
        plan.compression = plan.teacher_params / plan.student_params
        if plan.compression <= 1.0:
            plan.warnings.append(
                f"The student ({plan.student_params:,} parameters) is not smaller than the teacher ({plan.teacher_params:,})."
            )
    _memory(cfg, student, plan, teacher)
    _tokenizers(cfg, plan)
    _runs_folder(cfg, plan)
    _data_file(cfg, plan, refused)
    if cfg.teacher.trust_remote_code and cfg.teacher.source in ("local", "hub"):
        plan.warnings.append("trust_remote_code is on: Python code shipped with the teacher will run on this machine.")
    if cfg.distill.on_policy_sequence_weight > 0 and not cfg.distill.on_policy > 0:
        plan.warnings.append(
            "The sequence-level weight (distill.on_policy_sequence_weight) acts on on-policy steps only, and the "
            "on-policy fraction (distill.on_policy) is 0: it does nothing. Raise the fraction above 0 to use it."
        )
    return plan


def _data_file(cfg: RunConfig, plan: Plan, refused: list[str]) -> None:
    """A data file the run would refuse at Start (a folder, empty, UTF-16, binary...), named at its field now
    (``refused``: the fields RunConfig.errors() names already, such as a missing path)."""
    if cfg.data.source != "file" or "data.path" in refused:
        return
    from workbench.engine.data.sources import check_file

    try:
        check_file(cfg.data)
    except ConfigError as err:
        plan.errors.append(err)


def _runs_folder(cfg: RunConfig, plan: Plan) -> None:
    """A runs folder the run could not write its folder into, named before Start rather than at it."""
    problem = folder_write_problem(Path(cfg.runs_dir))
    if problem is not None:
        plan.errors.append(
            ConfigError(
                "runs_dir",
                f"a run folder cannot be made in {cfg.runs_dir!r}: {problem}",
                "choose a folder you can write to",
            )
        )


def describe_config(hf_config: Any) -> str:
    """A one-line description of a Hugging Face config's shape."""
    hidden = getattr(hf_config, "hidden_size", None) or getattr(hf_config, "n_embd", 0)
    heads = getattr(hf_config, "num_attention_heads", 0)
    kv = getattr(hf_config, "num_key_value_heads", None)
    head_text = _count(heads, "head") + (f" ({kv} KV)" if kv and kv != heads else "")
    return (
        f"{hf_config.model_type} \u00b7 {_count(hf_config.num_hidden_layers, 'layer')} \u00b7 hidden {hidden} \u00b7 "
        f"{head_text} \u00b7 vocab {hf_config.vocab_size:,}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- teacher ------------------------------------------------------------------------------------


def _teacher_config(cfg: RunConfig, plan: Plan) -> Any | None:
    t = cfg.teacher
    try:
        if t.source == "train":
            plan.text_tokenizer_size = cached_text_tokenizer_size(cfg)
            vocab, pad, bos, eos = _trained_vocabulary(cfg, plan.text_tokenizer_size)
            return hf_config_from_arch(t.arch, vocab, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos)
        if not t.path.strip():
            return None  # RunConfig.errors() already names the empty path
        if t.source == "local":
            return local_config(str(resolve_path(t.path)), "teacher.path", t.trust_remote_code)
        if t.source == "hub":
            config = hub_config(t.path.strip(), t.revision, t.trust_remote_code)
            if config is None:
                plan.warnings.append(
                    f"{t.path.strip()} is not in the local Hugging Face cache: it is downloaded when the run "
                    "starts (needs the internet), so sizes are not known yet."
                )
            return config
        if t.source == "gguf":
            file = resolve_path(t.path)
            if not file.is_file():
                plan.errors.append(
                    ConfigError(
                        "teacher.path", f"{t.path.strip()!r} does not exist", "check the path, or fetch SmolLM2"
                    )
                )
                return None
            return gguf_config(file)
        plan.errors.append(
            ConfigError("teacher.source", f"{t.source!r} is not a teacher source", "use train, local, hub or gguf")
        )
    except Exception as err:  # noqa: BLE001 - every failure here is reported, never raised
        plan.errors.append(_at_field("teacher.path", err))
    return None


def _trained_vocabulary(cfg: RunConfig, cached_size: int | None) -> tuple[int, int, int | None, int | None]:
    if cfg.data.source == "toy":
        tokenizer = _toy_tokenizer()
        return len(tokenizer), tokenizer.pad_token_id or 0, tokenizer.bos_token_id, tokenizer.eos_token_id
    # the BPE tokenizer trained on the text when the run starts (or cached by an earlier run); specials first
    return cached_size or TEXT_TOKENIZER_VOCAB, 0, None, None


def cached_text_tokenizer_size(cfg: RunConfig) -> int | None:
    """The size of the tokenizer an earlier run trained on this text file (assemble.text_tokenizer_entry), which
    this run will load: None when there is none yet, or the data is not a file (a dataset is not opened here)."""
    if cfg.teacher.source != "train" or cfg.data.source != "file":
        return None
    try:
        from workbench.engine.data.sources import open_documents

        identity = open_documents(cfg.data).identity
    except Exception:  # noqa: BLE001 - the data's own problems are reported by _data_file
        return None
    return cached_tokenizer_size(text_tokenizer_entry(identity))


@functools.lru_cache(maxsize=1)
def _toy_tokenizer() -> Any:
    return data_tokenizer(TeacherConfig(source="train"), DataConfig(source="toy"))


# -- student ------------------------------------------------------------------------------------


def _student_config(cfg: RunConfig, teacher: Any, plan: Plan) -> Any | None:
    s = cfg.student
    try:
        if s.source == "derived":
            n_layers = int(teacher.num_hidden_layers)
            if by_importance(s):
                # Which layers is measured when the run starts; the count is all the sizes need (the
                # layers of one model are alike), so any s.keep_layers of them stand in for them here.
                kept = derived_layers(s, n_layers, [0.0] * n_layers)
                plan.kept_by_importance = len(kept)
                return _with_layers(teacher, kept)
            kept = derived_layers(s, n_layers)
            plan.kept_layer_ids = kept
            return _with_layers(teacher, kept)
        if s.source == "custom":
            arch = copy.deepcopy(s.arch)
            arch.family = "gpt2" if teacher.model_type == "gpt2" else "llama"
            pad = teacher.pad_token_id if teacher.pad_token_id is not None else 0
            return hf_config_from_arch(
                arch,
                int(teacher.vocab_size),
                pad_token_id=pad,
                bos_token_id=teacher.bos_token_id,
                eos_token_id=teacher.eos_token_id,
            )
        if not s.path.strip():
            return None
        if s.source == "local":
            return local_config(str(resolve_path(s.path)), "student.path")
        if s.source == "hub":
            config = hub_config(s.path.strip(), "", False)
            if config is None:
                plan.warnings.append(
                    f"{s.path.strip()} is not in the local Hugging Face cache: it is downloaded when the run starts."
                )
            return config
        plan.errors.append(
            ConfigError("student.source", f"{s.source!r} is not a student source", "use derived, custom, local or hub")
        )
    except Exception as err:  # noqa: BLE001
        plan.errors.append(_at_field("student.path" if s.source in ("local", "hub") else "student.source", err))
    return None


def _with_layers(teacher: Any, kept: list[int]) -> Any:
    """The teacher's config with only the kept layers (per-layer lists such as ``layer_types`` follow)."""
    config = copy.deepcopy(teacher)
    n = int(teacher.num_hidden_layers)
    for name, value in list(vars(config).items()):
        if isinstance(value, list) and len(value) == n and name not in ("architectures",):
            setattr(config, name, [value[i] for i in kept])
    config.num_hidden_layers = len(kept)
    return config


# -- sizes and memory ---------------------------------------------------------------------------


def _blocks(hf_config: Any, plan: Plan, role: str) -> list[dict]:
    try:
        key = hf_config.to_json_string(use_diff=False)
        return copy.deepcopy(_cached_blocks(key, hf_config))
    except Exception as err:  # noqa: BLE001
        plan.errors.append(
            ConfigError(
                "",
                f"the {role}'s size could not be worked out from its configuration: {one_line(err)}",
                f"check the {role}'s settings",
            )
        )
        return []


_BLOCKS: dict[str, list[dict]] = {}


def _cached_blocks(key: str, hf_config: Any) -> list[dict]:
    # keyed by the full config JSON: typing in the form re-plans often with the same shapes
    if key not in _BLOCKS:
        if len(_BLOCKS) > 32:
            _BLOCKS.clear()
        _BLOCKS[key] = architecture_blocks(hf_config)
    return _BLOCKS[key]


def _check_positions(cfg: RunConfig, hf_config: Any, role: str, plan: Plan) -> None:
    try:
        limit = max_positions(hf_config)
    except ValueError:
        return
    if cfg.train.seq_len > limit and not (role == "teacher" and cfg.teacher.source == "train"):
        # a teacher trained here is checked by RunConfig.errors() already
        plan.errors.append(
            ConfigError(
                "train.seq_len", f"{cfg.train.seq_len} is above the {role}'s {limit} positions", f"use at most {limit}"
            )
        )


def _memory(cfg: RunConfig, student: Any, plan: Plan, teacher: Any = None) -> None:
    try:
        device = pick_device(cfg.train.device, cfg.train.precision)
    except ConfigError as err:
        plan.errors.append(err)
        plan.device_label, plan.precision = cfg.train.device, cfg.train.precision
        return
    plan.device_label, plan.precision = device.label, device.precision
    plan.device_memory = _device_memory(device.device)
    if student is None or not plan.student_params:
        return
    try:
        plan.memory = estimate_training_memory(
            plan.teacher_params,
            plan.student_params,
            student_hf_config=student,
            batch_size=cfg.train.batch_size,
            seq_len=cfg.train.seq_len,
            vocab_size=plan.vocab_size or int(student.vocab_size),
            precision=device.precision,
            grad_accum=cfg.train.grad_accum,
            chunk_positions=cfg.distill.chunk_positions,
            fused_loss=cfg.distill.fused_loss,
            teacher_cache=cfg.distill.teacher_cache if cfg.distill.alpha > 0 else "full",
            cache_k=min(cfg.distill.cache_k, plan.vocab_size or cfg.distill.cache_k),
            teacher_hidden_size=getattr(teacher, "hidden_size", None) or getattr(teacher, "n_embd", None),
            device_type=device.device.type,
        )
    except Exception as err:  # noqa: BLE001
        plan.warnings.append(f"The memory estimate failed: {one_line(err)}.")
        return
    total = plan.memory.get("total", 0)
    if plan.device_memory and total > 0.9 * plan.device_memory:
        plan.warnings.append(
            f"About {total / 2**30:.1f} GiB is needed but {plan.device_label} has {plan.device_memory / 2**30:.1f} GiB; "
            "lower the batch size or the sequence length."
        )


def _device_memory(device: Any) -> int:
    try:
        if device.type == "cuda":
            import torch

            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type == "cpu":
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError, RuntimeError):
        pass
    return 0


# -- tokenizers ---------------------------------------------------------------------------------


def _tokenizers(cfg: RunConfig, plan: Plan) -> None:
    t, s = cfg.teacher, cfg.student
    if s.source in ("derived", "custom"):
        plan.tokenizer_ok = True
        if t.source == "train":
            known = plan.text_tokenizer_size
            plan.tokenizer_status = (
                "same tokenizer (built-in language)"
                if cfg.data.source == "toy"
                else f"same tokenizer (BPE trained on the data: {known:,} tokens, as an earlier run trained it)"
                if known
                else f"same tokenizer (BPE trained on the data, up to {TEXT_TOKENIZER_VOCAB:,} tokens)"
            )
            if cfg.data.source != "toy" and not known:
                plan.warnings.append(
                    f"Sizes assume {TEXT_TOKENIZER_VOCAB:,} tokens: a small text trains a smaller tokenizer at Start, "
                    "and smaller models."
                )
        else:
            plan.tokenizer_status = (
                "same tokenizer (derived)" if s.source == "derived" else "same tokenizer (the teacher's)"
            )
        return
    if not s.path.strip():
        plan.tokenizer_status = "no student chosen yet"
        return
    teacher_vocab = _teacher_vocab(cfg)
    student_vocab = tokenizer_vocab(s.source, s.path)
    if teacher_vocab is None or student_vocab is None:
        plan.tokenizer_status = "checked when the run starts (a tokenizer is not available yet)"
        return
    if teacher_vocab == student_vocab:
        plan.tokenizer_ok, plan.tokenizer_status = True, f"same tokenizer ({len(teacher_vocab):,} tokens match)"
        return
    differing = sum(
        1
        for token in teacher_vocab.keys() | student_vocab.keys()
        if teacher_vocab.get(token) != student_vocab.get(token)
    )
    plan.tokenizer_ok = False
    plan.tokenizer_status = f"different tokenizers ({differing:,} tokens differ)"
    plan.errors.append(
        ConfigError(
            "student.path",
            f"the student's tokenizer differs from the teacher's in {differing:,} tokens",
            "logit distillation needs the same tokenizer: derive the student or pick one from the teacher's family",
        )
    )


def _teacher_vocab(cfg: RunConfig) -> dict[str, int] | None:
    t = cfg.teacher
    if t.source == "train":
        return dict(_toy_tokenizer().get_vocab()) if cfg.data.source == "toy" else None
    if t.source == "gguf":
        return None  # reading a GGUF vocabulary costs seconds; the run checks it before loading weights
    return tokenizer_vocab(t.source, t.path, t.revision)


def _at_field(field_name: str, err: BaseException) -> ConfigError:
    """Any failure to read a model's configuration, as an error at ``field_name`` (a ConfigError keeps its own)."""
    if isinstance(err, ConfigError):
        return err
    if isinstance(err, GGUFHeaderError):
        return ConfigError(field_name, one_line(err), "choose another .gguf file")
    return ConfigError(
        field_name, f"could not read the model's configuration: {one_line(err)}", "check the path and the model's files"
    )
