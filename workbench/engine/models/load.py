"""Loading pretrained models and their tokenizers: a local ``save_pretrained`` folder, a hub id (local
cache first, then one quick probe of the hub, so offline fails in seconds), or a ``.gguf`` file
(:mod:`workbench.engine.models.gguf`).

Paths may start with ``models:`` or ``resources:`` (:func:`workbench.paths.resolve_path`).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from workbench.config.schema import TeacherConfig
from workbench.engine.models.errors import (
    UNREADABLE_WEIGHTS,
    ModelSourceError,
    RemoteCodeWarning,
)
from workbench.engine.models.gguf import load_gguf, load_gguf_tokenizer
from workbench.engine.models.sizes import one_model_at_a_time
from workbench.engine.models.tokenizers import ensure_pad_token
from workbench.errors import ConfigError, Warn, one_line, warn_user
from workbench.paths import resolve_path


def _offline() -> bool:
    """Offline mode as the environment says now (huggingface_hub reads it only at import)."""
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return constants.HF_HUB_OFFLINE or env in ("1", "ON", "YES", "TRUE")


def _check_local_folder(folder: Path, shown: str, field: str) -> None:
    if not folder.exists():
        raise ModelSourceError(
            field,
            f"the model folder {shown!r} does not exist",
            "check the path, or pick the folder a save_pretrained call wrote",
        )
    if folder.is_file():
        hint = (
            "choose the gguf source for .gguf files"
            if folder.suffix.lower() == ".gguf"
            else "choose the folder that holds config.json"
        )
        raise ModelSourceError(field, f"{shown!r} is a file, not a model folder", hint)
    if not (folder / "config.json").is_file():
        raise ModelSourceError(
            field,
            f"{shown!r} has no config.json, so it is not a save_pretrained model folder",
            "choose the folder that save_pretrained wrote (it holds config.json and the weights)",
        )
    try:  # transformers' own message for this is about tokenizers, cut off mid-sentence
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError):
        raise ModelSourceError(
            field,
            f"the config.json of {shown!r} is not valid JSON",
            "save_pretrained writes it: save the model there again, or restore the file",
        ) from None


def _check_hub_id(model_id: str, field: str) -> None:
    """A hub id the hub could hold (``owner/name``: letters, digits, '-', '_', '.'), before any cache or network."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        raise ModelSourceError(
            field,
            f"{model_id!r} is not a valid Hugging Face model id",
            "a hub id looks like owner/name (e.g. HuggingFaceTB/SmolLM2-135M-Instruct); for a folder or a .gguf "
            "file choose the local or gguf source",
        ) from None


