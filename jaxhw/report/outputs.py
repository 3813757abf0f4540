"""The files each command writes for its result: metrics and figures of classify, autoencode, gradients and
timeseries (the homework report's own files are jaxhw.report.homework_report's).

The experiments compute and return; these functions only write, each file atomically (jaxhw.files), the
JSON last, so a metrics file that exists describes figures that exist. Nothing here imports the homework, so a
command loads only its own experiment.
"""
from __future__ import annotations

import pathlib

import numpy as np

from jaxhw.experiments.autoencoding import AutoencoderRun
from jaxhw.experiments.classification import ClassificationRun
from jaxhw.experiments.gradients import LOSS_TITLES, LOSSES
from jaxhw.experiments.timeseries import SOLVED
from jaxhw.files import write_json
from jaxhw.report import figures
from jaxhw.report.tensorboard_events import (
    TENSORBOARD,
    extra_softmax_runs,
    sequence_runs,
    supervised_runs,
    write_events,
)


def ensure_folder(path: pathlib.Path) -> pathlib.Path:
    """The folder, made if missing (with its parents)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_classification(run: ClassificationRun, out: pathlib.Path, tensorboard: bool = True) -> list[pathlib.Path]:
    """metrics.json, learning_curves.png and (unless told not to) tensorboard/ of a classify run."""
    metrics = run.metrics
    curves = figures.learning_curves(run.history, ensure_folder(out) / "learning_curves.png",
                                     f"{metrics['model']} on {metrics['dataset']} ({metrics['data_source']})")
    events = write_events(supervised_runs(metrics), out / TENSORBOARD) if tensorboard else []
    return [curves, *events, write_json(out / "metrics.json", metrics)]


def write_autoencoding(run: AutoencoderRun, out: pathlib.Path, tensorboard: bool = True) -> list[pathlib.Path]:
    """reconstructions.png, learning_curves.png, for a 2-D code latent.png and manifold.png, tensorboard/ (unless
    told not to), then metrics.json."""
    shown, out = run.pictures, ensure_folder(out)
    written = [figures.reconstruction_pairs(shown.originals, shown.reconstructions, out / "reconstructions.png",
                                            shown.captions, shown.title)]
    if shown.codes is not None:
        written.append(figures.latent_scatter(shown.codes, shown.labels, shown.class_names, out / "latent.png",
                                              shown.title))
        written.append(figures.latent_manifold(shown.manifold, shown.manifold_extent, out / "manifold.png",
                                               shown.title))
    written.append(figures.learning_curves(run.history, out / "learning_curves.png", shown.title))
    if tensorboard:
        written += write_events(supervised_runs(run.metrics), out / TENSORBOARD)
    return written + [write_json(out / "metrics.json", run.metrics)]


def write_gradient_lab(result: dict, out: pathlib.Path, tensorboard: bool = True) -> list[pathlib.Path]:
    """gradients.png (the sweep of |dL/dz_true|), tensorboard/ (1C's training, unless told not to) and
    gradients.json (every number) of problem 1."""
    sweep, table = result["sweep"], result["tables"]["float64"]
    panels = {f"|dL/d{symbol}_true|": {LOSS_TITLES[loss]: np.abs(sweep[key][loss]) for loss in LOSSES[::-1]}
              for symbol, key in (("ŷ", "dL_dyhat_true"), ("z", "dL_dz_true"))}
    figure = figures.gradient_sweep(sweep["p_true"], panels, ensure_folder(out) / "gradients.png",
                                    f"Gradients for true class {table['true_class']} (the other classes share the rest "
                                    "evenly)", marks=(table["p_true"],))
    written = [figure]
    if tensorboard:
        written += write_events(extra_softmax_runs(result["problem_1c"]["training"]), out / TENSORBOARD)
    return written + [write_json(out / "gradients.json", result)]


def write_timeseries(results: dict, out: pathlib.Path, tensorboard: bool = True) -> list[pathlib.Path]:
    """results.png (accuracy per task and model), tensorboard/ (unless told not to) and results.json of
    problem 5."""
    config = results["config"]
    figure = figures.grouped_bars(results["summary"], ensure_folder(out) / "results.png", group="task", series="model",
                                  title=f"Test accuracy over {len(config['seeds'])} seed(s), {config['epochs']} "
                                        "epochs (mean, 95% interval)", reference=SOLVED)
    events = write_events(sequence_runs(results), out / TENSORBOARD) if tensorboard else []
    return [figure, *events, write_json(out / "results.json", results)]
