"""Many seeds as one program: K members trained by one epoch (vmapped, or one at a time inside it) each match
their own seed trained alone; --seeds on the commands, with the intervals of tests/test_intervals.py."""
from __future__ import annotations

import json
import math

import jax
import numpy as np
import optax
import pytest
from helpers import wilson_by_hand

from jaxhw.classify import main as classify
from jaxhw.data.images import load_images
from jaxhw.errors import InputError
from jaxhw.models.cnn import CNN
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state, fit
from jaxhw.training.fit import TrainingDiverged
from jaxhw.training.state import create_train_states, member
from jaxhw.training.steps import EVAL_BATCH_SIZE, eval_batch_size, make_eval_fn, resolve_members_at_once

SEEDS = (3, 7, 11)


@pytest.fixture(scope="module")
def digits() -> dict:
    train = load_images("mnist", "train", "embedded")
    order = np.random.default_rng(0).permutation(len(train))[:512]  # the split is stored sorted by class
    return {"x": train.images[order], "y": train.labels[order]}


def _max_difference(a, b) -> dict:
    differences = jax.tree_util.tree_map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))),
                                         jax.device_get(a), jax.device_get(b))
    return {jax.tree_util.keystr(path): value for path, value in jax.tree_util.tree_leaves_with_path(differences)}


def test_vmapped_init_gives_each_member_the_values_of_its_own_seed(digits):
    stacked = create_train_states(CNN(), optax.adam(1e-3), digits["x"][:1], SEEDS)
    for k, seed in enumerate(SEEDS):
        alone = create_train_state(CNN(), optax.adam(1e-3), digits["x"][:1], seed)
        assert set(_max_difference(member(stacked, k).params, alone.params).values()) == {0.0}  # bitwise
        assert np.array_equal(jax.random.key_data(member(stacked, k).rng), jax.random.key_data(alone.rng))


def _optimizer(name: str) -> optax.GradientTransformation:
    return optax.adam(1e-3) if name == "adam" else optax.sgd(0.05)


_ALONE: dict = {}


def _cnn_alone(digits: dict, optimizer: str, seed: int) -> tuple:
    """One epoch of the CNN with one seed, trained alone (kept for the next parametrisation)."""
    if (optimizer, seed) not in _ALONE:
        state = create_train_state(CNN(), _optimizer(optimizer), digits["x"][:1], seed)
        _ALONE[optimizer, seed] = fit(state, digits, digits, epochs=1, batch_size=64, progress=False)
    return _ALONE[optimizer, seed]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, at_once", [("adam", None), ("sgd", None), ("adam", 2), ("adam", 3)])
def test_cnn_members_trained_as_one_program_match_each_seed_trained_alone(digits, optimizer, at_once):
    """The CNN (BatchNorm, Dropout): 3 seeds in one program against each seed alone, 8 steps of batch 64, with
    the backend's default members side by side (one at a time on the CPU), two (a group of two vmapped, then
    the third) and all three vmapped.

    Tolerance: the program of members may sum in another order than the single one, so values agree to float32
    rounding (1e-5 absolute on weights of order 0.1-1, 1e-5 relative on the loss). One exception, with Adam only:
    the convolutions' biases feed BatchNorm, which subtracts their mean, so their true gradient is zero and
    what is left is rounding noise; Adam divides every gradient by its own running scale, so even noise moves a
    bias by about lr per step in either program. Those, and the running means of the BatchNorms they feed, are
    held to the bound lr x steps instead.
    """
    tx = _optimizer(optimizer)
    stacked = create_train_states(CNN(), tx, digits["x"][:1], SEEDS)
    stacked, history = fit(stacked, digits, digits, epochs=1, batch_size=64, members=len(SEEDS),
                           members_at_once=at_once, progress=False)
    steps = len(digits["y"]) // 64
    for k, seed in enumerate(SEEDS):
        alone, alone_history = _cnn_alone(digits, optimizer, seed)
        got = _max_difference((member(stacked, k).params, member(stacked, k).batch_stats),
                              (alone.params, alone.batch_stats))
        conv_biases = {path for path in got if "conv" in path and "bias" in path}
        # A BatchNorm's running mean averages the batch means of its conv's outputs, bias included, so it
        # follows the conv bias: it differs by at most what the bias does.
        running_means = {path for path in got if path.startswith("[1]") and "norm" in path and "mean" in path}
        loose = conv_biases | running_means
        assert max(value for path, value in got.items() if path not in loose) <= 1e-5, got
        bound = 1e-3 * steps if optimizer == "adam" else 1e-5
        assert max(got[path] for path in loose) <= bound, got
        assert history[0]["train_loss"][k] == pytest.approx(alone_history[0]["train_loss"], rel=1e-5)
        assert history[0]["test_accuracy"][k] == pytest.approx(alone_history[0]["test_accuracy"], abs=2 / 512)


