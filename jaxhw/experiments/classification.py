"""Train and evaluate an image classifier (homework problems 1 and 4): the run behind ``python -m jaxhw.classify``.

``train_classifier(ClassifyConfig(...))`` trains with cross-entropy on logits and Adam, as the homework does,
and returns a ``ClassificationRun``: the metrics that metrics.json holds, the history, the trained state.
``evaluate_predictions`` scores a trained classifier example by example (confusion matrix, mistakes).
"""
from __future__ import annotations

import dataclasses
import time

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxhw.common import apply_in_batches, summarize_timing
from jaxhw.configs import CLASSIFIERS, ClassifyConfig
from jaxhw.data.images import ImageDataset
from jaxhw.data.transforms import scale_images
from jaxhw.errors import InputError
from jaxhw.experiments.supervised import TrainedModel, train_supervised
from jaxhw.intervals import ACCURACY_RANGE, mean_interval, paired_difference, verdict
from jaxhw.models.cnn import CNN
from jaxhw.models.mlp import MLP
from jaxhw.training import TrainState, classification, fit, make_eval_fn
from jaxhw.training.fit import to_device
from jaxhw.training.state import create_train_states
from jaxhw.training.steps import EVAL_BATCH_SIZE

CLASSIFIER_MODULES = dict(zip(CLASSIFIERS, (MLP, CNN)))


def build_classifier(name: str, num_classes: int) -> nn.Module:
    """A classifier by name (one of jaxhw.configs.CLASSIFIERS)."""
    if name not in CLASSIFIER_MODULES:
        raise InputError(f"unknown model {name!r}: expected one of {', '.join(CLASSIFIER_MODULES)}")
    return CLASSIFIER_MODULES[name](num_classes=num_classes)


@dataclasses.dataclass(frozen=True)
class ClassificationRun(TrainedModel):
    """A trained classifier (a stack of members with several seeds), and the test split it was scored on."""

    test: ImageDataset


def train_classifier(config: ClassifyConfig, progress: bool | None = None) -> ClassificationRun:
    """Train the configured classifier and score it on the test split in eval mode and, as if model.eval()
    had been forgotten, in train mode."""
    run = train_supervised(config, "classify", lambda train: build_classifier(config.model, train.num_classes),
                           lambda model: classification, progress, model_name=config.model)
    final = run.history[-1]
    # "Forgot model.eval()": the same test set scored in train mode (dropout on, test-batch statistics).
    score_in_train_mode = make_eval_fn(batch_size=EVAL_BATCH_SIZE, train=True, members=len(run.seeds) > 1)
    train_mode = score_in_train_mode(run.state, to_device(run.test.arrays()))
    metrics = {
        "model": config.model, **run.data_record(),
        "epochs_run": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed,
        "seeds": list(run.seeds), "parameters": run.parameters, "devices": run.devices,
        "processes": run.processes,
        **run.summary({"test_accuracy": final["test_accuracy"], "test_loss": final["test_loss"],
                       "test_accuracy_train_mode": np.asarray(train_mode["accuracy"]) / len(run.test)}),
        "eval_batch_size": EVAL_BATCH_SIZE,
        **summarize_timing(run.history),
        "total_seconds": time.perf_counter() - run.started,
        "config": config.record(),
        "epochs": run.history_record(),
    }
    return ClassificationRun(config, metrics, run.state, run.model, run.test)


def predict_probabilities(state: TrainState, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Eval-mode class probabilities (softmax of the logits) of a trained classifier, (N, num_classes)."""
    probabilities = jax.jit(lambda x: jax.nn.softmax(state.apply_fn(state.variables, scale_images(x), train=False)))
    return apply_in_batches(probabilities, images, batch_size)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise InputError(f"labels and predictions must have the same shape, got {labels.shape} and {predictions.shape}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise InputError(f"{name} must lie in [0, {num_classes}), got values from {values.min()} to {values.max()}")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, count: int = 12) -> list[dict]:
    """The misclassified examples the model was surest of, most confident first: index, true and predicted
    class, the probability it gave its prediction and the one it gave the truth."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:count]
    return [{"index": int(i), "label": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(probabilities[i, predicted[i]]),
             "probability_of_label": float(probabilities[i, labels[i]])}
            for i in chosen]


def evaluate_predictions(state: TrainState, test: ImageDataset, mistakes: int = 12) -> dict:
    """Per-example evaluation of a trained classifier on a test set: accuracy, per-class accuracy, the
    confusion matrix and the most confident mistakes."""
    probabilities = predict_probabilities(state, test.images)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(test.labels, predicted, test.num_classes)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {"accuracy": float((predicted == test.labels).mean()), "confusion_matrix": matrix.tolist(),
            "per_class_accuracy": per_class.tolist(), "class_names": list(test.class_names),
            "most_confident_mistakes": most_confident_mistakes(probabilities, test.labels, mistakes)}


def accuracy_by_training_size(config: ClassifyConfig, train: ImageDataset, test: ImageDataset,
                              sizes: tuple[int, ...]) -> dict:
    """How test accuracy grows with the training set: the configured classifier trained on random subsets of
    ``sizes`` examples (drawn once with the first seed, each smaller one inside the larger), one member per seed,
    with the paired gain of each doubling-or-more step between consecutive sizes."""
    if not sizes or any(not 1 <= size <= len(train) for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise InputError(f"sizes must be increasing numbers of examples in [1, {len(train)}], got {list(sizes)}")
    seeds = config.seed_list
    order = np.random.default_rng(seeds[0]).permutation(len(train))
    finals = []
    for size in sizes:
        keep = np.sort(order[:size])
        states = create_train_states(build_classifier(config.model, train.num_classes), optax.adam(config.lr),
                                     train.images[:1], seeds)
        _, history = fit(states, {"x": train.images[keep], "y": train.labels[keep]}, test.arrays(),
                         epochs=config.epochs, batch_size=config.batch_size, progress=False, members=len(seeds),
                         member_names=[f"seed {seed}" for seed in seeds])
        finals.append(history[-1]["test_accuracy"])
    gains = []
    for (smaller, low), (larger, high) in zip(zip(sizes, finals), zip(sizes[1:], finals[1:])):
        gain = paired_difference(high, low, bounds=ACCURACY_RANGE)
        gains.append({"from": smaller, "to": larger, **gain, "verdict": verdict(gain)})
    return {"model": config.model, "sizes": list(sizes), "seeds": list(seeds), "epochs": config.epochs,
            "test_examples": len(test), "test_accuracy_per_seed": [list(map(float, f)) for f in finals],
            "test_accuracy": [mean_interval(f, bounds=ACCURACY_RANGE) for f in finals], "gains": gains}