def _hub_probe(model_id: str, revision: str, field: str) -> None:
    """Ask the hub about ``model_id`` once, quickly, so an unreachable hub fails in seconds."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

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
        raise ModelSourceError(
            field,
            f"{model_id!r} is a gated model and this machine has no access to it",
            "accept its licence on the hub and log in with `hf auth login`",
        ) from None
    except RevisionNotFoundError:
        raise ModelSourceError(
            field,
            f"revision {revision!r} of {model_id!r} does not exist on the hub",
            "leave the revision empty for the default branch",
        ) from None
    except RepositoryNotFoundError:
        raise ModelSourceError(
            field,
            f"{model_id!r} is not a model on the Hugging Face hub (or it is private)",
            "check the spelling, e.g. HuggingFaceTB/SmolLM2-135M-Instruct",
        ) from None
    except Exception:  # noqa: BLE001  (any network failure means the same thing to the user)
        raise offline from None


def _from_hf(source: str, path: str, revision: str, trust_remote_code: bool, field: str, load):
    """Call ``load(where, **kwargs)`` for a local folder or a hub id.

    A hub id is tried from the local cache first (no network at all); only when it is not
    there is the hub asked, once and with a short timeout, before the real download.
    """
    if source == "local":
        folder = resolve_path(path)
        _check_local_folder(folder, path, field)
        return load(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)
    if source != "hub":
        raise ModelSourceError(field, f"{source!r} is not a model source", "use local, hub or gguf")
    model_id = path.strip()
    _check_hub_id(model_id, field)
    kwargs: dict[str, Any] = {"revision": revision or None, "trust_remote_code": trust_remote_code}
    try:
        return load(model_id, local_files_only=True, **kwargs)
    except OSError:
        _hub_probe(model_id, revision, field)
    return load(model_id, **kwargs)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
TOKENIZER_PATTERNS = ("*.model", "*.tiktoken", "vocab*", "tokenizer*")
"""A save_pretrained folder's tokenizer is in at least one file like these (SentencePiece ``*.model``,
tiktoken files, vocabularies); a folder with none of them has no tokenizer."""


def _check_local_tokenizer(folder: Path, shown: str, field: str) -> None:
    """A model folder (:func:`_check_local_folder`) with tokenizer files: without them transformers' error is
    a long, cut-off text."""
    _check_local_folder(folder, shown, field)
    if not any(path.is_file() for pattern in TOKENIZER_PATTERNS for path in folder.glob(pattern)):
        raise ModelSourceError(
            field,
            f"{shown!r} has no tokenizer files (such as {', '.join(TOKENIZER_FILES)})",
            "save the tokenizer with save_pretrained next to the model",
        )


def load_tokenizer(
    source: str, path: str, *, revision: str = "", trust_remote_code: bool = False, field: str = "teacher.path"
) -> PreTrainedTokenizerBase:
    """Only the tokenizer of a model (cheap: lets a tokenizer check run before weights load)."""
    if source == "gguf":
        return load_gguf_tokenizer(path, field=field)
    if source == "local":
        _check_local_tokenizer(resolve_path(path), path, field)
    try:
        tokenizer = _from_hf(source, path, revision, trust_remote_code, field, AutoTokenizer.from_pretrained)
    except ConfigError:
        raise
    except (OSError, ValueError, TypeError) as err:
        raise ModelSourceError(
            field,
            f"the tokenizer of {path!r} could not be loaded: {one_line(err)}",
            "a model folder needs its tokenizer files (save the tokenizer with save_pretrained next to the model)",
        ) from None
    ensure_pad_token(tokenizer)
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
        warn_user(
            f"trust_remote_code is on: modelling code shipped with {path!r} will run on this machine; "
            "do this only for models you trust",
            on_warning,
            RemoteCodeWarning,
        )
    if source == "gguf":
        return load_gguf(path, dtype=dtype, field=field, on_warning=on_warning)
    tokenizer = load_tokenizer(source, path, revision=revision, trust_remote_code=trust_remote_code, field=field)

    def load_model(where: str, **kwargs: Any) -> PreTrainedModel:
        return AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)

    try:
        model = _from_hf(source, path, revision, trust_remote_code, field, load_model)
    except ConfigError:
        raise
    except pickle.UnpicklingError:
        # torch's own message advises turning weights_only off, the one thing not to do with a file of unknown origin
        raise ModelSourceError(
            field,
            f"the weights of {path!r} are a pickle file that does not hold plain tensors (damaged, or holding code), "
            "and the workbench never runs code from a model file",
            "save the model as safetensors (save_pretrained writes model.safetensors) and load that",
        ) from None
    except ValueError as err:
        hint = (
            "if the model needs its own code, tick trust_remote_code (only for models you trust)"
            if not trust_remote_code
            else "check that it is a causal language model"
        )
        raise ModelSourceError(
            field, f"{path!r} could not be loaded as a causal language model: {one_line(err)}", hint
        ) from None
    except UNREADABLE_WEIGHTS as err:
        raise ModelSourceError(
            field,
            f"the weights of {path!r} could not be read: {one_line(err)}",
            "the files may be damaged or cut short: download or save the model again",
        ) from None
    return model, tokenizer


def load_teacher(cfg: TeacherConfig, on_warning: Warn | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The teacher for a local, hub or gguf source (a "train" teacher is built by the trainer)."""
    if cfg.source == "train":
        raise ValueError("a teacher trained here is built by the training code, not loaded")
    return load_pretrained(
        cfg.source, cfg.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code, on_warning=on_warning
    )
