"""Homework problem 1C computed: why there is no ``nn.Softmax()`` before ``nn.CrossEntropyLoss()``.

(a) CrossEntropyLoss on logits is exactly log_softmax followed by NLL; (b) softmax then log overflows in float32
where log_softmax does not; (c) with an extra softmax the loss of 10 classes is confined to
[ln(e + 9) - 1, ln(e + 9)] = [1.461, 2.461] and its logit gradient passes through a second softmax Jacobian,
which vanishes on confidently right and confidently wrong examples alike (``double_softmax_evidence``);
(d) the homework MLP trained both ways over several seeds, compared by the paired difference
(``extra_softmax_training``).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxhw.configs import HOMEWORK_TRUE_CLASS
from jaxhw.data.images import load_train_test
from jaxhw.errors import InputError
from jaxhw.intervals import ACCURACY_RANGE, mean_interval, paired_difference, verdict
from jaxhw.losses import cross_entropy, mse
from jaxhw.models.mlp import MLP
from jaxhw.training import Objective, classification, fit
from jaxhw.training.state import create_train_states

NUM_CLASSES = 10
# (b): logits around 1000; the true class sits 123 below the largest, so its softmax underflows float32.
OVERFLOW_OFFSETS = (0.0, -5.0, 3.0, -120.0, 2.0, 1.0, -1.0, 4.0, -2.0, 0.0)
OVERFLOW_CENTER = 1000.0
# (c): the true class's logit minus every other's (all others equal), from confidently wrong to confidently right.
MARGINS = (-10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0)


def _nll(log_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """nn.NLLLoss: minus the mean of the log-probabilities picked by the labels."""
    return -jnp.take_along_axis(log_probs, labels[:, None], axis=-1).mean()


def log_softmax_nll_evidence(seed: int = 0, batch: int = 64) -> dict:
    """1C(a): cross_entropy(logits) against log_softmax followed by NLL, on random float32 logits.

    Both run op by op (not fused by jit); the float64 value mean(logsumexp(z) - z_label) is the reference.
    """
    rng = np.random.default_rng(seed)
    logits64 = 3.0 * rng.standard_normal((batch, NUM_CLASSES))
    labels = rng.integers(0, NUM_CLASSES, batch)
    logits = jnp.asarray(logits64, jnp.float32)
    ce = float(cross_entropy(logits, jnp.asarray(labels, jnp.int32)))
    nll = float(_nll(jax.nn.log_softmax(logits), jnp.asarray(labels, jnp.int32)))
    top = logits64.max(axis=1)
    reference = float(np.mean(top + np.log(np.exp(logits64 - top[:, None]).sum(axis=1))
                              - logits64[np.arange(batch), labels]))
    return {"batch": batch, "cross_entropy": ce, "log_softmax_then_nll": nll, "abs_difference": abs(ce - nll),
            "float64_reference": reference}


def overflow_evidence(true_class: int = HOMEWORK_TRUE_CLASS) -> dict:
    """1C(b): logits around 1000 in float32: softmax then log gives inf or NaN, log_softmax stays finite."""
    offsets = np.asarray(OVERFLOW_OFFSETS)
    logits = jnp.asarray(OVERFLOW_CENTER + offsets, jnp.float32)
    naive_softmax = jnp.exp(logits) / jnp.exp(logits).sum()  # exp(1000) overflows: inf / inf
    # The exact value from the offsets alone in float64 (softmax ignores a constant shift).
    shifted = offsets - offsets.max()
    exact = float(np.log(np.exp(shifted).sum()) - shifted[true_class])
    return {
        "logits": np.asarray(logits).tolist(), "true_class": true_class,
        "naive_softmax_then_log": float(-jnp.log(naive_softmax[true_class])),
        "softmax_then_log": float(-jnp.log(jax.nn.softmax(logits)[true_class])),
        "softmax_of_true_class": float(jax.nn.softmax(logits)[true_class]),
        "log_softmax": float(-jax.nn.log_softmax(logits)[true_class]),
        "cross_entropy": float(cross_entropy(logits[None], jnp.asarray([true_class]))),
        "exact": exact,
    }


def _cross_entropy_after_softmax(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The mistake of 1C: nn.Softmax() before nn.CrossEntropyLoss(), which applies log_softmax again."""
    return cross_entropy(jax.nn.softmax(logits, axis=-1), labels)


