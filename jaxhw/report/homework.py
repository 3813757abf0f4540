"""The whole homework end to end: every problem computed once by the library, then written as a report.

``run_homework`` calls each experiment once (problem 1's gradient lab, problem 2's autoencoder, problem 4's
MLP and CNN, problem 3's concept checks, which reuse problem 4's trained models, and problem 5's sequence-model
comparison), timing each stage in wall-clock and CPU seconds. ``write_report`` turns the results into
``index.html`` (self-contained: figures inlined as PNG data URIs), ``report.md`` (figures linked beside it)
and ``report.json`` (every number).
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import pathlib
import platform
import sys
import time
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from jaxhw.errors import InputError
from jaxhw.experiments.timeseries import QUICK as TIMESERIES_QUICK


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much each stage trains. FULL answers the homework; QUICK is a smoke run of the same code."""

    name: str
    gradient_epochs: int  # 1C(c): the MLP with and without an extra softmax
    gradient_train_examples: int | None
    autoencoder_epochs: int
    classifier_epochs: int  # problem 4's MLP and CNN, and 3E's loop without zero_grad
    eval_batch_sizes: tuple[int, ...]  # 3G: the CNN scored in train mode at these test batch sizes (besides
    # the eval_batch_size of train_classifier's own test_accuracy_train_mode)
    timeseries: dict  # keyword arguments of compare_sequence_models, with "seeds" a count from --seed
    mistakes_shown: int = 12


# Problem 5: the defaults of python -m jaxhw.timeseries (every task, 3 seeds from --seed, 15 epochs, 1000 samples),
# and its --quick smoke run with one seed.
FULL = Budget("full", gradient_epochs=2, gradient_train_examples=None, autoencoder_epochs=10, classifier_epochs=10,
              eval_batch_sizes=(100, 10),
              timeseries={"seeds": 3, "epochs": 15, "num_train": 1000, "num_test": 1000})
QUICK = Budget("quick", gradient_epochs=1, gradient_train_examples=1000, autoencoder_epochs=1, classifier_epochs=1,
               eval_batch_sizes=(100,), timeseries={"seeds": 1, **TIMESERIES_QUICK})


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
    import jax

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"devices": repr(jax.devices()), "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind, "cpu_cores": cores, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions()}


