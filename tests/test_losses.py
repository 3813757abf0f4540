"""cross_entropy / mse / cross_entropy_from_probabilities against PyTorch's losses, and the input checks."""
import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxhw.errors import InputError
from jaxhw.losses import (
    accuracy_count,
    check_probabilities,
    cross_entropy,
    cross_entropy_from_probabilities,
    describe_label,
    describe_probabilities,
    label_to_class,
    mse,
)

SHAPES = [(1, 2), (3, 10), (17, 5), (4, 33)]
HOMEWORK_VECTOR = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1]
HOMEWORK_LABEL = (0.0, 0.1, 0.0, 0.0, 0.0)


def _logits_and_labels(shape, seed=0):
    rng = np.random.default_rng(seed)
    logits = (2.0 * rng.standard_normal(shape)).astype(np.float32)
    labels = rng.integers(0, shape[1], shape[0]).astype(np.int32)
    soft = rng.random(shape).astype(np.float32)
    return logits, labels, soft / soft.sum(axis=1, keepdims=True)


def assert_torch_close(ours, theirs, tol=1e-5):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(shape, reduction, smoothing):
    logits, labels, soft = _logits_and_labels(shape)
    torch_loss = torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)
    assert_torch_close(cross_entropy(logits, labels, reduction, smoothing),
           torch_loss(torch.tensor(logits), torch.tensor(labels, dtype=torch.long)))
    assert_torch_close(cross_entropy(logits, soft, reduction, smoothing),
                       torch_loss(torch.tensor(logits), torch.tensor(soft)))


@pytest.mark.parametrize("shape", [(1, 2), (3, 10), (2, 3, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(shape, reduction):
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    expected = torch.nn.MSELoss(reduction=reduction)(torch.tensor(pred), torch.tensor(target))
    assert_torch_close(mse(pred, target, reduction), expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_from_probabilities_matches_torch(shape, reduction):
    logits, labels, soft = _logits_and_labels(shape, seed=2)
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float64), dim=1)
    ours_probs = probs.numpy()
    # For class indices: nn.NLLLoss on ln p. For probability targets: nn.CrossEntropyLoss on ln p, since
    # log_softmax(ln p) = ln p when p sums to 1.
    assert_torch_close(cross_entropy_from_probabilities(ours_probs, labels, reduction),
           torch.nn.NLLLoss(reduction=reduction)(probs.log(), torch.tensor(labels, dtype=torch.long)))
    assert_torch_close(cross_entropy_from_probabilities(ours_probs, soft, reduction),
           torch.nn.CrossEntropyLoss(reduction=reduction)(probs.log(), torch.tensor(soft, dtype=torch.float64)))


def test_cross_entropy_from_one_probability_vector_is_minus_log_of_the_true_class():
    probs = [0.05] * 10
    probs[3] = 0.55
    assert float(cross_entropy_from_probabilities(probs, 3)) == pytest.approx(-math.log(0.55), rel=1e-6)
    one_hot = np.eye(10, dtype=np.float32)[3]
    assert float(cross_entropy_from_probabilities(probs, one_hot)) == pytest.approx(-math.log(0.55), rel=1e-6)


def test_zero_probability_on_a_class_with_zero_target_contributes_nothing():
    probs = np.array([0.0, 0.25, 0.75], np.float32)
    target = np.array([0.0, 0.5, 0.5], np.float32)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert float(cross_entropy_from_probabilities(probs, target)) == pytest.approx(expected, rel=1e-6)


def test_accuracy_count_counts_rows_whose_argmax_is_the_label():
    logits = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert int(accuracy_count(logits, jnp.array([1, 1, 2]))) == 2


def test_homework_vector_is_explained_entry_count_and_sum():
    problems = describe_probabilities(HOMEWORK_VECTOR, num_classes=10)
    assert len(problems) == 2
    assert "11 entries" in problems[0] and "10 classes" in problems[0]
    # 0.1+0.1+0.0+0.4 + 5*0.05 + 0.1+0.1 = 1.05 (summed by hand; the homework's notes say 1.1, which is wrong)
    assert "sum to 1.05, not 1" in problems[1]
    with pytest.raises(InputError, match=r"not a probability vector over 10 classes: it has 11 entries"):
        check_probabilities(HOMEWORK_VECTOR, num_classes=10)


def test_homework_label_is_explained_entry_count_and_largest_entry():
    problems = describe_label(HOMEWORK_LABEL, num_classes=10)
    assert len(problems) == 2
    assert "5 entries" in problems[0] and "10" in problems[0]
    assert "not one-hot" in problems[1] and "largest entry is 0.1" in problems[1]
    with pytest.raises(InputError, match="not a valid label over 10 classes"):
        label_to_class(HOMEWORK_LABEL, 10)


@pytest.mark.parametrize("probs, fragment", [
    ([0.5, -0.1, 0.6], "outside [0, 1] (entry 1 is -0.1)"),
    ([1.5, -0.5], "outside [0, 1]"),
    ([0.5, float("nan"), 0.5], "NaN"),
    ([[0.5, 0.5], [0.9, 0.2]], "row 1 sums to 1.1"),
    ([], "shape (0,)"),
    ([[[1.0]]], "shape (1, 1, 1)"),
])
def test_probability_checks(probs, fragment):
    with pytest.raises(InputError) as error:
        check_probabilities(probs)
    assert fragment in str(error.value)


def test_valid_probabilities_pass_within_tolerance():
    assert describe_probabilities([0.2, 0.3, 0.5 + 1e-7], num_classes=3) == []
    assert describe_probabilities(np.full((4, 10), 0.1, np.float32)) == []


@pytest.mark.parametrize("label, fragment", [
    (10, "class index 10 is outside [0, 10)"),
    (-1, "outside [0, 10)"),
    (3.0, "must be an integer"),
    (np.eye(10)[3] * 2, "not one-hot"),
    (np.eye(10)[3] + np.eye(10)[4], "2 entries equal 1"),
    (np.eye(10)[3] + 0.1 * np.eye(10)[4], "besides the 1, 1 entries are not 0"),
    (np.eye(3), "shape (3, 3)"),
])
def test_label_checks(label, fragment):
    with pytest.raises(InputError) as error:
        label_to_class(label, 10)
    assert fragment in str(error.value)


def test_valid_labels_name_their_class():
    assert label_to_class(7, 10) == 7
    assert label_to_class(np.int64(2), 10) == 2
    assert label_to_class(np.eye(10)[4], 10) == 4


def test_cross_entropy_from_probabilities_rejects_bad_input():
    with pytest.raises(InputError, match="not a probability vector"):
        cross_entropy_from_probabilities(HOMEWORK_VECTOR, 3)
    # check=False evaluates the formula anyway: -ln 0.4, by hand 0.916291
    assert float(cross_entropy_from_probabilities(HOMEWORK_VECTOR, 3, check=False)) == pytest.approx(0.916291, abs=1e-6)
    with pytest.raises(InputError, match=r"class-index targets must lie in \[0, 3\)"):
        cross_entropy_from_probabilities(np.full((2, 3), 1 / 3), np.array([0, 3]))
    with pytest.raises(InputError, match="probability targets must have shape"):
        cross_entropy_from_probabilities(np.full((2, 3), 1 / 3), np.full((2, 4), 0.25))
    with pytest.raises(InputError, match="reduction must be one of"):
        cross_entropy_from_probabilities(np.full(3, 1 / 3), 0, reduction="avg")
