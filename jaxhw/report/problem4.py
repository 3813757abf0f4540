"""Problem 4 in the report: the notebook cannot be graded; the MLP and the CNN trained and evaluated end to end
stand in for it. The key and its evidence."""
from __future__ import annotations

from jaxhw.intervals import COVERS, sampling_error
from jaxhw.report.document import Figure, Paragraph, Section, Table
from jaxhw.report.wording import (
    ci_field,
    epochs_text,
    evidence_section,
    key_question,
    over_seeds,
    percent,
    seeds_text,
    with_interval,
)

NAMES = {"mlp": "MLP (the homework's, 784-64-10)", "cnn": "CNN (2 conv blocks with BatchNorm, Dropout 0.25)"}
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000


def _top_confusions(matrix: list[list[int]], names: list[str], count: int = 3) -> str:
    pairs = sorted(((matrix[i][j], i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j),
                   reverse=True)[:count]
    return ", ".join(f"{names[i]} taken for {names[j]} ({n}x)" for n, i, j in pairs if n)


def _size_text(results: dict) -> str:
    """What the training-set sizes measured say about the distance to all of MNIST."""
    size = results.get("problem4_training_size")
    if not size or not size["gains"]:
        return ""
    last = size["gains"][-1]
    if last["verdict"] == "supported":
        trend = (f"{last['from']:,} to {last['to']:,} training digits still raised the MLP's accuracy by "
                 f"{with_interval(last)}: on all {MNIST_TRAIN:,} both would score higher, by an amount not measured "
                 "here")
    else:
        trend = (f"{last['from']:,} to {last['to']:,} training digits changed the MLP's accuracy by "
                 f"{with_interval(last)} ({last['verdict']}), so this run cannot say that more data would help")
    return trend


def key(results: dict) -> list[Section]:
    """Problem 4 as the key states it."""
    p4, gap = results["problem4"], results["problem4_cnn_minus_mlp"]
    mlp, cnn = p4["mlp"], p4["cnn"]
    runs = (f"{epochs_text(mlp['epochs_run'])} of Adam({mlp['lr']:g}), batch {mlp['batch_size']}, "
            f"{seeds_text(mlp['seeds'])}")
    verdict = {"supported": "the CNN is the more accurate", "refuted": "the MLP is the more accurate",
               "not shown": "the seeds do not separate them"}[gap["verdict"]]
    error = sampling_error(mlp["test_accuracy"], mlp["test_examples"])
    subset = ("a subset of MNIST" if mlp["data_source"].startswith("embedded")
              else f"{mlp['dataset']} from `{mlp['data_source']}`")
    numbers = (f"{mlp['train_examples']:,} training and {mlp['test_examples']:,} test images ({subset}), so about "
               f"±{error:.3f} of test-set sampling error")
    size = _size_text(results)
    numbers += f"; {size}" if size else ""
    section = key_question(
        "problem-4", "Problem 4: the notebook", "4",
        "The notebook is not in the homework's text, so it cannot be graded here. Standing in for it, after "
        f"{runs}, the homework MLP reaches test accuracy {ci_field(mlp, 'test_accuracy')} and a small CNN "
        f"{ci_field(cnn, 'test_accuracy')}; the CNN is ahead by {with_interval(gap)}, paired ({verdict}).", numbers,
        "e-problem-4")
    section.level = 2
    return [section]


def evidence(results: dict) -> list[Section]:
    """Problem 4's tables and figures."""
    p4 = results["problem4"]
    mlp, cnn = p4["mlp"], p4["cnn"]
    rows = [[NAMES[m], f"{r['parameters']:,}", ci_field(r, "test_accuracy"), ci_field(r, "test_loss"),
             f"{r['first_epoch_seconds']:.1f}", f"{r['seconds_per_epoch']:.2f}" if r["epochs_run"] > 1 else "-"]
            for m, r in p4.items() if m in NAMES]
    class_names = cnn["evaluation"]["class_names"]
    blocks = [
        Table(["model", "parameters", "test accuracy", "test loss", "first epoch s (compiling)", "s per later epoch"],
              rows, over_seeds(f"Both models trained as one program of {len(mlp['seeds'])} members each (one per "
                               "seed)")),
        Paragraph(f"If `model.eval()` is forgotten the CNN scores {ci_field(cnn, 'test_accuracy_train_mode')} at test "
                  f"batch {cnn['eval_batch_size']} (dropout on, BatchNorm with each test batch's statistics; 3G pairs "
                  "the two at several batch sizes). The MLP has neither dropout "
                  "nor BatchNorm, so train and eval mode give it the same predictions."),
    ]
    size = results.get("problem4_training_size")
    if size:
        measured = zip(size["sizes"], size["test_accuracy"])
        blocks.append(Table(["training digits", f"{size['model'].upper()} test accuracy"],
                            [[f"{n:,}", with_interval(found)] for n, found in measured],
                            f"The {size['model'].upper()} on random subsets of the training set, "
                            f"{epochs_text(size['epochs'])}, {seeds_text(size['seeds'])}, the same "
                            f"{size['test_examples']:,} test images; {COVERS}"))
    for model in NAMES:
        blocks.append(Figure(f"problem4/{model}/learning_curves.png",
                             f"{model.upper()}: loss and accuracy per epoch (mean over the seeds, band: 95% interval)"))
    first_seed = mlp["seeds"][0]
    blocks.append(Table(["class"] + [m.upper() for m in NAMES],
                        [[name] + [f"{p4[m]['evaluation']['per_class_accuracy'][i]:.3f}" for m in NAMES]
                         for i, name in enumerate(class_names)], f"Test accuracy per class (seed {first_seed})"))
    for model in NAMES:
        evaluation = p4[model]["evaluation"]
        blocks.append(Figure(f"problem4/{model}_confusion.png",
                             f"{model.upper()}, seed {first_seed}: test confusion matrix. Most frequent confusions: "
                             f"{_top_confusions(evaluation['confusion_matrix'], class_names) or 'none'}"))
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            blocks.append(Figure(f"problem4/{model}_mistakes.png",
                                 f"{model.upper()}, seed {first_seed}: the {len(mistakes)} test images it got wrong "
                                 f"with the highest confidence (from {percent(mistakes[0]['confidence'])} down to "
                                 f"{percent(mistakes[-1]['confidence'])}), with the test index, the true class and the "
                                 "prediction"))
    return [evidence_section("e-problem-4", "4", blocks, "Problem 4: evidence")]
