"""The 50x8 time-series tasks, the sequence classifiers, and `python -m jaxhw.timeseries` (problem 5)."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxhw.data import sequences
from jaxhw.data.sequences import load_task
from jaxhw.errors import InputError
from jaxhw.experiments.timeseries import assess_claims, full_batch_size
from jaxhw.models.layers import Conv
from jaxhw.models.sequence import (
    SEQUENCE_MODELS,
    RecurrentClassifier,
    SequenceCNN,
    build_sequence_model,
)
from jaxhw.timeseries import main
from jaxhw.torch_bridge.convert import variables_from_torch

SYNTHETIC = ("motif", "shifted_motif", "order", "trend")


# ----------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_tasks_are_balanced_seeded_50x8_float32(name):
    train, test = load_task(name, 40, 20, seed=3)
    assert train.x.shape == (40, 50, 8) and test.x.shape == (20, 50, 8)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32 and train.num_classes == 2
    assert np.bincount(train.y).tolist() == [20, 20] and np.bincount(test.y).tolist() == [10, 10]
    again, _ = load_task(name, 40, 20, seed=3)
    other, _ = load_task(name, 40, 20, seed=4)
    np.testing.assert_array_equal(train.x, again.x)
    assert not np.allclose(train.x, other.x)
    assert not np.allclose(train.x[:20], test.x)  # train and test are drawn apart


def _noise_free(monkeypatch):
    """Generators without the N(0, 1) noise, so the planted patterns can be read back exactly."""
    monkeypatch.setattr(sequences, "_noise", lambda n, rng: np.zeros((n, 50, 8)))


def _starts(x: np.ndarray, pattern: np.ndarray) -> list[int]:
    """Every time step where ``pattern`` sits in the (noise-free) sample x."""
    width = len(pattern)
    return [t for t in range(len(x) - width + 1) if np.array_equal(x[t:t + width], pattern)]


def test_motif_tasks_plant_one_pattern_per_class_in_their_window(monkeypatch):
    _noise_free(monkeypatch)
    train, test = load_task("shifted_motif", 60, 60, seed=0)
    for split, (lo, hi) in ((train, (0, 19)), (test, (25, 44))):
        for x, y in zip(split.x, split.y):
            pattern = sequences.MOTIF if y == 1 else sequences.DISTRACTOR
            (start,) = _starts(x, pattern)
            assert lo <= start <= hi
            assert np.abs(x).sum() == pytest.approx(np.abs(pattern).sum())  # nothing else planted
    anywhere, _ = load_task("motif", 400, 2, seed=0)
    starts = [_starts(x, sequences.MOTIF if y else sequences.DISTRACTOR)[0] for x, y in zip(anywhere.x, anywhere.y)]
    assert min(starts) == 0 and max(starts) == 44


def test_order_task_label_is_whether_a_comes_first(monkeypatch):
    _noise_free(monkeypatch)
    train, _ = load_task("order", 300, 2, seed=1)
    for x, y in zip(train.x, train.y):
        (a,), (b,) = _starts(x, sequences.EVENT_A), _starts(x, sequences.EVENT_B)
        assert (a < b) == (y == 1)
        assert abs(a - b) >= 20 and min(a, b) >= 8 and max(a, b) + 3 <= 50 - 8


def test_trend_label_is_the_sign_of_the_least_squares_slope():
    """Ordinary least squares over time (averaged over features), computed here, recovers every label."""
    train, _ = load_task("trend", 2000, 2, seed=5)
    t = np.arange(50) - 24.5
    slope = (train.x * t[None, :, None]).sum(axis=1).mean(axis=1) / (t ** 2).sum()
    assert np.mean((slope > 0) == (train.y == 1)) >= 0.99


def test_vowels_is_the_uci_split_standardised_and_padded():
    train, test = load_task("vowels")
    assert train.x.shape == (270, 50, 12) and test.x.shape == (370, 50, 12) and train.num_classes == 9
    # UCI: 30 training utterances per speaker; test blocks per speaker 31 35 88 44 29 24 40 50 29.
    assert np.bincount(train.y).tolist() == [30] * 9
    assert np.bincount(test.y).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    frames = np.abs(train.x).sum(axis=2) > 0
    lengths = frames.sum(axis=1)
    assert lengths.min() == 7 and lengths.max() <= 29  # the documented 7 to 29 frames, zero-padded in front
    assert all(frames[i, 50 - n:].all() and not frames[i, :50 - n].any() for i, n in enumerate(lengths))
    valid = train.x[frames]
    np.testing.assert_allclose(valid.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(valid.std(axis=0), 1, atol=1e-4)
    subset, _ = load_task("vowels", 100, 50, seed=0)
    assert len(subset) == 100


@pytest.mark.parametrize("call, message", [
    (lambda: load_task("sine"), "unknown sequence task"),
    (lambda: load_task("motif", 1), "num_train"),
    (lambda: load_task("vowels", 500), "270 train"),
    (lambda: sequences.SequenceDataset(np.zeros((2, 5, 3)), np.zeros(2, np.int32), 2, "t", "train"), "float32"),
    (lambda: sequences.SequenceDataset(np.zeros((2, 5, 3), np.float32), np.array([0, 2], np.int32), 2, "t", "x"),
     "labels must lie"),
])
def test_bad_input_is_an_input_error(call, message):
    with pytest.raises(InputError, match=message):
        call()


# --------------------------------------------------------------------------------------------- models


def _parameter_count(variables) -> int:
    return sum(np.size(p) for p in jax.tree_util.tree_leaves(variables["params"]))


# Counted by hand for 8 features and 2 classes.
EXPECTED_PARAMETERS = {
    "mlp": (400 * 32 + 32) + (32 * 32 + 32) + (32 * 2 + 2),
    "cnn": (5 * 8 * 28 + 28) + 3 * (5 * 28 * 28 + 28) + (28 * 2 + 2),
    "cnn_local": (3 * 8 * 40 + 40) + 2 * (3 * 40 * 40 + 40) + (40 * 2 + 2),
    "lstm": 4 * 48 * (8 + 48 + 2) + (48 * 2 + 2),
    "gru": 3 * 56 * (8 + 56 + 2) + (56 * 2 + 2),
    # embedding, attention (q, k, v, out), 3 LayerNorms, MLP 32-96-32, head
    "transformer": (8 * 32 + 32) + 4 * (32 * 32 + 32) + 3 * 64 + (32 * 96 + 96 + 96 * 32 + 32) + (32 * 2 + 2),
}


def _random_variables(model, x, seed: int = 0) -> dict:
    """Variables of the model's shapes filled with N(0, 0.3^2) draws: no init compiled (it is slow to compile)."""
    like = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: (0.3 * rng.normal(size=a.shape)).astype(np.float32), like)


