"""The whole homework end to end: every problem computed once by the library, for the report to write.

``run_homework(config)`` calls each experiment once (problem 1's gradient lab, problem 2's autoencoder, problem
4's MLP and CNN, problem 3's concept checks, which reuse problem 4's trained models, and problem 5's
sequence-model comparison), timing each stage in wall-clock and CPU seconds. It writes nothing:
``jaxhw.report.homework_report.write_report`` turns the returned ``HomeworkResults`` into files.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import sys
import time
from typing import Any, Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxhw.common import plain
from jaxhw.configs import HOMEWORK_FULL, HomeworkConfig
from jaxhw.data.images import ImageDataset, load_train_test
from jaxhw.experiments import concepts
from jaxhw.experiments.autoencoding import (
    AutoencoderRun,
    errors_by_class,
    recognised_by_classifier,
    train_autoencoder,
)
from jaxhw.experiments.classification import (
    ClassificationRun,
    accuracy_by_training_size,
    evaluate_predictions,
    train_classifier,
)
from jaxhw.experiments.gradients import gradient_lab
from jaxhw.experiments.timeseries import compare_sequence_models, task_groups
from jaxhw.intervals import ACCURACY_RANGE, paired_difference, verdict
from jaxhw.training.steps import EVAL_BATCH_SIZE


@dataclasses.dataclass(frozen=True)
class HomeworkResults:
    """Everything one run of the homework computed: ``record`` (JSON-ready, what report.json holds) and the
    objects its figures need (the autoencoder's pictures, the trained classifiers, the test images)."""

    record: dict
    autoencoder: AutoencoderRun
    classifiers: dict[str, ClassificationRun]
    test: ImageDataset


def cpu_seconds() -> float:
    """CPU time of this process so far, user plus system, every thread included."""
    return time.process_time()


def versions() -> dict[str, str]:
    """Installed versions of the packages the results depend on (torch only when installed)."""
    found = {}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            if package != "torch":
                found[package] = "not installed"
    return found


def environment() -> dict[str, Any]:
    """The machine the run used: JAX's devices, CPU cores, Python, versions."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"devices": repr(jax.devices()), "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind, "cpu_cores": cores, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions()}


def mean_image_mse(train: ImageDataset, test: ImageDataset) -> float:
    """The test MSE of the best constant guess, the mean training image: what a code that knows nothing
    about the input would score."""
    mean = train.images.astype(np.float64).mean(axis=0) / 255.0
    return float(np.mean((test.images.astype(np.float64) / 255.0 - mean) ** 2))


# What the stage bar's ETA weighs the stages by before they run: seconds on 2 CPU cores per training example,
# epoch and member of each model (its evaluation included), per training program (tracing and compiling), and
# for the checks that train nothing, read off the main job's stage and program times (benchmarks/RESULTS.md).
# Only their ratios matter: problem 5 is about three quarters of a full run.
SECONDS_PER_EXAMPLE = {"mlp": 1e-5, "autoencoder": 3e-5, "cnn": 2e-4}
SEQUENCE_SECONDS_PER_EXAMPLE = {"mlp": 1.3e-5, "cnn": 1.5e-4, "cnn_local": 1.2e-4, "lstm": 1.4e-4, "gru": 7.5e-5,
                                "transformer": 1.1e-4}
SECONDS_PER_PROGRAM = 2.0
SECONDS_OF_CHECKS = 9.0  # problem 1's gradient sweeps, problem 3's concept checks
EMBEDDED_TRAIN_EXAMPLES = 4000  # what problem 1 trains on
VOWELS_TRAIN_EXAMPLES = 270


def stage_costs(config: HomeworkConfig, train_examples: int) -> dict[str, list[float]]:
    """Each stage's expected cost as the parts the stage bar moves by: one per training program (its compilation
    plus epochs x examples x members x the model's seconds per example) in the order the stage trains them."""
    def program(seconds_per_example: float, epochs: int, examples: int, members: int) -> float:
        return SECONDS_PER_PROGRAM + seconds_per_example * epochs * examples * members

    gradients, series = config.gradients, config.timeseries
    lab_examples = gradients.train_examples or EMBEDDED_TRAIN_EXAMPLES
    sequence_programs = [program(SEQUENCE_SECONDS_PER_EXAMPLE[model], series.epochs,
                                 VOWELS_TRAIN_EXAMPLES if group == ("vowels",) else series.num_train,
                                 len(group) * series.seeds)
                         for model in series.models for group in task_groups(series.tasks)]
    return {"data": [0.0],  # no estimate of its own: the ETA starts from problem 1's
            "problem1": [SECONDS_OF_CHECKS] + [program(SECONDS_PER_EXAMPLE["mlp"], gradients.epochs, lab_examples,
                                                       gradients.seeds)] * 2,
            "problem2": [program(SECONDS_PER_EXAMPLE["autoencoder"], config.autoencoder_epochs, train_examples,
                                 config.seeds)],
            "problem4": [program(SECONDS_PER_EXAMPLE[model], config.classifier_epochs, train_examples, config.seeds)
                         for model in ("mlp", "cnn")]  # then the MLP on a quarter, a half and all of the data:
                        + [program(SECONDS_PER_EXAMPLE["mlp"], config.classifier_epochs, train_examples * 7 // 4,
                                   config.seeds) + 2 * SECONDS_PER_PROGRAM],
            "problem3": [SECONDS_OF_CHECKS + program(SECONDS_PER_EXAMPLE["mlp"], config.classifier_epochs,
                                                     train_examples, config.seeds)],
            "problem5": sequence_programs}


class StageBar:
    """The main job's bar over its stages: which one runs, and an ETA that weighs each stage by its expected cost
    (``stage_costs``, known once the data is loaded), moved on as each training program of a stage finishes.
    Each program's own bar (``fit``) shows under it; nothing shows off a terminal."""

    def __init__(self, progress: bool | None):
        self.costs: dict[str, list[float]] = {}
        self.parts: list[float] = []
        self.done = 0.0  # the cost of the stages finished
        # smoothing 0: the ETA is the remaining cost at the average rate so far; every move drawn (they are few)
        self.bar = tqdm(total=1.0, bar_format="{desc}{percentage:3.0f}%|{bar}| {elapsed} elapsed, {remaining} left",
                        smoothing=0, mininterval=0, disable=None if progress is None else not progress)

    def __enter__(self) -> "StageBar":
        return self

    def __exit__(self, *exception) -> None:
        self.bar.close()

    def plan(self, costs: dict[str, list[float]]) -> None:
        self.costs = costs
        self.bar.total = sum(sum(parts) for parts in costs.values())

    def start(self, key: str, description: str) -> None:
        self.parts = list(self.costs.get(key, ()))[::-1]  # popped in order
        self.bar.set_description(description)

    def advance(self) -> None:
        """One training program of the stage finished."""
        if len(self.parts) > 1:
            self.bar.update(self.parts.pop())

    def finish(self, key: str) -> None:
        self.done += sum(self.costs.get(key, ()))
        self.bar.update(self.done - self.bar.n)


def run_homework(config: HomeworkConfig = HOMEWORK_FULL, progress: bool | None = None,
                 log: Callable[[str], None] | None = None) -> HomeworkResults:
    """Run every problem of the homework once, as ``config`` budgets it.

    ``log`` receives one line per finished stage (default: stderr through tqdm).
    """
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    started_wall, started_cpu = time.perf_counter(), cpu_seconds()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record: dict[str, Any] = {"budget": config.budget, "config": config.record(), "dataset": config.dataset,
                              "source_requested": config.source, "seed": config.seed, "environment": environment(),
                              "stages": {}, "started": started}
    found: dict[str, Any] = {"classifiers": {}}

    def load_data():
        found["train"], found["test"] = load_train_test(config.dataset, config.source, config.data_dir, verbose=True)
        train, test = found["train"], found["test"]
        record["data"] = {"source": train.source, "train_examples": len(train), "test_examples": len(test),
                          "image_shape": list(train.images.shape[1:]), "class_names": list(train.class_names)}

    def problem1():
        record["problem1"] = gradient_lab(config.gradients)

    def problem2():
        found["autoencoder"] = train_autoencoder(config.autoencode(), progress)
        record["problem2"] = {**found["autoencoder"].metrics,
                              "mean_image_mse": mean_image_mse(found["train"], found["test"]),
                              "by_class": errors_by_class(found["autoencoder"], found["train"], found["test"])}

    def problem4():
        record["problem4"] = {}
        for model in ("mlp", "cnn"):
            run = train_classifier(config.classify(model), progress)
            bar.advance()
            found["classifiers"][model] = run
            # Example by example, one model: the member of the first seed.
            evaluation = evaluate_predictions(run.first, found["test"], config.mistakes_shown)
            record["problem4"][model] = {**run.metrics, "evaluation": evaluation}
        accuracy = {model: [entry["test_accuracy"] for entry in record["problem4"][model]["per_seed"]]
                    for model in ("mlp", "cnn")}
        gap = paired_difference(accuracy["cnn"], accuracy["mlp"], bounds=ACCURACY_RANGE)
        record["problem4_cnn_minus_mlp"] = {**gap, "verdict": verdict(gap)}
        # How far from all of MNIST? The MLP on a quarter, half and all of this training set.
        full = len(found["train"])
        record["problem4_training_size"] = accuracy_by_training_size(
            config.classify("mlp"), found["train"], found["test"], (full // 4, full // 2, full))
        # 2B: which digits come back recognisable? The CNN of the same seed reads each reconstruction.
        cnn = found["classifiers"]["cnn"]
        record["problem2"]["recognised"] = recognised_by_classifier(found["autoencoder"], cnn.state,
                                                                    cnn.config.seed_list, found["test"])

    def problem3():
        checks = concepts.concept_checks(found["train"], config.seed)
        seeds = config.classify("mlp").seed_list
        correct = [entry["test_accuracy"] for entry in record["problem4"]["mlp"]["per_seed"]]
        checks["forgotten_zero_grad_training"] = concepts.forgotten_zero_grad_training(
            found["train"], found["test"], config.classifier_epochs, seeds=seeds, progress=progress,
            correct_accuracies=correct)
        # 3G: the CNN in train mode at the evaluation batch size of problem 4 and at the budget's smaller ones.
        checks["forgotten_eval"] = concepts.forgotten_eval(found["classifiers"]["cnn"].state, found["test"],
                                                           (EVAL_BATCH_SIZE, *config.eval_batch_sizes), seeds)
        record["problem3"] = checks

    def program_trained(line: str) -> None:  # problem 5's line per program, which moves the stage bar on
        bar.advance()
        log(f"jaxhw: problem 5: {line.strip()}")

    def problem5():
        record["problem5"] = compare_sequence_models(config.timeseries, progress=progress, log=program_trained)

    stages = [("data", "loading the images", load_data), ("problem1", "problem 1: loss and gradient lab", problem1),
              ("problem2", "problem 2: autoencoder", problem2), ("problem4", "problem 4: MLP and CNN", problem4),
              ("problem3", "problem 3: PyTorch concepts", problem3),
              ("problem5", "problem 5: sequence models", problem5)]
    with StageBar(progress) as bar:
        for number, (key, title, stage) in enumerate(stages, 1):
            bar.start(key, f"{title} ({number}/{len(stages)})")
            wall, cpu = time.perf_counter(), cpu_seconds()
            stage()
            if key == "data":
                bar.plan(stage_costs(config, len(found["train"])))
            bar.finish(key)
            timing = {"title": title, "wall_seconds": time.perf_counter() - wall, "cpu_seconds": cpu_seconds() - cpu}
            record["stages"][key] = timing
            log(f"jaxhw: {title}: {timing['wall_seconds']:.1f} s wall, {timing['cpu_seconds']:.1f} s CPU")
    record["wall_seconds"] = time.perf_counter() - started_wall
    record["cpu_seconds"] = cpu_seconds() - started_cpu
    return HomeworkResults(plain(record), found["autoencoder"], found["classifiers"], found["test"])
