"""Problem 4 in the report: the MLP and the CNN trained and evaluated end to end."""
from __future__ import annotations

from jaxhw.report.document import Figure, Paragraph, Section, Table
from jaxhw.report.questions import QUESTIONS
from jaxhw.report.wording import four_decimals, percent


def _top_confusions(matrix: list[list[int]], names: list[str], count: int = 3) -> str:
    pairs = sorted(((matrix[i][j], i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j),
                   reverse=True)[:count]
    return ", ".join(f"{names[i]} taken for {names[j]} ({n}x)" for n, i, j in pairs if n)


def sections(results: dict) -> list[Section]:
    """Problem 4's sections of the report."""
    p4 = results["problem4"]
    names = {"mlp": "MLP (the homework's, 784-64-10)", "cnn": "CNN (2 conv blocks with BatchNorm, Dropout 0.25)"}
    rows = [[names[m], f"{r['parameters']:,}", str(r["epochs_run"]), f"{r['test_accuracy']:.4f}",
             four_decimals(r["test_loss"]), f"{r['test_accuracy_train_mode']:.4f}", f"{r['first_epoch_seconds']:.1f}",
             f"{r['seconds_per_epoch']:.2f}" if r["epochs_run"] > 1 else "-"]
            for m, r in p4.items()]
    blocks = [
        Paragraph("`jaxhw.experiments.classification.train_classifier` (`python -m jaxhw.classify --model mlp|cnn`) "
                  f"trains both with cross-entropy on logits and Adam({p4['mlp']['lr']:g}), batch "
                  f"{p4['mlp']['batch_size']}, on {p4['mlp']['train_examples']:,} training images, and evaluates on "
                  f"{p4['mlp']['test_examples']:,} test images after every epoch."),
        Table(["model", "parameters", "epochs", "test accuracy", "test loss", "accuracy if eval is forgotten",
               "first epoch s (compiling)", "s per later epoch"], rows),
    ]
    for model in p4:
        blocks.append(Figure(f"problem4/{model}/learning_curves.png", f"{model.upper()}: loss and accuracy per epoch"))
    class_names = p4["cnn"]["evaluation"]["class_names"]
    blocks.append(Table(["class"] + [m.upper() for m in p4],
                        [[name] + [f"{p4[m]['evaluation']['per_class_accuracy'][i]:.3f}" for m in p4]
                         for i, name in enumerate(class_names)], "Test accuracy per class"))
    for model in p4:
        evaluation = p4[model]["evaluation"]
        blocks.append(Figure(f"problem4/{model}_confusion.png",
                             f"{model.upper()}: test confusion matrix. Most frequent confusions: "
                             f"{_top_confusions(evaluation['confusion_matrix'], class_names) or 'none'}"))
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            blocks.append(Figure(f"problem4/{model}_mistakes.png",
                                 f"{model.upper()}: the {len(mistakes)} test images it got wrong with the highest "
                                 f"confidence (from {percent(mistakes[0]['confidence'])} down to "
                                 f"{percent(mistakes[-1]['confidence'])}), with the test index, the true class and "
                                 "the prediction"))
    better = max(p4, key=lambda m: p4[m]["test_accuracy"])
    worse = min(p4, key=lambda m: p4[m]["test_accuracy"])
    blocks.append(Paragraph(
        f"The {better.upper()} is the more accurate ({p4[better]['test_accuracy']:.4f} against "
        f"{p4[worse]['test_accuracy']:.4f}), with {p4[better]['parameters'] / p4[worse]['parameters']:.1f}x the "
        f"parameters and {p4[better]['seconds_per_epoch'] / max(p4[worse]['seconds_per_epoch'], 1e-9):.0f}x the time "
        "per epoch on this machine. The images it gets wrong with near-certainty are the first place to look for "
        "what it has not learned (or for test labels a person would dispute)."))
    return [Section("problem-4", "Problem 4: training and evaluating the classifiers end to end", QUESTIONS["4"],
                    blocks, 2)]

