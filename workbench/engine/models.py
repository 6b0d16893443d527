"""Teacher and student models: build, load, derive, compare and measure them.

Both are Hugging Face causal LMs (Llama family by default, GPT-2 supported).

- :func:`build_model` makes a randomly initialised model from an :class:`ArchConfig`;
- :func:`load_pretrained` / :func:`load_teacher` load a ``save_pretrained`` folder, a hub id
  or a ``.gguf`` file (see :mod:`workbench.engine.gguf`);
- :func:`derive_student` keeps some of a teacher's layers (embeddings, norms and head copied);
- :func:`check_tokenizers` refuses a student whose token-to-id map differs from the teacher's;
- :func:`count_parameters_for_config`, :func:`architecture_blocks` and
  :func:`estimate_training_memory` answer "how big / how much memory" without allocating weights.

Paths given to loaders may start with ``models:`` (the workbench's models folder, where
``scripts/fetch_smollm2.py`` puts its file) or ``resources:`` (the package's resources folder),
so presets stay portable; see :func:`resolve_model_path`.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from workbench.config import ArchConfig, ConfigError, StudentConfig, TeacherConfig, WorkbenchWarning, resolve_path

from .sizes import one_model_at_a_time
from .sizes import (  # noqa: F401  (re-exported: part of this module's public API)
    architecture_blocks,
    count_parameters,
    count_parameters_for_config,
    estimate_training_memory,
    max_positions,
)

UNREADABLE_WEIGHTS = (OSError, SafetensorError, RuntimeError)
"""What reading a missing, damaged or cut-short weights file raises (safetensors' own error is no
OSError; torch.load and a state dict that does not fit raise RuntimeError)."""


class ModelSourceError(ConfigError):
    """A model could not be loaded from where the config says (missing, unreachable, corrupt)."""


class TokenizerMismatchError(ConfigError):
    """The student's tokenizer does not map tokens to the same ids as the teacher's."""


class RemoteCodeWarning(WorkbenchWarning):
    """Issued when a model is loaded with ``trust_remote_code=True``."""


Warn = Callable[[str], None]
"""Where loading functions send warnings for the user (a run passes its log); None: ``warnings.warn``."""


def warn_user(message: str, on_warning: Warn | None, category: type[Warning] = WorkbenchWarning) -> None:
    if on_warning is not None:
        on_warning(message)
    else:
        warnings.warn(message, category, stacklevel=3)


# -- paths --------------------------------------------------------------------------------

def resolve_model_path(text: str) -> Path:
    """See :func:`workbench.config.resolve_path` (``models:`` and ``resources:`` prefixes)."""
    return resolve_path(text)


# -- building -------------------------------------------------------------------------------

def _default_intermediate(arch: ArchConfig) -> int:
    if arch.intermediate:
        return arch.intermediate
    if arch.family == "gpt2":
        return 4 * arch.hidden
    # SwiGLU has three matrices, so 8/3 x hidden keeps the MLP's size near a 4 x hidden GELU MLP.
    return max(8, 8 * round(8 * arch.hidden / 3 / 8))


def hf_config_from_arch(
    arch: ArchConfig,
    vocab_size: int,
    *,
    pad_token_id: int,
    bos_token_id: int | None,
    eos_token_id: int | None,
) -> PretrainedConfig:
    """The Hugging Face config for a model of this shape and vocabulary."""
    if arch.family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=arch.hidden,
            n_layer=arch.layers,
            n_head=arch.heads,
            n_positions=arch.max_positions,
            n_inner=_default_intermediate(arch),
            resid_pdrop=arch.dropout,
            embd_pdrop=arch.dropout,
            attn_pdrop=arch.dropout,
            tie_word_embeddings=arch.tie_embeddings,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
        )
    if arch.family != "llama":
        raise ConfigError("arch.family", f"{arch.family!r} is not a supported family", "use llama or gpt2")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads or arch.heads,
        intermediate_size=_default_intermediate(arch),
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=arch.tie_embeddings,
        rms_norm_eps=1e-5,
        attention_dropout=arch.dropout,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )


@one_model_at_a_time
def build_model(
    arch: ArchConfig,
    vocab_size: int,
    *,
    pad_token_id: int = 0,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised fp32 model; the same seed gives the same weights.

    The global torch RNG is left as it was, so building a model does not shift the data order.
    """
    config = hf_config_from_arch(arch, vocab_size, pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model


# -- deriving a student ----------------------------------------------------------------------

_LAYER_LISTS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers")


def _layer_list_name(model: nn.Module) -> str:
    """Dotted name of the ModuleList holding the transformer blocks."""
    modules = dict(model.named_modules())
    for name in _LAYER_LISTS:
        if isinstance(modules.get(name), nn.ModuleList):
            return name
    raise ConfigError(
        "student.source",
        f"cannot find the transformer layers of a {type(model).__name__}",
        "derive students from Llama-family or GPT-2 models, or use a custom student",
    )


def keep_layer_ids(n_teacher_layers: int, keep: int) -> list[int]:
    """``keep`` evenly spaced layer indices out of ``n_teacher_layers``, first and last included.

    Keeping one layer keeps the first (its input is the embeddings, which are copied too).
    """
    if not 1 <= keep <= n_teacher_layers:
        raise ConfigError("student.keep_layers", f"{keep} is not between 1 and the teacher's {n_teacher_layers} layers", f"choose 1 to {n_teacher_layers}")
    if keep == 1:
        return [0]
    return [round(i * (n_teacher_layers - 1) / (keep - 1)) for i in range(keep)]


@one_model_at_a_time
def derive_student(teacher: PreTrainedModel, layer_ids: list[int]) -> PreTrainedModel:
    """A copy of ``teacher`` with only the layers ``layer_ids`` (in that order).

    Embeddings, final norm, head and the kept layers are deep copies (no storage is shared
    with the teacher). The student is fp32 (its weights are the optimizer's master copy),
    trainable, in train mode, on the teacher's device. Each attention module's ``layer_idx``
    (its slot in the KV cache) is renumbered, so the student generates.
    """
    n_layers = teacher.config.num_hidden_layers
    bad = [i for i in layer_ids if not 0 <= i < n_layers]
    if not layer_ids or bad or len(set(layer_ids)) != len(layer_ids):
        raise ConfigError(
            "student.layer_ids",
            f"{list(layer_ids)} is not a list of distinct layers of a {n_layers}-layer teacher",
            f"use distinct numbers from 0 to {n_layers - 1}",
        )
    parent_name, _, attr = _layer_list_name(teacher).rpartition(".")
    parent = teacher.get_submodule(parent_name)
    layers = getattr(parent, attr)
    # Copying the teacher with its layer list swapped for the kept layers copies nothing else
    # twice and needs no random init (which costs seconds for a 100M-parameter student).
    setattr(parent, attr, nn.ModuleList([layers[i] for i in layer_ids]))
    try:
        student = copy.deepcopy(teacher)
    finally:
        setattr(parent, attr, layers)
    config = student.config
    config.num_hidden_layers = len(layer_ids)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in layer_ids]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    for new_index, layer in enumerate(getattr(student.get_submodule(parent_name), attr)):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    student.to(torch.float32)
    config.dtype = torch.float32
    student.requires_grad_(True)
    for param in student.parameters():
        param.grad = None  # a teacher trained here may still hold its last gradients
    student.train()
    return student