@pytest.mark.parametrize("name", list(SEQUENCE_MODELS))
def test_models_give_logits_and_the_hand_counted_size(name):
    model = build_sequence_model(name)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 50, 8)).astype(np.float32))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    assert _parameter_count(shapes) == EXPECTED_PARAMETERS[name]

    @jax.jit
    def logits(variables):
        """eval mode with two dropout keys, train mode with two dropout keys"""
        return [model.apply(variables, x, train=train, rngs={"dropout": jax.random.key(k)})
                for train in (False, True) for k in (1, 2)]

    eval_1, eval_2, train_1, train_2 = logits(_random_variables(model, x))
    assert eval_1.shape == (4, 2) and np.isfinite(eval_1).all()
    np.testing.assert_array_equal(eval_1, eval_2)  # eval mode: dropout off, the key does not matter
    assert not np.allclose(train_1, train_2)  # train mode: dropout on, the key matters


def test_receptive_fields():
    assert build_sequence_model("cnn").receptive_field == 61  # 1 + 4 * (1 + 2 + 4 + 8)
    assert build_sequence_model("cnn_local").receptive_field == 7  # 1 + 2 * 3


class _OneConv(nn.Module):
    """A 1-D Conv inside a model, as the torch bridge pairs layers below a root module."""

    kernel_size: int
    dilation: int
    implementation: str

    @nn.compact
    def __call__(self, x):
        return Conv(7, (self.kernel_size,), kernel_dilation=self.dilation, implementation=self.implementation)(x)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note on its own copy