@pytest.mark.slow
def test_members_with_their_own_data_match_training_alone_on_that_data(digits):
    subsets = [np.random.default_rng(seed).permutation(512)[:256] for seed in SEEDS]
    own = {key: np.stack([digits[key][s] for s in subsets]) for key in ("x", "y")}
    stacked = create_train_states(MLP(), optax.adam(1e-3), digits["x"][:1], SEEDS)
    stacked, history = fit(stacked, own, own, epochs=2, batch_size=32, members=len(SEEDS), data_per_member=True,
                           progress=False)
    for k, (seed, subset) in enumerate(zip(SEEDS, subsets)):
        data = {key: digits[key][subset] for key in ("x", "y")}
        alone, alone_history = fit(create_train_state(MLP(), optax.adam(1e-3), digits["x"][:1], seed), data, data,
                                   epochs=2, batch_size=32, progress=False)
        assert max(_max_difference(member(stacked, k).params, alone.params).values()) <= 1e-5
        assert history[-1]["test_loss"][k] == pytest.approx(alone_history[-1]["test_loss"], rel=1e-5)


@pytest.mark.slow
def test_a_stack_is_evaluated_in_smaller_batches_with_each_members_own_result(digits):
    """Eval mode shares EVAL_BATCH_SIZE among the members (a sum over examples does not depend on the batch,
    up to float32 summation order); a batch size given for train mode, where BatchNorm normalises with each
    batch's statistics, is kept for every member."""
    assert eval_batch_size(1000, 1) == EVAL_BATCH_SIZE and eval_batch_size(1000, 20) == EVAL_BATCH_SIZE // 20
    assert eval_batch_size(7, 1) == 7 and eval_batch_size(1000, 10 * EVAL_BATCH_SIZE) == 1
    stacked = create_train_states(CNN(), optax.adam(1e-3), digits["x"][:1], SEEDS)
    stacked, _ = fit(stacked, digits, None, epochs=1, batch_size=64, members=len(SEEDS), progress=False)
    data = jax.device_put(digits)
    evaluated = make_eval_fn(members=True)(stacked, data)
    train_mode = make_eval_fn(batch_size=100, train=True, members=True)(stacked, data)
    for k in range(len(SEEDS)):
        alone = member(stacked, k)
        alone_evaluated = make_eval_fn(batch_size=EVAL_BATCH_SIZE)(alone, data)
        assert float(evaluated["loss"][k]) == pytest.approx(float(alone_evaluated["loss"]), rel=1e-5)
        assert int(evaluated["accuracy"][k]) == int(alone_evaluated["accuracy"])
        # train mode at batch 100: 512 = 5 x 100 + 12, the same batches as the member alone at 100 ...
        alone_train_mode = make_eval_fn(batch_size=100, train=True)(alone, data)
        assert float(train_mode["loss"][k]) == pytest.approx(float(alone_train_mode["loss"]), rel=1e-5)
        # ... and not the member's share of EVAL_BATCH_SIZE, whose batch statistics differ
        shared = make_eval_fn(batch_size=eval_batch_size(512, len(SEEDS)), train=True)(alone, data)
        assert float(shared["loss"]) != pytest.approx(float(alone_train_mode["loss"]), rel=1e-4)


