"""Losses with PyTorch's semantics: cross_entropy = nn.CrossEntropyLoss, mse = nn.MSELoss."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxhw.errors import InputError

REDUCTIONS = ("mean", "sum", "none")


def _is_concrete(x) -> bool:
    """True outside jit, where values can be checked without slowing the compiled step."""
    return not isinstance(x, jax.core.Tracer)


def _reduce(values: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: jax.Array, targets: jax.Array, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> jax.Array:
    """nn.CrossEntropyLoss on logits (N, C): targets are class indices (N,) or class probabilities (N, C).

    Softmax is inside the loss (as log_softmax, which stays finite for huge logits), so models end in
    raw logits. "mean" averages over the batch, as PyTorch does.
    """
    _check_reduction(reduction)
    logits = jnp.asarray(logits)
    targets = jnp.asarray(targets)
    if logits.ndim != 2:
        raise InputError(f"logits must have shape (N, C), got {logits.shape}")
    num_classes = logits.shape[-1]
    if not 0.0 <= label_smoothing <= 1.0:
        raise InputError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if targets.shape != logits.shape[:1]:
            raise InputError(f"class-index targets must have shape {logits.shape[:1]}, got {targets.shape}")
        if _is_concrete(targets) and targets.size and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            raise InputError(f"class-index targets must lie in [0, {num_classes}), "
                             f"got values from {int(targets.min())} to {int(targets.max())}")
        nll = -jnp.take_along_axis(log_probs, targets[:, None], axis=-1)[:, 0]
        if label_smoothing:
            nll = (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=-1)
        return _reduce(nll, reduction)
    if targets.shape != logits.shape:
        raise InputError(f"probability targets must have the logits' shape {logits.shape}, got {targets.shape}")
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    return _reduce(-(targets * log_probs).sum(axis=-1), reduction)


def mse(pred: jax.Array, target: jax.Array, reduction: str = "mean") -> jax.Array:
    """nn.MSELoss: squared error averaged over every element ("mean"), summed, or elementwise."""
    _check_reduction(reduction)
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.shape != target.shape:
        raise InputError(f"mse: prediction shape {pred.shape} differs from target shape {target.shape}")
    return _reduce((pred - target) ** 2, reduction)


def accuracy_count(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Number of rows whose largest logit is the label."""
    return (jnp.argmax(logits, axis=-1) == labels).sum()


__all__ = ["cross_entropy", "mse", "accuracy_count", "REDUCTIONS"]