def double_softmax_evidence(true_class: int = HOMEWORK_TRUE_CLASS, margins: Sequence[float] = MARGINS) -> dict:
    """(c): the loss and the gradient on the true class's logit, by jax.grad in float64, at logits whose true class
    is ``margin`` above (or below) the 9 others: cross-entropy on logits, cross-entropy after an extra softmax,
    and MSE on the probabilities, beside the bounds of the double softmax's loss."""
    def losses(z):
        label = jnp.asarray([true_class])
        return {"cross_entropy_on_logits": cross_entropy(z[None], label),
                "softmax_then_cross_entropy": cross_entropy(jax.nn.softmax(z)[None], label),
                "mse_on_probabilities": mse(jax.nn.softmax(z), jax.nn.one_hot(true_class, NUM_CLASSES, dtype=z.dtype))}

    @jax.jit  # one program for every margin, instead of each operation compiled on its own
    def at_margins(logits):
        values = jax.vmap(losses)(logits)
        grads = {name: jax.vmap(jax.grad(lambda z, n=name: losses(z)[n]))(logits)[:, true_class] for name in values}
        return values, grads, jax.nn.softmax(logits)[:, true_class]

    # One row per margin, then the double softmax's extremes: the true class's logit 60 above the rest (most
    # right), another class's (most wrong).
    margins = tuple(margins)
    raised = [*margins, 60.0, 60.0]
    logits = np.zeros((len(raised), NUM_CLASSES))
    logits[np.arange(len(raised)), [true_class] * (len(margins) + 1) + [(true_class + 1) % NUM_CLASSES]] = raised
    with jax.enable_x64(True):
        values, grads, p_true = jax.device_get(at_margins(jnp.asarray(logits, jnp.float64)))
    rows = [{"margin": margin, "p_true": float(p_true[index]),
             "loss": {name: float(value[index]) for name, value in values.items()},
             "dL_dz_true": {name: float(grad[index]) for name, grad in grads.items()}}
            for index, margin in enumerate(margins)]
    return {"true_class": true_class, "rows": rows,
            "bounds_formula": [math.log(math.e + NUM_CLASSES - 1) - 1, math.log(math.e + NUM_CLASSES - 1)],
            "bounds_at_logit_60": [float(bound) for bound in values["softmax_then_cross_entropy"][-2:]]}


def extra_softmax_training(epochs: int = 2, train_examples: int | None = None, batch_size: int = 64,
                           lr: float = 1e-3, seeds: Sequence[int] = (0,)) -> dict:
    """(d): the homework MLP trained with and without an extra softmax before the loss, on the same data, one
    member per seed for each (one program each), compared by the paired difference over the seeds.

    Both report the same metrics: cross-entropy of the model's logits (what the predicted probabilities really
    score) and accuracy, on the embedded MNIST digits; only the training loss differs.
    """
    seeds = tuple(seeds)
    train, test = load_train_test("mnist", "embedded")
    train_arrays = train.arrays()
    if train_examples is not None:
        if not 1 <= train_examples <= len(train):
            raise InputError(f"train_examples must lie in [1, {len(train)}], got {train_examples}")
        # A random subset (the embedded training split is stored sorted by class), drawn with the first seed.
        keep = np.sort(np.random.default_rng(seeds[0]).permutation(len(train))[:train_examples])
        train_arrays = {name: values[keep] for name, values in train_arrays.items()}
    objectives = {"cross_entropy_on_logits": classification,
                  "softmax_then_cross_entropy": Objective(loss=_cross_entropy_after_softmax,
                                                          metrics=classification.metrics)}
    runs, finals = {}, {}
    for name, objective in objectives.items():
        states = create_train_states(MLP(num_classes=train.num_classes), optax.adam(lr), train.images[:1], seeds)
        _, history = fit(states, train_arrays, test.arrays(), epochs=epochs, batch_size=batch_size,
                         objective=objective, progress=False, members=len(seeds),
                         member_names=[f"seed {seed}" for seed in seeds])
        runs[name] = history
        finals[name] = history[-1]["test_accuracy"]
    gap = paired_difference(finals["cross_entropy_on_logits"], finals["softmax_then_cross_entropy"],
                            bounds=ACCURACY_RANGE)
    return {"epochs": epochs, "train_examples": len(train_arrays["y"]), "test_examples": len(test),
            "batch_size": batch_size, "lr": lr, "seeds": list(seeds), "data_source": train.source, "runs": runs,
            "test_accuracy": {name: mean_interval(values, bounds=ACCURACY_RANGE) for name, values in finals.items()},
            "test_accuracy_per_seed": finals,
            "accuracy_gap": {**gap, "verdict": verdict(gap)}}


