"""Losses with PyTorch's semantics: cross_entropy = nn.CrossEntropyLoss, mse = nn.MSELoss."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError

REDUCTIONS = ("mean", "sum", "none")
# How far from 1 the entries of a probability vector may sum (float32 softmax outputs are within ~1e-6).
PROBABILITY_ATOL = 1e-5


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
        _check_class_indices(targets, logits.shape[:1], num_classes)
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


# ---------------------------------------------------------------------------------------------------------
# Homework problem 1: input checks that teach, cross-entropy from probabilities, and the analytic gradients.
# The gradients are written from the derivation (not autodiff), so jax.grad and finite differences can check them.


def _preview(values) -> str:
    """A short rendering of a small array for messages: its entries, or its shape when large."""
    array = np.asarray(values)
    if array.size > 20:
        return f"array of shape {array.shape}"
    if array.ndim == 0:
        return f"{array.item()!r}"
    if array.ndim == 1:
        return "[" + ", ".join(f"{float(v):g}" for v in array) + "]"
    return "[" + ", ".join(_preview(row) for row in array) + "]"


def describe_probabilities(probs, num_classes: int | None = None, atol: float = PROBABILITY_ATOL) -> list[str]:
    """Everything that keeps ``probs`` (C,) or (N, C) from being probability vectors; an empty list if nothing.

    A probability vector over ``num_classes`` classes has one entry per class, every entry in [0, 1], and
    entries summing to 1 within ``atol``.
    """
    array = np.asarray(probs, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        return [f"it has shape {array.shape}, but probabilities are a vector (C,) or a batch of vectors (N, C)"]
    problems = []
    count = array.shape[-1]
    if num_classes is not None and count != num_classes:
        more_or_fewer = "more" if count > num_classes else "fewer"
        problems.append(f"it has {count} entries, {abs(count - num_classes)} {more_or_fewer} than the "
                        f"{num_classes} classes (a softmax over {num_classes} logits gives one entry per class)")
    if not np.isfinite(array).all():
        problems.append("it contains NaN or infinite entries")
        return problems
    outside = np.argwhere((array < 0) | (array > 1))
    if len(outside):
        where = tuple(int(i) for i in outside[0])
        entry = where[0] if array.ndim == 1 else where
        problems.append(f"{len(outside)} entr{'y lies' if len(outside) == 1 else 'ies lie'} outside [0, 1] "
                        f"(entry {entry} is {array[where]:g}); a probability cannot be negative or above 1")
    sums = array.sum(axis=-1)
    wrong = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if len(wrong):
        if array.ndim == 1:
            problems.append(f"its entries sum to {sums:.6g}, not 1 (tolerance {atol:g})")
        else:
            problems.append(f"{len(wrong)} of {len(sums)} rows do not sum to 1 (tolerance {atol:g}); "
                            f"row {int(wrong[0])} sums to {sums[wrong[0]]:.6g}")
    return problems


def check_probabilities(probs, num_classes: int | None = None, atol: float = PROBABILITY_ATOL,
                        name: str = "probabilities") -> jax.Array:
    """Return ``probs`` as an array if it is a probability vector (or a batch of them); else raise InputError."""
    problems = describe_probabilities(probs, num_classes, atol)
    if problems:
        over = f" over {num_classes} classes" if num_classes is not None else ""
        raise InputError(f"{name} {_preview(probs)} is not a probability vector{over}: " + "; ".join(problems))
    return jnp.asarray(probs)


def describe_label(label, num_classes: int) -> list[str]:
    """Everything that keeps ``label`` from being one class out of ``num_classes``; an empty list if nothing.

    A label is a class index (an integer in [0, num_classes)) or a one-hot vector: num_classes entries,
    exactly one equal to 1 and the rest 0.
    """
    array = np.asarray(label)
    if array.ndim == 0:
        if not np.issubdtype(array.dtype, np.integer):
            return [f"a class index must be an integer, got {array.item()!r}"]
        if not 0 <= int(array) < num_classes:
            return [f"class index {int(array)} is outside [0, {num_classes}) (there are {num_classes} classes)"]
        return []
    if array.ndim != 1:
        return [f"it has shape {array.shape}, but a label is a class index or a one-hot vector ({num_classes},)"]
    array = array.astype(np.float64)
    problems = []
    if array.size != num_classes:
        problems.append(f"it has {array.size} entries, but a one-hot label over {num_classes} classes has "
                        f"{num_classes}, one per class")
    if not np.isfinite(array).all():
        problems.append("it contains NaN or infinite entries")
        return problems
    ones, zeros = int(np.sum(array == 1.0)), int(np.sum(array == 0.0))
    if ones != 1 or ones + zeros != array.size:
        if not array.size:
            fault = "it is empty"
        elif ones == 0:
            fault = f"its largest entry is {array.max():g} and no entry equals 1"
        elif ones > 1:
            fault = f"{ones} entries equal 1"
        else:
            fault = f"besides the 1, {array.size - 1 - zeros} entries are not 0"
        problems.append(f"it is not one-hot: {fault}; a one-hot label has exactly one entry equal to 1 and all "
                        "others 0")
    return problems


def label_to_class(label, num_classes: int) -> int:
    """The class a label names (class index or one-hot vector); InputError if it names none."""
    problems = describe_label(label, num_classes)
    if problems:
        raise InputError(f"label {_preview(label)} is not a valid label over {num_classes} classes: "
                         + "; ".join(problems))
    array = np.asarray(label)
    return int(array) if array.ndim == 0 else int(np.argmax(array))


def _check_class_indices(targets: jax.Array, shape: tuple, num_classes: int) -> None:
    """Shape and range of class-index targets; the range only for concrete values (checked with numpy, so a
    concrete array closed over inside jit is checked too instead of raising a ConcretizationTypeError)."""
    if targets.shape != shape:
        raise InputError(f"class-index targets must have shape {shape}, got {targets.shape}")
    if _is_concrete(targets) and targets.size:
        values = np.asarray(targets)
        if values.min() < 0 or values.max() >= num_classes:
            raise InputError(f"class-index targets must lie in [0, {num_classes}), "
                             f"got values from {int(values.min())} to {int(values.max())}")


def _target_distribution(targets, like: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Targets as per-row class weights y (N, C): one-hot of class indices, or probability targets as given."""
    targets = jnp.asarray(targets)
    num_classes = like.shape[-1]
    if jnp.issubdtype(targets.dtype, jnp.integer):
        _check_class_indices(targets, like.shape[:-1], num_classes)
        y = jax.nn.one_hot(targets, num_classes, dtype=like.dtype)
    else:
        if targets.shape != like.shape:
            raise InputError(f"probability targets must have shape {like.shape}, got {targets.shape}")
        y = targets.astype(like.dtype)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InputError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / num_classes
    return y


