"""Every file jaxhw writes for a result: each command's metrics and figures, and the homework report.

The experiments compute and return; these functions only write, each file atomically (jaxhw.common), the
JSON last, so a metrics file that exists describes figures that exist.
"""
from __future__ import annotations

import pathlib

import numpy as np

from jaxhw.experiments.autoencoding import AutoencoderRun
from jaxhw.experiments.classification import ClassificationRun
from jaxhw.experiments.gradients import LOSS_TITLES, LOSSES
from jaxhw.experiments.timeseries import SOLVED
from jaxhw.files import write_json, write_text
from jaxhw.homework import HomeworkResults
from jaxhw.report import figures
from jaxhw.report.contents import build_document
from jaxhw.report.document import to_html, to_markdown
from jaxhw.report.questions import GRADES


def _folder(path: pathlib.Path) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_classification(run: ClassificationRun, out: pathlib.Path) -> list[pathlib.Path]:
    """metrics.json and learning_curves.png of a classify run."""
    metrics = run.metrics
    curves = figures.learning_curves(run.history, _folder(out) / "learning_curves.png",
                                     f"{metrics['model']} on {metrics['dataset']} ({metrics['data_source']})")
    return [curves, write_json(out / "metrics.json", metrics)]


def write_autoencoding(run: AutoencoderRun, out: pathlib.Path) -> list[pathlib.Path]:
    """reconstructions.png, learning_curves.png, for a 2-D code latent.png and manifold.png, then metrics.json."""
    shown, out = run.pictures, _folder(out)
    written = [figures.reconstruction_pairs(shown.originals, shown.reconstructions, out / "reconstructions.png",
                                            shown.captions, shown.title)]
    if shown.codes is not None:
        written.append(figures.latent_scatter(shown.codes, shown.labels, shown.class_names, out / "latent.png",
                                              shown.title))
        written.append(figures.latent_manifold(shown.manifold, shown.manifold_extent, out / "manifold.png",
                                               shown.title))
    written.append(figures.learning_curves(run.history, out / "learning_curves.png", shown.title))
    return written + [write_json(out / "metrics.json", run.metrics)]


def write_gradient_lab(result: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """gradients.png (the sweep of |dL/dz_true|) and gradients.json (every number) of problem 1."""
    sweep, table = result["sweep"], result["tables"]["float64"]
    panels = {f"|dL/d{symbol}_true|": {LOSS_TITLES[loss]: np.abs(sweep[key][loss]) for loss in LOSSES[::-1]}
              for symbol, key in (("ŷ", "dL_dyhat_true"), ("z", "dL_dz_true"))}
    figure = figures.gradient_sweep(sweep["p_true"], panels, _folder(out) / "gradients.png",
                                    f"Gradients for true class {table['true_class']} (the other classes share the rest "
                                    "evenly)", marks=(table["p_true"],))
    return [figure, write_json(out / "gradients.json", result)]


def write_timeseries(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """results.png (accuracy per task and model) and results.json of problem 5."""
    config = results["config"]
    figure = figures.grouped_bars(results["summary"], _folder(out) / "results.png", group="task", series="model",
                                  title=f"Test accuracy over {len(config['seeds'])} seed(s), {config['epochs']} "
                                        "epochs (mean, 95% interval)", reference=SOLVED)
    return [figure, write_json(out / "results.json", results)]


def write_problem3_figures(record: dict, directory: pathlib.Path) -> list[pathlib.Path]:
    """3E: test accuracy per epoch of the homework MLP with and without zero_grad."""
    forgotten = record["problem3"]["forgotten_zero_grad_training"]
    correct = record["problem4"]["mlp"]["epochs"]
    untrained = forgotten["untrained_test_accuracy"]["mean"]
    series = {
        "correct loop (zero_grad each step)": ([0] + [h["epoch"] for h in correct],
                                               [untrained] + [h["test_accuracy"] for h in correct]),
        "zero_grad forgotten": ([0] + [h["epoch"] for h in forgotten["history"]],
                                [untrained] + [h["test_accuracy"] for h in forgotten["history"]]),
        "backward forgotten (nothing moves)": ([0, len(correct)], [untrained, untrained]),
    }
    return [figures.compare_curves(series, _folder(directory) / "zero_grad.png", ylabel="test accuracy (fraction)",
                                   title=f"Homework MLP, Adam(1e-3), mean over {len(forgotten['seeds'])} seed(s)")]


def write_problem4_figures(results: HomeworkResults, directory: pathlib.Path) -> list[pathlib.Path]:
    """Each classifier's metrics and learning curves, confusion matrix and most confidently wrong test images."""
    written = []
    for model, run in results.classifiers.items():
        written += write_classification(run, directory / model)
        evaluation = results.record["problem4"][model]["evaluation"]
        names = evaluation["class_names"]
        written.append(figures.confusion_matrix(
            evaluation["confusion_matrix"], names, directory / f"{model}_confusion.png",
            f"{model.upper()}: test confusion matrix (accuracy {evaluation['accuracy']:.3f})"))
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            images = results.test.images[[m["index"] for m in mistakes], :, :, 0] / 255.0
            captions = [f"#{m['index']}: true {names[m['label']]}\nsaid {names[m['predicted']]} "
                        f"({m['confidence']:.0%})" for m in mistakes]
            written.append(figures.image_grid(images, captions, directory / f"{model}_mistakes.png",
                                              f"{model.upper()}: the most confidently wrong test images"))
    return written


def write_report(results: HomeworkResults, out: pathlib.Path) -> dict[str, pathlib.Path]:
    """Each problem's files in ``out/problemN``, then index.html (self-contained), report.md and report.json;
    returns the paths of the last three."""
    record = results.record
    write_gradient_lab(record["problem1"], out / "problem1")
    write_autoencoding(results.autoencoder, out / "problem2")
    write_problem3_figures(record, out / "problem3")
    write_problem4_figures(results, out / "problem4")
    write_timeseries(record["problem5"], out / "problem5")
    document = build_document(record)
    paths = {"html": out / "index.html", "markdown": out / "report.md", "json": out / "report.json"}
    grades = {key: {"grade": grade, "grade_reason": reason, "missing": missing}
              for key, (grade, reason, missing) in GRADES.items()}
    write_json(paths["json"], {**record, "grades": grades})
    write_text(paths["markdown"], to_markdown(document))
    write_text(paths["html"], to_html(document, out, embed=True))
    return paths
