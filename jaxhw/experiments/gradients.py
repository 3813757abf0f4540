"""Homework problem 1 computed, not asserted: the function behind ``python -m jaxhw.gradients``.

1A: the cross-entropy of the homework's predicted vector, after saying what is wrong with that vector.
1B: dMSE/dy_hat_k and dCE/dy_hat_k, and both with respect to the logits z, three ways (the analytic
    formulas of jaxhw.losses, jax.grad, central finite differences), and a sweep of the true-class
    probability showing MSE's gradient vanish when the network is confidently wrong.
1C: why there is no softmax layer before CrossEntropyLoss: the evidence of jaxhw.experiments.extra_softmax.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.configs import (
    HOMEWORK_LABEL,
    HOMEWORK_P_TRUE,
    HOMEWORK_PROBABILITIES,
    HOMEWORK_TRUE_CLASS,
    GradientsConfig,
)
from jaxhw.errors import InputError
from jaxhw.experiments.extra_softmax import (
    double_softmax_evidence,
    extra_softmax_training,
    log_softmax_nll_evidence,
    overflow_evidence,
)
from jaxhw.losses import (
    cross_entropy,
    cross_entropy_from_probabilities,
    cross_entropy_grad_logits,
    cross_entropy_grad_probabilities,
    describe_label,
    describe_probabilities,
    label_to_class,
    mse,
    mse_grad,
    mse_grad_logits,
)

NUM_CLASSES = 10
LOSSES = ("mse_mean", "mse_sum", "cross_entropy")
LOSS_TITLES = {"mse_mean": "MSE (mean)", "mse_sum": "MSE (sum)", "cross_entropy": "CE"}
VARIABLES = ("probabilities", "logits")
# Finite-difference step scale: losses of probabilities change on the scale of p, losses of logits on 1.
STEP_SCALES = {"probabilities": 1e-3, "logits": 1.0}


def confident_probabilities(p_true: float, true_class: int = HOMEWORK_TRUE_CLASS,
                            num_classes: int = NUM_CLASSES) -> np.ndarray:
    """p_true for the true class and the rest, 1 - p_true, spread evenly over the other classes."""
    check_case(p_true, true_class, num_classes)
    probs = np.full(num_classes, (1.0 - p_true) / (num_classes - 1))
    probs[true_class] = p_true
    return probs


def check_case(p_true: float, true_class: int, num_classes: int = NUM_CLASSES) -> None:
    """InputError unless 0 < p_true < 1 and true_class is one of num_classes classes."""
    if not 0.0 < p_true < 1.0:
        raise InputError(f"p_true must lie strictly between 0 and 1 (the logits are ln p), got {p_true}")
    if isinstance(true_class, bool) or not isinstance(true_class, (int, np.integer)) \
            or not 0 <= true_class < num_classes:
        raise InputError(f"true_class must be an integer in [0, {num_classes}), got {true_class!r}")


def central_differences(f: Callable[[jax.Array], jax.Array], x: jax.Array, scale: float = 1.0) -> jax.Array:
    """The gradient of a scalar function of a vector by central differences, (f(x + h e_k) - f(x - h e_k)) / 2h.

    The step h = eps^(1/3) max(|x_k|, scale) (eps^(1/3) is 6e-6 in float64, 5e-3 in float32) balances rounding
    against truncation when ``scale`` is the size on which f changes: 1 for logits, small for probabilities
    (whose losses change on the scale of p itself). The divisor is the step the rounded inputs really took.
    """
    x = jnp.asarray(x)
    h = jnp.finfo(x.dtype).eps ** (1.0 / 3.0) * jnp.maximum(jnp.abs(x), scale)
    plus, minus = x + jnp.diag(h), x - jnp.diag(h)
    taken = jnp.diagonal(plus) - jnp.diagonal(minus)
    values = jax.vmap(f)
    return (values(plus) - values(minus)) / taken


def _one_hot(true_class: int, like: jax.Array) -> jax.Array:
    return jax.nn.one_hot(true_class, like.shape[-1], dtype=like.dtype)


def loss_functions(true_class: int) -> dict:
    """Each homework loss as a scalar function of one vector: probabilities y_hat (C,) or logits z (C,).

    MSE compares the probabilities with the one-hot label (on logits: after softmax), as problem 1B does.
    """
    label = jnp.asarray(true_class)

    def on_softmax(loss):
        return lambda z: loss(jax.nn.softmax(z))

    by_probabilities = {
        "mse_mean": lambda p: mse(p, _one_hot(true_class, p), "mean"),
        "mse_sum": lambda p: mse(p, _one_hot(true_class, p), "sum"),
        "cross_entropy": lambda p: cross_entropy_from_probabilities(p, label, check=False),
    }
    return {
        "probabilities": by_probabilities,
        "logits": {"mse_mean": on_softmax(by_probabilities["mse_mean"]),
                   "mse_sum": on_softmax(by_probabilities["mse_sum"]),
                   "cross_entropy": lambda z: cross_entropy(z[None], label[None])},
    }


def analytic_gradients(true_class: int) -> dict:
    """The derived gradients of jaxhw.losses, arranged like loss_functions."""
    label = jnp.asarray(true_class)
    return {
        "probabilities": {
            "mse_mean": lambda p: mse_grad(p, _one_hot(true_class, p), "mean"),
            "mse_sum": lambda p: mse_grad(p, _one_hot(true_class, p), "sum"),
            "cross_entropy": lambda p: cross_entropy_grad_probabilities(p, label),
        },
        "logits": {
            "mse_mean": lambda z: mse_grad_logits(z, _one_hot(true_class, z), "mean"),
            "mse_sum": lambda z: mse_grad_logits(z, _one_hot(true_class, z), "sum"),
            "cross_entropy": lambda z: cross_entropy_grad_logits(z[None], label[None])[0],
        },
    }


def _max_disagreement(*gradients) -> float:
    """Largest absolute difference between any two of the given gradients."""
    arrays = [np.asarray(g, dtype=np.float64) for g in gradients]
    return float(max(np.max(np.abs(a - b)) for i, a in enumerate(arrays) for b in arrays[i + 1:]))


def gradient_table(p_true: float = HOMEWORK_P_TRUE, true_class: int = HOMEWORK_TRUE_CLASS,
                   precision: str = "float64") -> dict:
    """Every dL/dy_hat_k and dL/dz_k of the three losses, analytic, by jax.grad and by finite differences.

    y_hat has p_true at the true class and the rest spread evenly; z = ln y_hat (so softmax(z) = y_hat).
    precision is "float64" (computed under jax.enable_x64) or "float32".
    """
    if precision not in ("float32", "float64"):
        raise InputError(f"precision must be 'float32' or 'float64', got {precision!r}")
    probs64 = confident_probabilities(p_true, true_class)
    table = {"precision": precision, "p_true": p_true, "true_class": true_class,
             "probabilities": probs64.tolist(), "logits": np.log(probs64).tolist(), "gradients": {}}
    functions, analytic = loss_functions(true_class), analytic_gradients(true_class)

    @jax.jit
    def three_ways(probs):
        inputs = {"probabilities": probs, "logits": jnp.log(probs)}
        return {variable: {loss: {"analytic": analytic[variable][loss](inputs[variable]),
                                  "jax_grad": jax.grad(functions[variable][loss])(inputs[variable]),
                                  "finite_differences": central_differences(functions[variable][loss],
                                                                            inputs[variable], STEP_SCALES[variable])}
                           for loss in LOSSES} for variable in VARIABLES}

    with jax.enable_x64(precision == "float64"):
        dtype = jnp.dtype(precision)
        gradients = jax.device_get(three_ways(jnp.asarray(probs64, dtype)))
        table["finite_difference_step"] = float(jnp.finfo(dtype).eps ** (1.0 / 3.0))
    for variable in VARIABLES:
        table["gradients"][variable] = {}
        for loss, ways in gradients[variable].items():
            entry = {way: np.asarray(g, dtype=np.float64).tolist() for way, g in ways.items()}
            entry["max_disagreement"] = _max_disagreement(*ways.values())
            table["gradients"][variable][loss] = entry
    table["max_disagreement"] = max(e["max_disagreement"] for v in table["gradients"].values() for e in v.values())
    return table


def probability_sweep(p_values: Sequence[float] | None = None, true_class: int = HOMEWORK_TRUE_CLASS) -> dict:
    """dL/dz_true and dL/dy_hat_true for each loss as p_true runs over p_values (default 0.01..0.99), float64.

    The logits are ln y_hat with y_hat as in gradient_table; dL/dz_true is checked against jax.grad and finite
    differences at every point.
    """
    p_values = np.round(np.arange(1, 100) / 100, 2) if p_values is None else np.asarray(p_values, np.float64)
    probs = np.stack([confident_probabilities(float(p), true_class) for p in p_values])
    sweep = {"p_true": p_values.tolist(), "dL_dz_true": {}, "dL_dyhat_true": {}, "max_disagreement": {}}
    functions, analytic = loss_functions(true_class), analytic_gradients(true_class)

    @jax.jit
    def along_sweep(probs):
        logits = jnp.log(probs)
        by_logits = {loss: [jax.vmap(analytic["logits"][loss])(logits),
                            jax.vmap(jax.grad(functions["logits"][loss]))(logits),
                            jax.vmap(lambda z, f=functions["logits"][loss]: central_differences(f, z))(logits)]
                     for loss in LOSSES}
        by_probs = {loss: jax.vmap(analytic["probabilities"][loss])(probs) for loss in LOSSES}
        return by_logits, by_probs

    with jax.enable_x64(True):
        by_logits, by_probs = jax.device_get(along_sweep(jnp.asarray(probs)))
    for loss in LOSSES:
        sweep["dL_dz_true"][loss] = np.asarray(by_logits[loss][0][:, true_class]).tolist()
        sweep["max_disagreement"][loss] = _max_disagreement(*by_logits[loss])
        sweep["dL_dyhat_true"][loss] = np.asarray(by_probs[loss][:, true_class]).tolist()
    return sweep


def entries_whose_removal_repairs(probs: np.ndarray, num_classes: int = NUM_CLASSES) -> list[int]:
    """The indices of the entries whose removal leaves a valid probability vector over ``num_classes`` classes
    (for a vector with exactly one entry too many; otherwise none)."""
    if probs.size != num_classes + 1:
        return []
    return [i for i in range(probs.size) if not describe_probabilities(np.delete(probs, i), num_classes)]


def convexity_evidence(true_class: int = HOMEWORK_TRUE_CLASS, margins: Sequence[float] = (-6.0, -3.0, 0.0, 3.0, 6.0)
                       ) -> dict:
    """The smallest eigenvalue of the Hessian in the logits, by jax.hessian in float64, of cross-entropy and of
    summed MSE on softmax, at logits whose true class is ``margin`` above the 9 others: CE's is never negative
    (it is convex in the logits), MSE's is negative somewhere (it is not)."""
    functions = loss_functions(true_class)["logits"]
    losses = ("cross_entropy", "mse_sum")

    @jax.jit  # one program for every margin (op by op, each Hessian's operations would compile one by one)
    def smallest_eigenvalues(logits):
        return {loss: jax.vmap(lambda z, f=functions[loss]: jnp.linalg.eigvalsh(jax.hessian(f)(z)).min())(logits)
                for loss in losses}

    logits = np.zeros((len(margins), NUM_CLASSES))
    logits[:, true_class] = margins
    with jax.enable_x64(True):
        smallest = jax.device_get(smallest_eigenvalues(jnp.asarray(logits, jnp.float64)))
    rows = [{"margin": margin, **{loss: float(smallest[loss][index]) for loss in losses}}
            for index, margin in enumerate(margins)]
    return {"true_class": true_class, "min_hessian_eigenvalue": rows}