def _batch_scale(reduction: str, num_rows: int) -> float:
    """d(reduced loss)/d(one row's loss): 1/N for "mean" over rows, 1 for "sum" and "none"."""
    return 1.0 / num_rows if reduction == "mean" else 1.0


def _as_rows(probs: jax.Array, targets) -> tuple[jax.Array, jax.Array, bool]:
    """A single vector (C,) with a scalar/one-vector target becomes a batch of one row."""
    probs = jnp.asarray(probs)
    if probs.ndim == 1:
        return probs[None], jnp.asarray(targets)[None], True
    if probs.ndim != 2:
        raise InputError(f"probabilities must have shape (C,) or (N, C), got {probs.shape}")
    return probs, jnp.asarray(targets), False


def cross_entropy_from_probabilities(probs: jax.Array, targets, reduction: str = "mean", *, check: bool = True,
                                     atol: float = PROBABILITY_ATOL) -> jax.Array:
    """Cross-entropy of predicted probabilities (homework 1A): -sum_k y_k ln(p_k), i.e. -ln p_true for a label.

    probs is (C,) or (N, C); targets are class indices (scalar or (N,)) or probability targets of probs' shape.
    With ``check`` (outside jit) probs must be probability vectors; check=False evaluates the formula on any
    positive numbers, e.g. to show what a malformed vector gives. "mean" averages over rows.
    """
    _check_reduction(reduction)
    if check and _is_concrete(probs):
        check_probabilities(probs)
    rows, targets, single = _as_rows(probs, targets)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        _check_class_indices(targets, rows.shape[:1], rows.shape[-1])
        losses = -jnp.log(jnp.take_along_axis(rows, targets[:, None], axis=-1)[:, 0])
    else:
        y = _target_distribution(targets, rows)
        used = y != 0  # 0 * ln 0 counts as 0, and its gradient stays finite
        losses = -jnp.where(used, y * jnp.log(jnp.where(used, rows, 1.0)), 0.0).sum(axis=-1)
    if single and reduction == "none":
        return losses[0]
    return _reduce(losses, reduction)


