"""Problem 4 in the report: the MLP and the CNN trained and evaluated end to end."""
from __future__ import annotations

from jaxhw.report.document import Figure, Paragraph, Section, Table
from jaxhw.report.wording import ci_field, epochs_text, percent, question, remember, seeds_text, with_interval

NAMES = {"mlp": "MLP (the homework's, 784-64-10)", "cnn": "CNN (2 conv blocks with BatchNorm, Dropout 0.25)"}


def _top_confusions(matrix: list[list[int]], names: list[str], count: int = 3) -> str:
    pairs = sorted(((matrix[i][j], i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j),
                   reverse=True)[:count]
    return ", ".join(f"{names[i]} taken for {names[j]} ({n}x)" for n, i, j in pairs if n)


def sections(results: dict) -> list[Section]:
    """Problem 4's sections of the report."""
    p4, gap = results["problem4"], results["problem4_cnn_minus_mlp"]
    forgotten = results["problem3"]["forgotten_eval"]["rows"][0]
    mlp, cnn = p4["mlp"], p4["cnn"]
    data = (f"{mlp['dataset']} from `{mlp['data_source']}` ({mlp['train_examples']:,} training and "
            f"{mlp['test_examples']:,} test images)")
    runs = (f"{epochs_text(mlp['epochs_run'])} of Adam({mlp['lr']:g}), batch {mlp['batch_size']}, "
            f"{seeds_text(mlp['seeds'])}")
    answer = (f"On {data}, after {runs}, the MLP reaches test accuracy {ci_field(mlp, 'test_accuracy')} and the CNN "
              f"{ci_field(cnn, 'test_accuracy')} (mean [95% interval] over the seeds); paired over the same seeds the "
              f"CNN is ahead by {with_interval(gap)}: **{gap['verdict']}** that it is the more accurate.")
    rows = [[NAMES[m], f"{r['parameters']:,}", ci_field(r, "test_accuracy"), ci_field(r, "test_loss"),
             f"{r['first_epoch_seconds']:.1f}", f"{r['seconds_per_epoch']:.2f}" if r["epochs_run"] > 1 else "-"]
            for m, r in p4.items() if m in NAMES]
    class_names = cnn["evaluation"]["class_names"]
    evidence = [
        Table(["model", "parameters", "test accuracy", "test loss", "first epoch s (compiling)", "s per later epoch"],
              rows, f"Both models trained as one program of {len(mlp['seeds'])} members each (one per seed)"),
        Paragraph(f"If `model.eval()` is forgotten the CNN scores {ci_field(cnn, 'test_accuracy_train_mode')} (dropout "
                  "on, BatchNorm with each test batch's statistics; section 3G pairs the two). The MLP has neither "
                  "dropout nor BatchNorm, so train and eval mode give it the same predictions."),
    ]
    for model in p4:
        if model in NAMES:
            evidence.append(Figure(f"problem4/{model}/learning_curves.png",
                                   f"{model.upper()}: loss and accuracy per epoch (mean over the seeds, band: 95% "
                                   "interval)"))
    first_seed = mlp["seeds"][0]
    evidence.append(Table(["class"] + [m.upper() for m in NAMES],
                          [[name] + [f"{p4[m]['evaluation']['per_class_accuracy'][i]:.3f}" for m in NAMES]
                           for i, name in enumerate(class_names)], f"Test accuracy per class (seed {first_seed})"))
    for model in NAMES:
        evaluation = p4[model]["evaluation"]
        evidence.append(Figure(f"problem4/{model}_confusion.png",
                               f"{model.upper()}, seed {first_seed}: test confusion matrix. Most frequent confusions: "
                               f"{_top_confusions(evaluation['confusion_matrix'], class_names) or 'none'}"))
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            evidence.append(Figure(f"problem4/{model}_mistakes.png",
                                   f"{model.upper()}, seed {first_seed}: the {len(mistakes)} test images it got wrong "
                                   f"with the highest confidence (from {percent(mistakes[0]['confidence'])} down to "
                                   f"{percent(mistakes[-1]['confidence'])}), with the test index, the true class and "
                                   "the prediction"))
    section = question("problem-4", "Problem 4: training and evaluating the classifiers end to end", "4", answer,
                       evidence)
    section.level = 2
    bullets = [
        f"On this data the CNN beats the homework MLP by {with_interval(gap)} test accuracy ({gap['verdict']}), "
        f"with {cnn['parameters'] / mlp['parameters']:.1f}x the parameters.",
        f"Evaluating the CNN in train mode changes its test accuracy by {with_interval(forgotten['cost'])} at "
        f"batch size {forgotten['batch_size']} ({forgotten['cost']['verdict']} that it costs accuracy); the MLP has "
        "nothing that train mode changes.",
        "The images a model gets wrong with near-certainty are where to look for what it has not learned.",
    ]
    return [section, remember("remember-4", bullets)]
