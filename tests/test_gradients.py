"""The analytic gradients of jaxhw.losses against jax.grad and finite differences, and the gradient lab
(homework problem 1) against hand-derived values, PyTorch and its own CLI."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

from jaxhw.errors import InputError
from jaxhw.experiments import extra_softmax
from jaxhw.experiments import gradients as lab
from jaxhw.gradients import main
from jaxhw.losses import (
    cross_entropy,
    cross_entropy_from_probabilities,
    cross_entropy_grad_logits,
    cross_entropy_grad_probabilities,
    mse,
    mse_grad,
    mse_grad_logits,
    softmax_backward,
)
from jaxhw.report.gradient_text import problem_1a_text

# Every shape meets one reduction (compiling each pair for every reduction would slow the suite for little).
CASES = [((1, 2), "mean"), ((3, 10), "sum"), ((17, 5), "none"), ((4, 33), "mean")]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _inputs(shape, seed):
    """Logits, their softmax (no tiny probabilities), class labels, and unnormalised soft targets, float64."""
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(0.7 * rng.standard_normal(shape))
    labels = jnp.asarray(rng.integers(0, shape[-1], shape[0]))
    soft = jnp.asarray(rng.random(shape))
    return logits, jax.nn.softmax(logits, axis=-1), labels, soft


def _scalar(loss, reduction):
    """The scalar whose gradient the analytic function gives: the reduced loss, or the sum for "none"."""
    return (lambda x: loss(x).sum()) if reduction == "none" else loss


def _finite_differences(f, x, h=1e-6):
    """Central differences on every coordinate (written here, independent of the lab's own)."""
    flat = x.ravel()
    steps = h * jnp.eye(flat.size, dtype=x.dtype)
    values = jax.vmap(lambda v: f(v.reshape(x.shape)))
    return ((values(flat + steps) - values(flat - steps)) / (2 * h)).reshape(x.shape)


def _with_analytic_vjp(f, grad):
    """f whose reverse-mode derivative is the analytic gradient, so check_grads tests that gradient."""
    g = jax.custom_vjp(f)
    g.defvjp(lambda x: (f(x), x), lambda x, cotangent: (cotangent * grad(x),))
    return g


def _assert_three_ways(f, grad, x, with_check_grads=False):
    """analytic == jax.grad (to rounding) and == central differences on every coordinate (one compile).

    with_check_grads also runs jax.test_util.check_grads on f with the analytic gradient as its VJP.
    """
    analytic, autodiff, numeric = jax.jit(lambda v: (grad(v), jax.grad(f)(v), _finite_differences(f, v)))(x)
    np.testing.assert_allclose(analytic, autodiff, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)
    if with_check_grads:
        check_grads(_with_analytic_vjp(jax.jit(f), jax.jit(grad)), (x,), order=1, modes=("rev",), eps=1e-6,
                    atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape, reduction", CASES)
def test_cross_entropy_grad_probabilities(x64, shape, reduction):
    _, probs, labels, soft = _inputs(shape, 0)
    for targets in (labels, soft):
        f = _scalar(lambda p: cross_entropy_from_probabilities(p, targets, reduction, check=False), reduction)
        _assert_three_ways(f, lambda p: cross_entropy_grad_probabilities(p, targets, reduction), probs,
                           with_check_grads=shape == (3, 10))


@pytest.mark.parametrize("shape, reduction, smoothing", [case + (0.0,) for case in CASES] + [
    ((3, 10), "mean", 0.15), ((17, 5), "sum", 0.15), ((4, 33), "none", 0.15)])
def test_cross_entropy_grad_logits(x64, shape, reduction, smoothing):
    logits, _, labels, soft = _inputs(shape, 1)
    for targets in (labels, soft):
        f = _scalar(lambda z: cross_entropy(z, targets, reduction, smoothing), reduction)
        _assert_three_ways(f, lambda z: cross_entropy_grad_logits(z, targets, reduction, smoothing), logits,
                           with_check_grads=shape == (3, 10))


def test_cross_entropy_grad_logits_matches_torch_autograd():
    """PyTorch's autograd as a third, outside reference, with label smoothing and probability targets."""
    logits, _, labels, soft = _inputs((6, 7), 2)
    for targets, torch_targets in ((labels, torch.tensor(np.asarray(labels)).long()),
                                   (soft, torch.tensor(np.asarray(soft)))):
        z = torch.tensor(np.asarray(logits), requires_grad=True)
        torch.nn.CrossEntropyLoss(label_smoothing=0.1)(z, torch_targets).backward()
        np.testing.assert_allclose(cross_entropy_grad_logits(np.asarray(logits), targets, "mean", 0.1),
                                   z.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape, reduction", CASES + [((2, 3, 4), "mean"), ((5,), "sum")])
def test_mse_grad(x64, shape, reduction):
    rng = np.random.default_rng(3)
    pred, target = jnp.asarray(rng.standard_normal(shape)), jnp.asarray(rng.standard_normal(shape))
    _assert_three_ways(_scalar(lambda y: mse(y, target, reduction), reduction),
                       lambda y: mse_grad(y, target, reduction), pred, with_check_grads=shape == (3, 10))


@pytest.mark.parametrize("shape, reduction", CASES)
def test_mse_grad_logits(x64, shape, reduction):
    logits, _, labels, _ = _inputs(shape, 4)
    one_hot = jax.nn.one_hot(labels, shape[-1], dtype=logits.dtype)
    f = _scalar(lambda z: mse(jax.nn.softmax(z, axis=-1), one_hot, reduction), reduction)
    _assert_three_ways(f, lambda z: mse_grad_logits(z, one_hot, reduction), logits, with_check_grads=shape == (3, 10))


@pytest.mark.parametrize("shape", [(5,), (3, 10), (2, 4, 6)])
def test_softmax_backward_is_the_softmax_vjp(x64, shape):
    rng = np.random.default_rng(5)
    logits, upstream = jnp.asarray(rng.standard_normal(shape)), jnp.asarray(rng.standard_normal(shape))
    probs, vjp = jax.vjp(lambda z: jax.nn.softmax(z, axis=-1), logits)
    np.testing.assert_allclose(softmax_backward(probs, upstream), vjp(upstream)[0], rtol=1e-12, atol=1e-14)


def test_central_differences_against_a_hand_derivative():
    """d/dx_k sum(x^3) = 3 x_k^2, in float64 and float32 (with the default step for each)."""
    x = np.array([-2.0, -0.3, 0.0, 0.7, 5.0])
    with jax.enable_x64(True):
        np.testing.assert_allclose(lab.central_differences(lambda v: (v ** 3).sum(), jnp.asarray(x)), 3 * x ** 2,
                                   rtol=1e-9, atol=1e-9)
    got32 = lab.central_differences(lambda v: (v ** 3).sum(), jnp.asarray(x, jnp.float32))
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, 3 * x ** 2, rtol=2e-3, atol=2e-3)


def _hand_gradients(p, true_class, classes=10):
    """Problem 1B by hand: y_hat_t = p, the rest q = (1 - p)/(C - 1), z = ln y_hat, MSE against one-hot."""
    q = (1 - p) / (classes - 1)

    def vector(at_true, elsewhere):
        v = np.full(classes, elsewhere)
        v[true_class] = at_true
        return v

    mse_sum_p = vector(2 * (p - 1), 2 * q)
    mse_sum_z = vector(-2 * p * (1 - p) ** 2 * classes / (classes - 1), 2 * p * q * (q + 1 - p))
    return {
        "probabilities": {"mse_mean": mse_sum_p / classes, "mse_sum": mse_sum_p, "cross_entropy": vector(-1 / p, 0.0)},
        "logits": {"mse_mean": mse_sum_z / classes, "mse_sum": mse_sum_z, "cross_entropy": vector(p - 1, q)},
    }


@pytest.mark.parametrize("precision, tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_homework_table_matches_the_hand_derivation(precision, tol):
    table = lab.gradient_table(0.9, 3, precision)
    expected = _hand_gradients(0.9, 3)
    # The numbers the homework asks for (1B): dMSE/dy_hat_3 = 2(0.9 - 1)/10 = -0.02, dCE/dy_hat_3 = -1/0.9.
    assert expected["probabilities"]["mse_mean"][3] == pytest.approx(-0.02)
    assert expected["logits"]["mse_mean"][3] == pytest.approx(-0.002)
    for variable, losses in expected.items():
        for loss, values in losses.items():
            for way in ("analytic", "jax_grad", "finite_differences"):
                np.testing.assert_allclose(table["gradients"][variable][loss][way], values, rtol=tol, atol=tol,
                                           err_msg=f"{variable} {loss} {way}")
    assert table["max_disagreement"] < tol


@pytest.mark.parametrize("p, true_class", [(0.01, 0), (0.3, 9)])
def test_other_tables_match_the_hand_derivation(p, true_class):
    table = lab.gradient_table(p, true_class, "float64")
    for variable, losses in _hand_gradients(p, true_class).items():
        for loss, values in losses.items():
            np.testing.assert_allclose(table["gradients"][variable][loss]["finite_differences"], values, rtol=1e-7,
                                       atol=1e-9)
            np.testing.assert_allclose(table["gradients"][variable][loss]["analytic"], values, rtol=1e-12,
                                       atol=1e-14)


def test_sweep_shows_mse_vanishing_when_confidently_wrong():
    sweep = lab.probability_sweep()
    p = np.asarray(sweep["p_true"])
    assert len(p) == 99 and p[0] == 0.01 and p[-1] == 0.99
    ce, mse_sum, mse_mean = (np.asarray(sweep["dL_dz_true"][k]) for k in ("cross_entropy", "mse_sum", "mse_mean"))
    np.testing.assert_allclose(ce, p - 1, atol=1e-12)  # softmax(z) - onehot at the true class
    np.testing.assert_allclose(mse_sum, -2 * p * (1 - p) ** 2 * 10 / 9, atol=1e-12)
    np.testing.assert_allclose(mse_mean, mse_sum / 10, atol=1e-12)
    assert max(sweep["max_disagreement"].values()) < 1e-8
    # Confidently wrong (p = 0.01): CE still pushes with -0.99, MSE only with -0.0218 (sum) / -0.00218 (mean).
    assert ce[0] == pytest.approx(-0.99) and mse_sum[0] == pytest.approx(-0.02178, abs=1e-5)
    # MSE's gradient shrinks towards 0 as p_true -> 0 (it grows with p up to p = 1/3); CE's grows.
    below_third = p < 1 / 3
    assert np.all(np.diff(np.abs(mse_sum[below_third])) > 0) and np.all(np.diff(np.abs(ce)) < 0)
    assert np.all(np.abs(ce) > np.abs(mse_sum))


def test_problem_1a_explains_the_homework_vector_and_computes_nothing_by_default():
    result = lab.problem_1a()
    assert result["values"] == {} and not result["valid"]
    assert result["entries"] == 11 and result["sum"] == pytest.approx(1.05)  # summed by hand: 1.05, not 1.1
    text = "\n".join(problem_1a_text(result))
    for fragment in ("11 entries", "10 classes", "sum to 1.05, not 1", "5 entries", "largest entry is 0.1",
                     "nothing computed", "--label-as-class 3"):
        assert fragment in text, fragment


def test_problem_1a_with_the_flags():
    as_given = lab.problem_1a(label_as_class=3)
    assert as_given["values"] == {"as_given": pytest.approx(-math.log(0.4))}
    both = lab.problem_1a(label_as_class=3, renormalize=True)
    assert both["values"]["as_given"] == pytest.approx(0.916291, abs=1e-6)
    # -ln(0.4 / 1.05) = 0.965081; the issue's -ln(0.4 / 1.1) = 1.012 assumed a sum of 1.1
    assert both["values"]["renormalized"] == pytest.approx(-math.log(0.4 / 1.05)) == pytest.approx(0.965081, abs=1e-6)
    assert any("11 entries" in p for p in both["problems_after_renormalizing"])


def test_problem_1a_on_valid_input_is_the_cross_entropy():
    probs = [0.05] * 10
    probs[3] = 0.55
    result = lab.problem_1a(probs, 3)
    assert result["valid"] and result["values"] == {"cross_entropy": pytest.approx(-math.log(0.55))}
    assert lab.problem_1a(probs, np.eye(10)[3].tolist())["values"]["cross_entropy"] == pytest.approx(-math.log(0.55))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"label_as_class": 10}, "lie in [0, 10)"),
    ({"probabilities": [0.5, -0.5, 1.0], "label_as_class": 0, "renormalize": True}, "non-negative"),
    ({"probabilities": [[0.5, 0.5]]}, "non-empty list"),
])
def test_problem_1a_bad_flags(kwargs, fragment):
    with pytest.raises(InputError) as error:
        lab.problem_1a(**kwargs)
    assert fragment in str(error.value)