def _family_of(model: PreTrainedModel) -> str:
    return "gpt2" if model.config.model_type == "gpt2" else "llama"


def make_student(cfg: StudentConfig, teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0) -> PreTrainedModel:
    """The student the config asks for, compatible with ``teacher`` and its ``tokenizer``.

    derived: the teacher's layers ``cfg.layer_ids`` or ``keep_layer_ids(n, cfg.keep_layers)``;
    custom: ``build_model(cfg.arch)`` in the teacher's family and vocabulary; local/hub: a
    pretrained model whose tokenizer must match (checked before its weights are loaded).
    """
    n_layers = teacher.config.num_hidden_layers
    if cfg.source == "derived":
        if cfg.layer_ids:
            layer_ids = list(cfg.layer_ids)
            if len(layer_ids) >= n_layers:
                raise ConfigError("student.layer_ids", f"keeps {len(layer_ids)} of the teacher's {n_layers} layers, so the student is not smaller", f"keep fewer than {n_layers}")
        else:
            if cfg.keep_layers >= n_layers:
                raise ConfigError("student.keep_layers", f"{cfg.keep_layers} is not fewer than the teacher's {n_layers} layers, so the student would not be smaller", f"choose 1 to {n_layers - 1}")
            layer_ids = keep_layer_ids(n_layers, cfg.keep_layers)
        return derive_student(teacher, layer_ids)
    if cfg.source == "custom":
        arch = copy.deepcopy(cfg.arch)
        arch.family = _family_of(teacher)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (teacher.config.pad_token_id or 0)
        model = build_model(
            arch,
            teacher.config.vocab_size,
            pad_token_id=pad,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            seed=seed,
        )
        return model.to(next(teacher.parameters()).device)
    if cfg.source in ("local", "hub"):
        student_tok = load_tokenizer(cfg.source, cfg.path, field="student.path")
        check_tokenizers(tokenizer, student_tok)
        model, _ = load_pretrained(cfg.source, cfg.path, field="student.path")
        model.train()
        return model.to(next(teacher.parameters()).device)
    raise ConfigError("student.source", f"{cfg.source!r} is not a student source", "use derived, custom, local or hub")


