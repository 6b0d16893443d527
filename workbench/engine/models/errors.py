"""The errors model loading raises (a leaf: every models module and the plan import it)."""

from __future__ import annotations

from safetensors import SafetensorError

from workbench.errors import ConfigError, WorkbenchWarning

UNREADABLE_WEIGHTS = (OSError, SafetensorError, RuntimeError)
"""What reading a missing, damaged or cut-short weights file raises (safetensors' own error is no
OSError; torch.load and a state dict that does not fit raise RuntimeError)."""


class ModelSourceError(ConfigError):
    """A model could not be loaded from where the config says (missing, unreachable, corrupt)."""


class TokenizerMismatchError(ConfigError):
    """The student's tokenizer does not map tokens to the same ids as the teacher's."""


class RemoteCodeWarning(WorkbenchWarning):
    """Issued when a model is loaded with ``trust_remote_code=True``."""