@pytest.mark.parametrize("implementation", ["patches", "xla"])
@pytest.mark.parametrize("kernel_size, dilation", [(5, 2), (4, 3)])
def test_conv_matches_torch_conv1d_same_padding(kernel_size, dilation, implementation):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 7, kernel_size, padding="same", dilation=dilation)
    x = np.random.default_rng(1).normal(size=(3, 20, 6)).astype(np.float32)
    model = _OneConv(kernel_size, dilation, implementation)
    variables = variables_from_torch(conv, model, x)
    with torch.no_grad():
        expected = conv(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
    np.testing.assert_allclose(model.apply(variables, jnp.asarray(x)), expected, atol=1e-5, rtol=0)


def test_recurrent_classifier_reads_the_last_layers_final_states_as_torch_does():
    """A 2-layer bidirectional GRU then Linear on cat(h_n[-2], h_n[-1]), the usual PyTorch classifier."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(8, 6, num_layers=2, bidirectional=True, batch_first=True)
    head = torch.nn.Linear(12, 3)
    x = np.random.default_rng(2).normal(size=(4, 11, 8)).astype(np.float32)
    model = RecurrentClassifier("gru", 6, num_layers=2, bidirectional=True, num_classes=3)
    variables = variables_from_torch(torch.nn.ModuleList([gru, head]), model, x)
    with torch.no_grad():
        _, h_n = gru(torch.from_numpy(x))
        expected = head(torch.cat([h_n[-2], h_n[-1]], dim=1)).numpy()
    np.testing.assert_allclose(jax.jit(model.apply)(variables, jnp.asarray(x)), expected, atol=1e-5, rtol=0)


def test_small_receptive_field_cnn_cannot_see_the_order_of_far_apart_events():
    """With events >= 20 steps apart and >= 8 from the ends, swapping A and B leaves every 7-step window's content
    (hence the globally pooled features) unchanged: cnn_local gives identical logits for any weights; the
    61-step CNN does not."""
    x = np.zeros((1, 50, 8), np.float32)
    swapped = x.copy()
    x[0, 10:13], x[0, 33:36] = sequences.EVENT_A, sequences.EVENT_B
    swapped[0, 10:13], swapped[0, 33:36] = sequences.EVENT_B, sequences.EVENT_A
    both = jnp.asarray(np.concatenate([x, swapped]))
    for name, same in (("cnn_local", True), ("cnn", False)):
        model = build_sequence_model(name)
        logits = jax.jit(model.apply)(_random_variables(model, both, seed=7), both)
        assert np.allclose(logits[0], logits[1], atol=1e-5) == same, name


def test_models_reject_non_sequence_input():
    with pytest.raises(InputError, match="batch, time, features"):
        SequenceCNN().init(jax.random.key(0), jnp.zeros((2, 50)))
    with pytest.raises(InputError, match="unknown sequence model"):
        build_sequence_model("resnet")


# ------------------------------------------------------------------------------------------ experiment


def test_full_batch_size_divides_the_data():
    assert full_batch_size(1000, 50) == 50
    assert full_batch_size(270, 50) == 45  # 270 = 6 * 45
    assert full_batch_size(7, 50) == 7


def _runs(task, model, accuracies):
    return [{"task": task, "model": model, "seed": seed, "test_accuracy": value}
            for seed, value in enumerate(accuracies)]


def test_claims_follow_the_paired_intervals():
    runs = (_runs("shifted_motif", "cnn_local", [0.97, 0.98, 0.99]) + _runs("shifted_motif", "mlp", [0.55, 0.50, 0.52])
            + _runs("order", "cnn_local", [0.50, 0.52, 0.49]) + _runs("order", "lstm", [0.99, 0.99, 1.0])
            + _runs("order", "gru", [0.99, 0.98, 0.99]) + _runs("order", "transformer", [0.94, 0.51, 0.99])
            + _runs("motif", "cnn_local", [0.99, 0.99, 1.0]) + _runs("motif", "mlp", [0.68, 0.67, 0.69]))
    claims = {c["id"]: c for c in assess_claims(runs)}
    # 5B local patterns, as the student claims it: the CNN solves motif (its interval above 0.95: the Wilson-type
    # interval of 0.99, 0.99, 1.0 is [0.958, 0.999]) and beats the MLP, which shares no weights over time.
    assert set(claims["5B-local-patterns"]["evidence"]) == {"motif: cnn_local >= 0.95", "motif: cnn_local - mlp"}
    assert claims["5B-local-patterns"]["verdict"] == "supported"
    # 5A: the CNN beats the MLP on every seed by about 0.46: the whole interval lies above 0.
    assert claims["5A-position"]["verdict"] == "supported"
    found = claims["5A-position"]["evidence"]["shifted_motif: cnn_local - mlp"]
    assert found["mean"] == pytest.approx(round(np.mean([0.42, 0.48, 0.47]), 4))
    # 5B long range: the transformer's gap (0.44, -0.01, 0.50) straddles 0, so the joint claim is not shown.
    assert claims["5B-long-range"]["evidence"]["order: transformer - cnn_local"]["verdict"] == "not shown"
    assert claims["5B-long-range"]["evidence"]["order: lstm - cnn_local"]["verdict"] == "supported"
    assert claims["5B-long-range"]["verdict"] == "not shown"
    assert claims["5B-rising-trend"]["verdict"] == "not measured"  # no trend runs
    # LSTM and GRU intervals lie above 0.95 ([0.958, 0.999] and [0.963, 0.995]; with three seeds at 0.99, 0.97, 0.99
    # the interval [0.924, 0.997] would not).
    assert claims["5C-sequential"]["verdict"] == "supported"
    runs = [dict(r, test_accuracy=0.1 + r["test_accuracy"]) if r["model"] == "mlp" else r for r in runs]
    runs = [dict(r, test_accuracy=r["test_accuracy"] - 0.45) if r["model"] == "cnn_local" else r for r in runs]
    assert {c["id"]: c for c in assess_claims(runs)}["5A-position"]["verdict"] == "refuted"


@pytest.mark.slow
def test_quick_cli_writes_results_for_every_model_and_task(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["tasks"] == ["order", "shifted_motif"] and results["config"]["seeds"] == [0, 1]
    assert len(results["runs"]) == 2 * 2 * len(SEQUENCE_MODELS)  # tasks x seeds x models
    for row in results["summary"]:
        assert row["parameters"] == EXPECTED_PARAMETERS[row["model"]]
        assert 0 <= row["accuracy_mean"] <= 1 and row["seconds_per_member"] > 0 and row["seeds"] == 2
    assert {c["verdict"] for c in results["claims"]} <= {"supported", "refuted", "not shown", "not measured"}
    assert (tmp_path / "results.png").stat().st_size > 5000
    printed = capsys.readouterr().out
    assert "| order |" in printed and "| shifted_motif |" in printed
    assert "[not measured]" in printed  # the other tasks were not run


@pytest.mark.parametrize("args, message", [(["--tasks", "sine"], "tasks must be"),
                                           (["--models", "resnet"], "models must be")])
def test_cli_bad_names_are_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["--quick", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