def _plain(value):
    """A JSON-ready copy: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _drop_trained_objects(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("state", "module")}


def mean_image_mse(train, test) -> float:
    """The test MSE of the best constant guess, the mean training image: what a code that knows nothing
    about the input would score."""
    mean = train.images.astype(np.float64).mean(axis=0) / 255.0
    return float(np.mean((test.images.astype(np.float64) / 255.0 - mean) ** 2))


def run_homework(dataset: str = "mnist", source: str = "auto", data_dir=None, seed: int = 0, quick: bool = False,
                 out: pathlib.Path | None = None, progress: bool | None = None,
                 log: Callable[[str], None] | None = None) -> dict:
    """Run every problem of the homework once and return all results (JSON-ready, trained states dropped).

    With ``out``, each problem's own files (metrics, figures) go to ``out/problemN``. ``log`` receives one
    line per finished stage (default: stderr through tqdm).
    """
    from jaxhw.data.images import DATASETS, load_train_test
    from jaxhw.experiments import concepts
    from jaxhw.experiments.autoencoding import train_autoencoder
    from jaxhw.experiments.classification import evaluate_predictions, train_classifier
    from jaxhw.experiments.gradients import HOMEWORK_TRUE_CLASS, gradient_lab
    from jaxhw.experiments.timeseries import compare_sequence_models

    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    budget = QUICK if quick else FULL
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    started_wall, started_cpu = time.perf_counter(), cpu_seconds()
    directories = {name: (out / name if out is not None else None) for name in
                   ("problem1", "problem2", "problem3", "problem4", "problem5")}
    for directory in directories.values():
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"budget": dataclasses.asdict(budget), "dataset": dataset, "source_requested": source,
                               "seed": seed, "environment": environment(), "stages": {},
                               "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    trained: dict[str, Any] = {}
    data: dict[str, Any] = {}

    def load_data():
        data["train"], data["test"] = load_train_test(dataset, source, data_dir, verbose=True)
        train, test = data["train"], data["test"]
        results["data"] = {"source": train.source, "train_examples": len(train), "test_examples": len(test),
                           "image_shape": list(train.images.shape[1:]), "class_names": list(train.class_names)}

    def problem1():
        lab = gradient_lab(label_as_class=HOMEWORK_TRUE_CLASS, renormalize=True, epochs=budget.gradient_epochs,
                           train_examples=budget.gradient_train_examples, seed=seed, out=directories["problem1"])
        results["problem1"] = lab

    def problem2():
        metrics = train_autoencoder(dataset, source, data_dir, epochs=budget.autoencoder_epochs, seed=seed,
                                    out=directories["problem2"], progress=progress)
        results["problem2"] = {**_drop_trained_objects(metrics),
                               "mean_image_mse": mean_image_mse(data["train"], data["test"])}

    def problem4():
        results["problem4"] = {}
        for model in ("mlp", "cnn"):
            directory = directories["problem4"] / model if out is not None else None
            if directory is not None:
                directory.mkdir(parents=True, exist_ok=True)
            metrics = train_classifier(dataset, source, data_dir, model, epochs=budget.classifier_epochs, seed=seed,
                                       out=directory, progress=progress)
            trained[model] = metrics["state"]
            evaluation = evaluate_predictions(metrics["state"], data["test"], budget.mistakes_shown)
            results["problem4"][model] = {**_drop_trained_objects(metrics), "evaluation": evaluation}
        if out is not None:
            write_problem4_figures(results["problem4"], data["test"], directories["problem4"])

    def problem3():
        checks = concepts.concept_checks(data["train"], seed)
        checks["forgotten_zero_grad_training"] = concepts.forgotten_zero_grad_training(
            data["train"], data["test"], budget.classifier_epochs, seed=seed, progress=progress)
        checks["forgotten_eval"] = concepts.forgotten_eval(trained["cnn"], data["test"], budget.eval_batch_sizes)
        results["problem3"] = checks
        if out is not None:
            write_problem3_figures(results, directories["problem3"])

    def problem5():
        settings = dict(budget.timeseries)
        seeds = range(seed, seed + settings.pop("seeds"))
        results["problem5"] = compare_sequence_models(**settings, seeds=seeds, out=directories["problem5"],
                                                      progress=progress, log=None)

    stages = [("data", "loading the images", load_data), ("problem1", "problem 1: loss and gradient lab", problem1),
              ("problem2", "problem 2: autoencoder", problem2), ("problem4", "problem 4: MLP and CNN", problem4),
              ("problem3", "problem 3: PyTorch concepts", problem3),
              ("problem5", "problem 5: sequence models", problem5)]
    bar = tqdm(stages, desc="homework", unit="stage", disable=None if progress is None else not progress)
    for key, title, stage in bar:
        bar.set_description(title)
        wall, cpu = time.perf_counter(), cpu_seconds()
        stage()
        timing = {"title": title, "wall_seconds": time.perf_counter() - wall, "cpu_seconds": cpu_seconds() - cpu}
        results["stages"][key] = timing
        log(f"jaxhw: {title}: {timing['wall_seconds']:.1f} s wall, {timing['cpu_seconds']:.1f} s CPU")
    results["wall_seconds"] = time.perf_counter() - started_wall
    results["cpu_seconds"] = cpu_seconds() - started_cpu
    return _plain(results)


def write_problem4_figures(problem4: dict, test, directory: pathlib.Path) -> None:
    """Each classifier's confusion matrix and most confidently wrong test images."""
    from jaxhw.report import figures

    for model, result in problem4.items():
        evaluation = result["evaluation"]
        names = evaluation["class_names"]
        figures.confusion_matrix(evaluation["confusion_matrix"], names, directory / f"{model}_confusion.png",
                                 f"{model.upper()}: test confusion matrix (accuracy {evaluation['accuracy']:.3f})")
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            images = test.images[[m["index"] for m in mistakes], :, :, 0] / 255.0
            captions = [f"#{m['index']}: true {names[m['label']]}\nsaid {names[m['predicted']]} "
                        f"({m['confidence']:.0%})" for m in mistakes]
            figures.image_grid(images, captions, directory / f"{model}_mistakes.png",
                               f"{model.upper()}: the most confidently wrong test images")


def write_problem3_figures(results: dict, directory: pathlib.Path) -> None:
    """3E: test accuracy per epoch of the homework MLP with and without zero_grad."""
    from jaxhw.report import figures

    forgotten = results["problem3"]["forgotten_zero_grad_training"]
    correct = results["problem4"]["mlp"]["epochs"]
    untrained = forgotten["untrained_test_accuracy"]
    series = {
        "correct loop (zero_grad each step)": ([0] + [h["epoch"] for h in correct],
                                               [untrained] + [h["test_accuracy"] for h in correct]),
        "zero_grad forgotten": ([0] + [h["epoch"] for h in forgotten["history"]],
                                [untrained] + [h["test_accuracy"] for h in forgotten["history"]]),
        "backward forgotten (nothing moves)": ([0, len(correct)], [untrained, untrained]),
    }
    figures.compare_curves(series, directory / "zero_grad.png", ylabel="test accuracy",
                           title="Homework MLP, Adam(1e-3), same seed and batches")


def write_report(results: dict, out: pathlib.Path) -> dict[str, pathlib.Path]:
    """index.html (self-contained), report.md and report.json in ``out``; returns their paths."""
    from jaxhw.cli import write_json
    from jaxhw.report.answers import build_document
    from jaxhw.report.document import to_html, to_markdown

    document = build_document(results)
    paths = {"html": out / "index.html", "markdown": out / "report.md", "json": out / "report.json"}
    write_json(paths["json"], results)
    for key, text in (("markdown", to_markdown(document)), ("html", to_html(document, out, embed=True))):
        tmp = paths[key].with_name(f".{paths[key].name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, paths[key])
    return paths