def test_1c_log_softmax_then_nll_equals_cross_entropy():
    a = extra_softmax.log_softmax_nll_evidence()
    assert a["abs_difference"] <= 1e-6
    assert a["cross_entropy"] == pytest.approx(a["float64_reference"], abs=1e-5)


def test_1c_softmax_then_log_overflows_where_log_softmax_does_not():
    b = extra_softmax.overflow_evidence()
    assert math.isnan(b["naive_softmax_then_log"]) and b["softmax_then_log"] == math.inf
    offsets = extra_softmax.OVERFLOW_OFFSETS
    by_hand = math.log(sum(math.exp(o - 4.0) for o in offsets)) + 4.0 - offsets[3]  # logsumexp - z_3
    torch_value = torch.nn.functional.cross_entropy(torch.tensor([b["logits"]]), torch.tensor([3])).item()
    assert b["log_softmax"] == pytest.approx(by_hand, abs=1e-3) and b["cross_entropy"] == pytest.approx(torch_value)


@pytest.mark.slow
def test_cli_end_to_end(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--label-as-class", "3", "--renormalize", "--epochs", "1",
            "--train-examples", "1024"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for fragment in ("11 entries", "sum to 1.05", "5 entries", "largest entry is 0.1", "= 0.9163", "= 0.9651",
                     "float32", "dCE/dz_3 = -0.1000", "dMSE/dz_3 = -0.0020 (mean) / -0.0200 (sum)", "-> nan",
                     "-> inf", "softmax_then_cross_entropy"):
        assert fragment in out, fragment
    result = json.loads((tmp_path / "gradients.json").read_text())
    assert result["tables"]["float32"]["max_disagreement"] < 1e-4
    assert result["problem_1a"]["values"]["renormalized"] == pytest.approx(0.965081, abs=1e-6)
    training = result["problem_1c"]["training"]
    assert training["train_examples"] == 1024 and training["epochs"] == 1
    per_seed = training["test_accuracy_per_seed"]
    assert len(per_seed["cross_entropy_on_logits"]) == len(training["seeds"]) >= 2
    # Same seeds, data and steps: the extra softmax is measurably behind (about 0.68 vs 0.52 after one
    # epoch on 1,024 images), on every seed, and the paired interval says so.
    for logits, softmaxed in zip(per_seed["cross_entropy_on_logits"], per_seed["softmax_then_cross_entropy"]):
        assert logits > softmaxed + 0.05
    gap = training["accuracy_gap"]
    assert gap["low"] > 0 and gap["verdict"] == "supported"
    assert (tmp_path / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, fragment", [
    (["--label-as-class", "12"], "lie in [0, 10)"),
    (["--p-true", "1"], "strictly between 0 and 1"),
    (["--true-class", "-1"], "true_class must be an integer in [0, 10)"),
    (["--train-examples", "5000"], None),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, fragment):
    if fragment is None:  # checked only once training starts: keep the rest quick by checking the library
        with pytest.raises(InputError, match=r"train_examples must lie in \[1, 4000\]"):
            extra_softmax.extra_softmax_training(train_examples=5000)
        return
    assert main(args + ["--out", str(tmp_path), "--no-compile-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and fragment in err and len(err.splitlines()) == 1