# -- tokenizers ----------------------------------------------------------------------------

def check_tokenizers(teacher_tok: PreTrainedTokenizerBase, student_tok: PreTrainedTokenizerBase) -> None:
    """Raise :class:`TokenizerMismatchError` unless both map every token to the same id."""
    teacher_vocab, student_vocab = teacher_tok.get_vocab(), student_tok.get_vocab()
    if teacher_vocab == student_vocab:
        return
    differing = [t for t in teacher_vocab.keys() | student_vocab.keys() if teacher_vocab.get(t) != student_vocab.get(t)]
    # The example is the differing token with the lowest teacher id: stable and usually a common word.
    differing.sort(key=lambda t: (teacher_vocab.get(t, 1 << 62), student_vocab.get(t, 1 << 62), t))
    token = differing[0]
    where_t = f"id {teacher_vocab[token]} in the teacher" if token in teacher_vocab else "missing from the teacher"
    where_s = f"id {student_vocab[token]} in the student" if token in student_vocab else "missing from the student"
    raise TokenizerMismatchError(
        "student.path",
        f"the student's tokenizer differs from the teacher's in {len(differing)} of {len(teacher_vocab | student_vocab)} tokens "
        f"(token {token!r} is {where_t} and {where_s})",
        "logit distillation needs the same tokenizer: derive the student from the teacher or pick a student from the same model family",
    )


# -- loading ---------------------------------------------------------------------------------

def _offline() -> bool:
    """Offline mode as the environment says now (huggingface_hub reads it only at import)."""
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return constants.HF_HUB_OFFLINE or env in ("1", "ON", "YES", "TRUE")


def _check_local_folder(folder: Path, shown: str, field: str) -> None:
    if not folder.exists():
        raise ModelSourceError(field, f"the model folder {shown!r} does not exist", "check the path, or pick the folder a save_pretrained call wrote")
    if folder.is_file():
        hint = "choose the gguf source for .gguf files" if folder.suffix.lower() == ".gguf" else "choose the folder that holds config.json"
        raise ModelSourceError(field, f"{shown!r} is a file, not a model folder", hint)
    if not (folder / "config.json").is_file():
        raise ModelSourceError(field, f"{shown!r} has no config.json, so it is not a save_pretrained model folder", "choose the folder that save_pretrained wrote (it holds config.json and the weights)")