def problem_1a(probabilities: Sequence[float] = HOMEWORK_PROBABILITIES, label=HOMEWORK_LABEL,
               renormalize: bool = False, label_as_class: int | None = None,
               num_classes: int = NUM_CLASSES) -> dict:
    """The cross-entropy of a predicted vector for a label, after saying everything wrong with either.

    A valid vector and label give the cross-entropy -ln y_hat_true. An invalid label gives nothing unless
    label_as_class names the class; an invalid vector gives the formula -ln y_hat_k on the vector as given,
    marked as such, and with renormalize also on the vector divided by its sum. Every problem stays listed.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise InputError(f"the predicted vector must be a non-empty list of numbers, got shape {probs.shape}")
    result = {
        "probabilities": probs.tolist(), "label": np.asarray(label).tolist(), "num_classes": num_classes,
        "sum": float(probs.sum()), "entries": int(probs.size),
        "vector_problems": describe_probabilities(probs, num_classes),
        "label_problems": describe_label(label, num_classes),
        "renormalize": renormalize, "label_as_class": label_as_class, "values": {},
    }
    result["valid"] = not (result["vector_problems"] or result["label_problems"])
    result["one_entry_too_many"] = entries_whose_removal_repairs(probs, num_classes)
    if label_as_class is not None:
        if not 0 <= label_as_class < min(num_classes, probs.size):
            raise InputError(f"--label-as-class must name one of the {num_classes} classes and an entry of the "
                             f"{probs.size}-entry vector, i.e. lie in [0, {min(num_classes, probs.size)}), "
                             f"got {label_as_class}")
        true_class = label_as_class
    elif not result["label_problems"]:
        true_class = label_to_class(label, num_classes)
        if true_class >= probs.size:
            raise InputError(f"the label names class {true_class}, but the vector has only {probs.size} entries")
    else:
        result["hint"] = ("nothing computed: pass --label-as-class K to say which class the image shows "
                          f"(the homework's image is the digit {HOMEWORK_TRUE_CLASS}: --label-as-class "
                          f"{HOMEWORK_TRUE_CLASS}), and --renormalize to also divide the vector by its sum")
        return result
    result["true_class"] = true_class
    if result["valid"]:
        result["values"]["cross_entropy"] = float(cross_entropy_from_probabilities(probs, true_class))
        return result
    result["values"]["as_given"] = float(cross_entropy_from_probabilities(probs, true_class, check=False))
    if renormalize:
        if not np.isfinite(probs).all() or (probs < 0).any() or probs.sum() <= 0:
            raise InputError("--renormalize needs finite, non-negative entries with a positive sum, got "
                             f"{probs.tolist()}")
        renormalized = probs / probs.sum()
        result["renormalized_probabilities"] = renormalized.tolist()
        result["values"]["renormalized"] = float(cross_entropy_from_probabilities(renormalized, true_class))
        result["problems_after_renormalizing"] = describe_probabilities(renormalized, num_classes)
    return result


def gradient_lab(config: GradientsConfig = GradientsConfig()) -> dict:
    """All of problem 1 (1A, the 1B tables and sweep, the 1C evidence) as one JSON-ready dict."""
    started = time.perf_counter()
    check_case(config.p_true, config.true_class)
    result = {"problem_1a": problem_1a(config.vector, config.label, config.renormalize, config.label_as_class)}
    result["tables"] = {precision: gradient_table(config.p_true, config.true_class, precision)
                        for precision in ("float64", "float32")}
    result["sweep"] = probability_sweep(true_class=config.true_class)
    result["convexity"] = convexity_evidence(config.true_class)
    result["problem_1c"] = {"log_softmax_nll": log_softmax_nll_evidence(config.seed),
                            "overflow": overflow_evidence(config.true_class),
                            "double_softmax": double_softmax_evidence(config.true_class),
                            "training": extra_softmax_training(config.epochs, config.train_examples,
                                                               config.batch_size, config.lr, config.seed_list)}
    result["seconds"] = time.perf_counter() - started
    result["config"] = config.record()
    return result
