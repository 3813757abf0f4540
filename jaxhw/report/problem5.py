"""Problem 5 in the report: the sequence models compared, and the homework's claims with their verdicts."""
from __future__ import annotations

from jaxhw.experiments.timeseries import SOLVED
from jaxhw.report.document import Bullets, Figure, Note, Paragraph, Section, Table
from jaxhw.report.wording import section, student


def _claims_for(claims: list[dict], question: str) -> list[dict]:
    return [c for c in claims if c["question"] == question]


def _claims_table(claims: list[dict]) -> Table:
    return Table(["claim", "numbers (mean test accuracy)", "verdict"],
                 [[c["claim"], ", ".join(f"{k} {v:.3f}" if isinstance(v, (int, float)) else f"{k} -"
                                         for k, v in c["numbers"].items()), f"**{c['verdict']}**"] for c in claims])


def sections(results: dict) -> list[Section]:
    """Problem 5's sections of the report."""
    p5 = results["problem5"]
    config, summary, claims = p5["config"], p5["summary"], p5["claims"]
    models = list(dict.fromkeys(r["model"] for r in summary))
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    cell = {(r["task"], r["model"]): f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}" for r in summary}
    rows = [[t] + [cell.get((t, m), "-") for m in models] for t in tasks]
    sizes = {r["model"]: r["parameters"] for r in summary if r["task"] != "vowels"}
    if sizes:
        rows.append(["parameters (8 features)"] + [f"{sizes[m]:,}" if m in sizes else "-" for m in models])
    seconds = {m: [r["seconds_mean"] for r in summary if r["model"] == m] for m in models}
    rows.append(["training seconds per run"] + [f"{sum(v) / len(v):.1f}" for v in seconds.values()])
    descriptions = p5.get("task_descriptions", {})
    intro_blocks = [
        Paragraph("`jaxhw.experiments.timeseries.compare_sequence_models` (`python -m jaxhw.timeseries`) trains every "
                  "model family on tasks of 50 time steps x 8 features, each built so that one inductive bias decides "
                  f"it, with the same budget for all: Adam({config['lr']:g}), {config['epochs']} epochs, "
                  f"{config['num_train']} training and {config['num_test']} test samples per synthetic task, "
                  f"{len(config['seeds'])} seed(s) ({', '.join(map(str, config['seeds']))})."),
        Bullets([f"`{t}`: {descriptions[t]}" for t in tasks if t in descriptions]),
        Table(["task"] + models, rows, "Test accuracy, mean ± std over seeds"),
        Figure("problem5/results.png", "Test accuracy per task and model (dashed: the 'solved' line)"),
    ]
    if any(c["verdict"] == "not measured" for c in claims):
        intro_blocks.append(Note("Some claims need tasks this run did not train (a `--quick` run trains one task): "
                                 "they are marked 'not measured'.", "info"))
    intro = Section("problem-5", "Problem 5: sequence models for 50 x 8 time series", "", intro_blocks, 2)
    mlp_size = sizes.get("mlp")
    accuracy = {(r["task"], r["model"]): r["accuracy_mean"] for r in summary}
    mlp_good = [f"`{t}` ({accuracy[(t, 'mlp')]:.3f})" for t in tasks if accuracy.get((t, "mlp"), 0) >= SOLVED]

    def measured(*names: str) -> Paragraph:
        return Paragraph("Mean test accuracy in this run: " + "; ".join(
            f"{name.upper()}: " + ", ".join(f"`{t}` {accuracy[(t, name)]:.3f}" for t in tasks if (t, name) in accuracy)
            for name in names if any((t, name) in accuracy for t in tasks)) + ".")

    a = section("q5a", "5A. Why an MLP may be a poor choice", "5A", [
        student("5A"), measured("mlp", "cnn_local"), _claims_table(_claims_for(claims, "5A")),
        Note("The answer is about images, but the data are time series: 50 time steps x 8 features. The point carries "
             "over: an MLP flattens the 400 numbers and gives every time step its own weights, so a pattern learned at "
             "one time is not recognised at another (no weight sharing, no notion of order or neighbourhood), and it "
             "needs a fixed sequence length. The parameter argument does not: "
             + (f"the MLP here has {mlp_size:,} parameters, about as many as the others. " if mlp_size else "")
             + (f"And an MLP is not poor everywhere: it reaches {', '.join(mlp_good)}, where the class depends on the "
                "whole sequence rather than on where a pattern sits." if mlp_good else "")),
    ])
    trend = next((c for c in claims if c["id"] == "5B-student-trend"), None)
    trend_text = ""
    if trend and trend["verdict"] == "refuted":
        trend_text = (" The student's own example fails here: on `trend` the CNNs reach "
                      + " and ".join(f"{v:.3f}" for v in trend["numbers"].values())
                      + "; a rising trend is a local slope present at every step, which is what a convolution "
                        "detects, not a long-range dependency.")
    elif trend and trend["verdict"] == "supported":
        trend_text = " The student's example holds here: both CNNs stay below the solved line on `trend`."
    b = section("q5b", "5B. When a CNN works best, and worst", "5B", [
        student("5B"), measured("cnn", "cnn_local"), _claims_table(_claims_for(claims, "5B")),
        Note("The answer talks about images (smiles, dogs) and about '50 images'; here a 1-D CNN slides its filters "
             "along time. It is most effective when the class is decided by short local patterns that may occur at "
             "any time (weight sharing gives translation invariance); least effective when the class depends on "
             "relations between time steps farther apart than its receptive field (ordering, long-range "
             "dependencies); dilated convolutions or pooling widen that field." + trend_text),
    ])
    recurrent_misses = [f"`{t}` (LSTM {accuracy[(t, 'lstm')]:.3f}, GRU {accuracy[(t, 'gru')]:.3f})" for t in tasks
                        if (t, "lstm") in accuracy and (t, "gru") in accuracy
                        and min(accuracy[(t, "lstm")], accuracy[(t, "gru")]) < SOLVED]
    aside = next((c for c in claims if c["id"] == "5C-gru-aside"), None)
    aside_text = ""
    if aside and aside["verdict"] != "not measured":
        lstm_mean, gru_mean = aside["numbers"]["mean/lstm"], aside["numbers"]["mean/gru"]
        aside_text = (f" Here the GRU's mean accuracy over the tasks is {gru_mean:.3f} against the LSTM's "
                      f"{lstm_mean:.3f}" + (", so the aside does not hold." if gru_mean >= lstm_mean else "."))
    c = section("q5c", "5C. Two other model families", "5C", [
        student("5C"), measured("lstm", "gru", "transformer"), _claims_table(_claims_for(claims, "5C")),
        Note("LSTM and GRU are reasonable answers: recurrent models read the sequence step by step and carry a state, "
             "so they handle order and variable lengths with few parameters. Loose points: both are recurrent "
             "networks, arguably one family, so a second family is worth naming, e.g. attention-based Transformers "
             "(every time step sees every other, with position encodings) or temporal convolutional networks "
             "(dilated 1-D CNNs); "
             "gating mitigates the vanishing gradient problem, it does not remove it."
             + (" Nor do recurrent models suit every task: they miss " + ", ".join(recurrent_misses) + "."
                if recurrent_misses else "")
             + aside_text),
    ])
    return [intro, a, b, c]

