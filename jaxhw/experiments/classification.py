"""Train and evaluate an image classifier (homework problems 1 and 4): the function behind jaxhw.classify."""
from __future__ import annotations

import pathlib
import statistics
import time

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxhw.data.images import ImageDataset, load_train_test
from jaxhw.errors import InputError
from jaxhw.models.cnn import CNN
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state, fit, make_eval_fn
from jaxhw.training.checkpoint import open_checkpoints
from jaxhw.training.fit import to_device
from jaxhw.training.steps import EVAL_BATCH_SIZE

CLASSIFIERS = {"mlp": MLP, "cnn": CNN}


def build_classifier(name: str, num_classes: int) -> nn.Module:
    """A classifier by name (see CLASSIFIERS)."""
    if name not in CLASSIFIERS:
        raise InputError(f"unknown model {name!r}: expected one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name](num_classes=num_classes)


def parameter_count(params) -> int:
    """Number of trainable scalars."""
    return int(sum(np.size(p) for p in jax.tree_util.tree_leaves(params)))


def summarize_timing(history: list[dict]) -> dict:
    """First epoch (compilation included) apart from the median of the rest."""
    seconds = [h["seconds"] for h in history]
    steady = seconds[1:] or seconds
    return {"first_epoch_seconds": seconds[0], "seconds_per_epoch": statistics.median(steady)}


def as_arrays(dataset: ImageDataset) -> dict:
    """The dict of arrays the training loop takes."""
    return {"x": dataset.images, "y": dataset.labels}


def train_classifier(dataset: str = "mnist", source: str = "auto", data_dir=None, model: str = "mlp",
                     epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     out: pathlib.Path | None = None, progress: bool | None = None, devices: int | None = 1,
                     checkpoint_dir=None, resume: bool = False, keep_checkpoints: int = 3) -> dict:
    """Train a classifier with cross-entropy on logits and Adam, as the homework does; return its metrics.

    With ``out`` it writes ``metrics.json`` and ``learning_curves.png`` there. ``devices`` share each batch
    (None: all); ``checkpoint_dir`` keeps epoch-end checkpoints, which ``resume`` continues from.
    """
    from jaxhw.cli import write_json
    from jaxhw.report.figures import learning_curves

    started = time.perf_counter()
    if model not in CLASSIFIERS:  # fail before loading any data
        build_classifier(model, 0)
    train, test = load_train_test(dataset, source, data_dir, verbose=True)
    module = build_classifier(model, train.num_classes)
    state = create_train_state(module, optax.adam(lr), train.images[:1], seed)
    checkpoints = open_checkpoints(checkpoint_dir, keep_checkpoints, resume=resume, description={
        "task": "classify", "model": model, "dataset": dataset, "batch_size": batch_size, "lr": lr,
        "seed": seed, "parameters": parameter_count(state.params)})
    devices_used = jax.device_count() if devices is None else devices
    state, history = fit(state, as_arrays(train), as_arrays(test), epochs=epochs, batch_size=batch_size,
                         progress=progress, devices=devices_used, checkpoints=checkpoints, resume=resume)
    final = history[-1]
    # "Forgot model.eval()": the same test set scored in train mode (dropout on, test-batch statistics).
    train_mode = make_eval_fn(train=True)(state, to_device(as_arrays(test)))
    train_mode_accuracy = float(train_mode["accuracy"]) / len(test)
    metrics = {
        "model": model, "dataset": dataset, "data_source": train.source,
        "train_examples": len(train), "test_examples": len(test),
        "epochs_run": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "parameters": parameter_count(state.params), "devices": devices_used,
        "test_accuracy": final["test_accuracy"], "test_loss": final["test_loss"],
        "test_accuracy_train_mode": train_mode_accuracy, "eval_batch_size": EVAL_BATCH_SIZE,
        **summarize_timing(history),
        "total_seconds": time.perf_counter() - started,
        "epochs": history,
    }
    if out is not None:
        write_json(out / "metrics.json", metrics)
        learning_curves(history, out / "learning_curves.png", f"{model} on {dataset} ({train.source})")
    return {**metrics, "state": state}


def predict_probabilities(state, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Eval-mode class probabilities (softmax of the logits) of a trained classifier, (N, num_classes)."""
    from jaxhw.experiments.autoencoding import apply_in_batches
    from jaxhw.training.steps import scale_images

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


def evaluate_predictions(state, test: ImageDataset, mistakes: int = 12) -> dict:
    """Per-example evaluation of a trained classifier on a test set: accuracy, per-class accuracy, the
    confusion matrix and the most confident mistakes."""
    probabilities = predict_probabilities(state, test.images)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(test.labels, predicted, test.num_classes)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {"accuracy": float((predicted == test.labels).mean()), "confusion_matrix": matrix.tolist(),
            "per_class_accuracy": per_class.tolist(), "class_names": list(test.class_names),
            "most_confident_mistakes": most_confident_mistakes(probabilities, test.labels, mistakes)}
