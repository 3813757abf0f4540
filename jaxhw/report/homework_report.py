"""The homework report's files: each problem's own folder (metrics and figures), then index.html (one
self-contained page), report.md (the answer key), evidence.md and report.json."""
from __future__ import annotations

import pathlib

from jaxhw.files import write_json, write_text
from jaxhw.homework import HomeworkResults
from jaxhw.report import figures
from jaxhw.report.contents import evidence_document, key_document, page_document
from jaxhw.report.document import anchors_of, to_html, to_markdown
from jaxhw.report.outputs import (
    ensure_folder,
    write_autoencoding,
    write_classification,
    write_gradient_lab,
    write_timeseries,
)
from jaxhw.report.questions import GRADES, points
from jaxhw.report.tensorboard_events import TENSORBOARD, homework_runs, write_events


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
    return [figures.compare_curves(series, ensure_folder(directory) / "zero_grad.png",
                                   ylabel="test accuracy (fraction)",
                                   title=f"Homework MLP, Adam(1e-3), mean over {len(forgotten['seeds'])} seed(s)")]


def write_problem4_figures(results: HomeworkResults, directory: pathlib.Path) -> list[pathlib.Path]:
    """Each classifier's metrics and learning curves, confusion matrix and most confidently wrong test images."""
    written = []
    for model, run in results.classifiers.items():
        written += write_classification(run, directory / model, tensorboard=False)
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


def grade_record(key: str) -> dict:
    """A question's grade as report.json holds it, with its points (None where it is not graded)."""
    found = points(key)
    return {**GRADES[key].record(), "points": None if found is None else found[0],
            "points_possible": None if found is None else found[1]}


def write_report(results: HomeworkResults, out: pathlib.Path, tensorboard: bool = True) -> dict[str, pathlib.Path]:
    """Each problem's files in ``out/problemN``, every training's TensorBoard runs in ``out/tensorboard/problemN``
    (unless told not to), then index.html (the key and its evidence on one self-contained page), report.md (the
    key), evidence.md and report.json; returns the paths of the last four."""
    record = results.record
    write_gradient_lab(record["problem1"], out / "problem1", tensorboard=False)
    write_autoencoding(results.autoencoder, out / "problem2", tensorboard=False)
    write_problem3_figures(record, out / "problem3")
    write_problem4_figures(results, out / "problem4")
    write_timeseries(record["problem5"], out / "problem5", tensorboard=False)
    if tensorboard:
        for folder, runs in homework_runs(record).items():
            write_events(runs, out / TENSORBOARD / folder)
    key, evidence = key_document(record), evidence_document(record)
    paths = {"html": out / "index.html", "markdown": out / "report.md", "evidence": out / "evidence.md",
             "json": out / "report.json"}
    write_json(paths["json"], {**record, "grades": {key: grade_record(key) for key in GRADES}})
    write_text(paths["markdown"], to_markdown(key, dict.fromkeys(anchors_of(evidence), paths["evidence"].name)))
    write_text(paths["evidence"], to_markdown(evidence, dict.fromkeys(anchors_of(key), paths["markdown"].name)))
    write_text(paths["html"], to_html(page_document(record), out, embed=True))
    return paths