def test_a_diverging_member_is_named(digits):
    own = {key: np.stack([digits[key][:64]] * 3) for key in ("x", "y")}
    own["x"] = own["x"].astype(np.float32) / 255
    own["x"][1, 5] = 3e38  # finite, but its logits overflow and member 1's loss becomes NaN
    stacked = create_train_states(MLP(), optax.adam(1e-3), own["x"][0][:1], SEEDS)
    with pytest.raises(TrainingDiverged, match=r"training loss of seed 7 became nan at epoch 1"):
        fit(stacked, own, None, epochs=1, batch_size=16, members=3, data_per_member=True, progress=False,
            member_names=[f"seed {seed}" for seed in SEEDS])


@pytest.mark.slow
def test_classify_with_seeds_writes_means_intervals_and_per_seed_records(tmp_path):
    args = ["--source", "embedded", "--epochs", "2", "--batch-size", "256", "--seeds", "3", "--seed", "5"]
    assert classify(args + ["--out", str(tmp_path / "three")]) == 0
    metrics = json.loads((tmp_path / "three" / "metrics.json").read_text())
    per_seed = metrics["per_seed"]
    assert [entry["seed"] for entry in per_seed] == [5, 6, 7]
    accuracies = [entry["test_accuracy"] for entry in per_seed]
    assert metrics["test_accuracy"] == pytest.approx(np.mean(accuracies))
    # An accuracy's interval is the Wilson-type one (tests/test_intervals.py), a loss's the Student-t one.
    assert metrics["test_accuracy_ci95"] == pytest.approx(wilson_by_hand(accuracies, math.sqrt(2 * 0.9025 / 0.0975)))
    losses = [entry["test_loss"] for entry in per_seed]
    half = math.sqrt(2 * 0.9025 / 0.0975) * np.std(losses, ddof=1) / math.sqrt(3)
    assert metrics["test_loss_ci95"] == pytest.approx([np.mean(losses) - half, np.mean(losses) + half])
    assert len(metrics["epochs"][-1]["test_accuracy_per_seed"]) == 3
    # Member 1 of the program is seed 6 trained alone (up to float32 rounding of a vmapped sum).
    assert classify(["--source", "embedded", "--epochs", "2", "--batch-size", "256", "--seed", "6",
                     "--out", str(tmp_path / "six")]) == 0
    alone = json.loads((tmp_path / "six" / "metrics.json").read_text())
    assert alone["test_accuracy_ci95"] is None and len(alone["per_seed"]) == 1
    assert per_seed[1]["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-4)


@pytest.mark.slow
def test_seeds_resume_from_a_checkpoint_of_the_whole_stack(tmp_path):
    common = ["--source", "embedded", "--batch-size", "512", "--seeds", "2"]
    assert classify(common + ["--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    ck = ["--checkpoint-dir", str(tmp_path / "ck")]
    assert classify(common + ck + ["--epochs", "2", "--out", str(tmp_path / "part")]) == 0
    assert classify(common + ck + ["--epochs", "3", "--resume", "--out", str(tmp_path / "part")]) == 0
    whole, part = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "part"))
    assert [entry["test_loss"] for entry in whole["per_seed"]] == [entry["test_loss"] for entry in part["per_seed"]]


def test_members_at_once_is_checked_and_defaults_by_backend():
    assert resolve_members_at_once(None, 4) == (1 if jax.default_backend() == "cpu" else 4)
    assert resolve_members_at_once(2, 4) == 2 and resolve_members_at_once(9, 4) == 4
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match="members_at_once must be a positive integer or None, got"):
            resolve_members_at_once(bad, 4)