def cross_entropy_grad_probabilities(probs: jax.Array, targets, reduction: str = "mean") -> jax.Array:
    """d cross_entropy_from_probabilities / d p_k = -y_k / p_k (0 where y_k = 0), times 1/N for "mean".

    For a label: -1/p_true at the true class and 0 elsewhere. "none" gives each row's own gradient.
    """
    _check_reduction(reduction)
    rows, targets, single = _as_rows(probs, targets)
    y = _target_distribution(targets, rows)
    used = y != 0
    grad = jnp.where(used, -y / jnp.where(used, rows, 1.0), 0.0) * _batch_scale(reduction, rows.shape[0])
    return grad[0] if single else grad


def cross_entropy_grad_logits(logits: jax.Array, targets: jax.Array, reduction: str = "mean",
                              label_smoothing: float = 0.0) -> jax.Array:
    """d cross_entropy / d z = softmax(z) * sum_k y_k - y, i.e. softmax(z) - onehot(label), times 1/N for "mean".

    Derivation: L = -sum_k y_k (z_k - logsumexp(z)), and d logsumexp(z)/d z_j = softmax(z)_j. Label smoothing
    replaces y by (1 - eps) y + eps / C, as nn.CrossEntropyLoss does. "none" gives each row's own gradient.
    """
    _check_reduction(reduction)
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise InputError(f"logits must have shape (N, C), got {logits.shape}")
    y = _target_distribution(targets, logits, label_smoothing)
    probs = jax.nn.softmax(logits, axis=-1)
    return (probs * y.sum(axis=-1, keepdims=True) - y) * _batch_scale(reduction, logits.shape[0])


def mse_grad(pred: jax.Array, target: jax.Array, reduction: str = "mean") -> jax.Array:
    """d mse / d pred = 2 (pred - target), divided by the number of elements for "mean" (nn.MSELoss)."""
    _check_reduction(reduction)
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.shape != target.shape:
        raise InputError(f"mse: prediction shape {pred.shape} differs from target shape {target.shape}")
    scale = 1.0 / max(pred.size, 1) if reduction == "mean" else 1.0
    return 2.0 * (pred - target) * scale


def softmax_backward(probs: jax.Array, grad_probs: jax.Array) -> jax.Array:
    """The chain rule through p = softmax(z) along the last axis: dL/dz_j = p_j (dL/dp_j - sum_k p_k dL/dp_k).

    That is the softmax Jacobian diag(p) - p p^T (symmetric) applied to dL/dp.
    """
    probs, grad_probs = jnp.asarray(probs), jnp.asarray(grad_probs)
    return probs * (grad_probs - (probs * grad_probs).sum(axis=-1, keepdims=True))


def mse_grad_logits(logits: jax.Array, target: jax.Array, reduction: str = "mean") -> jax.Array:
    """d mse(softmax(z), target) / d z: MSE on the predicted probabilities (homework 1B), back through softmax.

    Per row: dL/dz_j = p_j (g_j - sum_k p_k g_k) with g = 2 (p - y) / n. For a one-hot y and the true class
    t this is dL/dz_t = -2/n p_t ((1 - p_t)^2 + sum_{k != t} p_k^2): it vanishes as p_t -> 0.
    """
    logits = jnp.asarray(logits)
    probs = jax.nn.softmax(logits, axis=-1)
    return softmax_backward(probs, mse_grad(probs, target, reduction))


__all__ = ["cross_entropy", "mse", "accuracy_count", "REDUCTIONS", "PROBABILITY_ATOL",
           "describe_probabilities", "check_probabilities", "describe_label", "label_to_class",
           "cross_entropy_from_probabilities", "cross_entropy_grad_probabilities", "cross_entropy_grad_logits",
           "mse_grad", "softmax_backward", "mse_grad_logits"]