def _hub_probe(model_id: str, revision: str, field: str) -> None:
    """Ask the hub about ``model_id`` once, quickly, so an unreachable hub fails in seconds."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    offline = ModelSourceError(
        field,
        f"{model_id!r} is not in the local Hugging Face cache and the hub cannot be reached",
        f"connect to the internet once to download it, e.g. `hf download {model_id}`; or use a local folder or a .gguf file; "
        "`python scripts/fetch_smollm2.py` fetches a small demo model",
    )
    if _offline():
        raise offline
    try:
        HfApi().model_info(model_id, revision=revision or None, timeout=5)
    except GatedRepoError:
        raise ModelSourceError(field, f"{model_id!r} is a gated model and this machine has no access to it", "accept its licence on the hub and log in with `hf auth login`") from None
    except RevisionNotFoundError:
        raise ModelSourceError(field, f"revision {revision!r} of {model_id!r} does not exist on the hub", "leave the revision empty for the default branch") from None
    except RepositoryNotFoundError:
        raise ModelSourceError(field, f"{model_id!r} is not a model on the Hugging Face hub (or it is private)", "check the spelling, e.g. HuggingFaceTB/SmolLM2-135M-Instruct") from None
    except Exception:  # noqa: BLE001  (any network failure means the same thing to the user)
        raise offline from None


def _from_hf(source: str, path: str, revision: str, trust_remote_code: bool, field: str, load):
    """Call ``load(where, **kwargs)`` for a local folder or a hub id.

    A hub id is tried from the local cache first (no network at all); only when it is not
    there is the hub asked, once and with a short timeout, before the real download.
    """
    if source == "local":
        folder = resolve_model_path(path)
        _check_local_folder(folder, path, field)
        return load(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)
    if source != "hub":
        raise ModelSourceError(field, f"{source!r} is not a model source", "use local, hub or gguf")
    model_id = path.strip()
    kwargs: dict[str, Any] = {"revision": revision or None, "trust_remote_code": trust_remote_code}
    try:
        return load(model_id, local_files_only=True, **kwargs)
    except OSError:
        _hub_probe(model_id, revision, field)
    return load(model_id, **kwargs)


def load_tokenizer(source: str, path: str, *, revision: str = "", trust_remote_code: bool = False, field: str = "teacher.path") -> PreTrainedTokenizerBase:
    """Only the tokenizer of a model (cheap: lets a tokenizer check run before weights load)."""
    if source == "gguf":
        from .gguf import load_gguf_tokenizer

        return load_gguf_tokenizer(path, field=field)
    try:
        tokenizer = _from_hf(source, path, revision, trust_remote_code, field, AutoTokenizer.from_pretrained)
    except ConfigError:
        raise
    except (OSError, ValueError, TypeError) as err:
        raise ModelSourceError(field, f"the tokenizer of {path!r} could not be loaded: {_first_line(err)}", "a model folder needs its tokenizer files (save the tokenizer with save_pretrained next to the model)") from None
    _ensure_pad_token(tokenizer)
    return tokenizer


@one_model_at_a_time
def load_pretrained(
    source: str,
    path: str,
    *,
    revision: str = "",
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    field: str = "teacher.path",
    on_warning: Warn | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from ``source`` ("local", "hub" or "gguf").

    local: a ``save_pretrained`` folder holding the model and its tokenizer. hub: a model id,
    from the local cache when it is there, else downloaded (offline, this fails within seconds
    with :class:`ModelSourceError`). gguf: a ``.gguf`` file, dequantized and cached as
    safetensors (:func:`workbench.engine.gguf.load_gguf`). ``trust_remote_code=True`` warns
    (:func:`warn_user`: to ``on_warning``, else a :class:`RemoteCodeWarning`). A tokenizer without a pad token gets its EOS token as pad token.
    ``field`` names the config field that errors should point at.
    """
    if trust_remote_code:
        warn_user(f"trust_remote_code is on: modelling code shipped with {path!r} will run on this machine; "
                  "do this only for models you trust", on_warning, RemoteCodeWarning)
    if source == "gguf":
        from .gguf import load_gguf

        return load_gguf(path, dtype=dtype, field=field, on_warning=on_warning)
    tokenizer = load_tokenizer(source, path, revision=revision, trust_remote_code=trust_remote_code, field=field)

    def load_model(where: str, **kwargs: Any) -> PreTrainedModel:
        return AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)

    try:
        model = _from_hf(source, path, revision, trust_remote_code, field, load_model)
    except ConfigError:
        raise
    except ValueError as err:
        hint = "if the model needs its own code, tick trust_remote_code (only for models you trust)" if not trust_remote_code else "check that it is a causal language model"
        raise ModelSourceError(field, f"{path!r} could not be loaded as a causal language model: {_first_line(err)}", hint) from None
    except UNREADABLE_WEIGHTS as err:
        raise ModelSourceError(field, f"the weights of {path!r} could not be read: {_first_line(err)}",
                               "the files may be damaged or cut short: download or save the model again") from None
    return model, tokenizer


def load_teacher(cfg: TeacherConfig, on_warning: Warn | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The teacher for a local, hub or gguf source (a "train" teacher is built by the trainer)."""
    if cfg.source == "train":
        raise ValueError("a teacher trained here is built by the training code, not loaded")
    return load_pretrained(cfg.source, cfg.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code,
                           on_warning=on_warning)


def _ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    # Batching needs a pad id; positions holding it are masked out of every loss, so EOS is safe.
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def _first_line(err: BaseException) -> str:
    """The first sentence of an error's text (a line ending in ':' runs on into the next one)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1]}"
    return text if len(text) <= 300 else text[:297] + "..."


# -- devices -----------------------------------------------------------------------------------

def describe_device(device: str) -> tuple[torch.device, str]:
    """The torch device for a config value ("auto" picks cuda, then mps, then cpu) and a label."""
    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", "is cuda but PyTorch sees no CUDA GPU here", "use device auto or cpu")
        dev = torch.device(name)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return torch.device("cuda", index), f"{props.name} (cuda:{index}, {props.total_memory / 2**30:.0f} GiB)"
    if name == "mps":
        if not _mps_available():
            raise ConfigError("train.device", "is mps but PyTorch sees no Apple GPU here", "use device auto or cpu")
        return torch.device("mps"), "Apple GPU (mps)"
    if name == "cpu":
        return torch.device("cpu"), f"CPU ({torch.get_num_threads()} threads)"
    raise ConfigError("train.device", f"{device!r} is not a device", "use auto, cpu, cuda or mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
