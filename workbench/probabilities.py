"""Next-word distributions as numpy arrays: re-softening cached logits, entropies, divergences.

Used where logits have already left the model (Probe events, ``workbench predict``, the
soft-target panel): no torch, no Qt, so both the CLI and the window can afford it.
"""

from __future__ import annotations

import numpy as np

DIVERGENCES = ("KL", "JS", "TV")
_EPS = 1e-12


def soften(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) along the last axis, in float64; -inf logits (masked tokens) get probability 0."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis."""
    p = np.asarray(p, np.float64)
    return -(p * np.log(np.clip(p, _EPS, None))).sum(axis=-1)


def divergence(p: np.ndarray, q: np.ndarray, kind: str = "KL") -> np.ndarray:
    """Row-wise KL(p||q), Jensen-Shannon or total variation between distributions (nats for KL/JS)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if kind == "TV":
        return 0.5 * np.abs(p - q).sum(axis=-1)
    if kind == "JS":
        m = 0.5 * (p + q)
        return 0.5 * divergence(p, m, "KL") + 0.5 * divergence(q, m, "KL")
    if kind != "KL":
        raise ValueError(f"unknown divergence {kind!r}; use one of {DIVERGENCES}")
    ratio = np.log(np.clip(p, _EPS, None)) - np.log(np.clip(q, _EPS, None))
    return np.where(p > 0, p * ratio, 0.0).sum(axis=-1)
