"""Problem 5 in the report: the sequence models compared over seeds, and the homework's claims with verdicts that
follow their 95% intervals."""
from __future__ import annotations

from jaxhw.experiments.timeseries import SOLVED, SYNTHETIC
from jaxhw.report.document import Bullets, Figure, Note, Paragraph, Quote, Section, Table
from jaxhw.report.questions import UNPLACED_5A
from jaxhw.report.wording import question, remember, seeds_text, with_interval

MLP_FIRST_LAYER = 50 * 8 * 32  # the sequence MLP's first layer: one weight per (time step, feature, unit)


class Measured:
    """The summary rows and claims of problem 5, looked up by task and model or by claim id."""

    def __init__(self, p5: dict):
        self.rows = {(r["task"], r["model"]): r for r in p5["summary"]}
        self.claims = {c["id"]: c for c in p5["claims"]}

    def has(self, task: str, *models: str) -> bool:
        return all((task, model) in self.rows for model in models)

    def accuracy(self, task: str, model: str) -> str:
        """'0.997 [0.995, 0.999]' for a task and model, '-' if it was not run."""
        row = self.rows.get((task, model))
        if row is None:
            return "-"
        interval = row["accuracy_ci95"]
        return with_interval(row["accuracy_mean"], 3, *(interval or (None, None)))

    def evidence(self, claim_id: str, label: str) -> str:
        """A claim's evidence line as 'mean [low, high]', '-' if it was not measured."""
        found = self.claims.get(claim_id, {}).get("evidence", {}).get(label)
        if found is None:
            return "-"
        interval = found["ci95"]
        return with_interval(found["mean"], 3, *(interval or (None, None)))

    def solved(self, key: tuple[str, str]) -> bool:
        """Whether the whole 95% interval of a (task, model) accuracy lies at or above the solved line."""
        interval = self.rows[key]["accuracy_ci95"]
        return interval is not None and interval[0] >= SOLVED

    def below(self, key: tuple[str, str]) -> bool:
        """Whether the whole 95% interval of a (task, model) accuracy lies below the solved line."""
        interval = self.rows[key]["accuracy_ci95"]
        return interval is not None and interval[1] < SOLVED

    def verdict(self, claim_id: str) -> str:
        return self.claims[claim_id]["verdict"] if claim_id in self.claims else "not measured"


def _claims_table(claims: list[dict]) -> Table:
    rows = []
    for claim in claims:
        lines = [f"{label}: {with_interval(found['mean'], 3, *(found['ci95'] or (None, None)))} ({found['verdict']})"
                 for label, found in claim["evidence"].items()]
        rows.append([claim["claim"], claim["test"], "; ".join(lines) or "not run", f"**{claim['verdict']}**"])
    return Table(["the student's claim", "how it is tested", "evidence: mean [95% interval] over seeds",
                  "verdict"], rows)


def _for(p5: dict, question: str) -> list[dict]:
    return [c for c in p5["claims"] if c["question"] == question]


def _q5a(p5: dict, m: Measured) -> Section:
    mlp_size = m.rows[next(k for k in m.rows if k[1] == "mlp")]["parameters"] if any(k[1] == "mlp" for k in m.rows) \
        else None
    answer = ("An MLP flattens the 50 x 8 numbers and gives every (time step, feature) pair its own weights: a pattern "
              "learned at one time is a different set of weights from the same pattern at another, and nothing tells "
              "it that neighbouring steps are related. "
              + (f"Measured on `shifted_motif` (the pattern early in training, late in testing): the MLP scores "
                 f"{m.accuracy('shifted_motif', 'mlp')} against {m.accuracy('shifted_motif', 'cnn_local')} for the "
                 f"7-step CNN, whose weights are shared over time."
                 if m.has("shifted_motif", "mlp", "cnn_local") else ""))
    evidence = [_claims_table(_for(p5, "5A"))]
    if m.has("shifted_motif", "lstm", "gru") and m.has("motif", "mlp", "cnn_local"):
        recurrent_fail = all(m.below(("shifted_motif", model)) for model in ("lstm", "gru"))
        evidence.append(Paragraph(
            f"On `shifted_motif` LSTM and GRU score {m.accuracy('shifted_motif', 'lstm')} and "
            f"{m.accuracy('shifted_motif', 'gru')}"
            + (", below the solved line too, for another reason: reading only the final hidden state, they must "
               "carry the pattern across the noise that follows it. " if recurrent_fail else ". ")
            + "What is specific to the MLP shows where the pattern "
            f"may sit anywhere in training as well: on `motif` it scores {m.accuracy('motif', 'mlp')} against "
            f"{m.accuracy('motif', 'cnn_local')} for the 7-step CNN (paired difference "
            f"{m.evidence('5B-local-patterns', 'motif: cnn_local - mlp')}), because it must learn the pattern "
            "separately at each of its positions."))
    if mlp_size:
        evidence.append(Paragraph(
            f"The parameter argument, answered by what the parameters are tied to: the MLP's first layer alone holds "
            f"50 x 8 x 32 = {MLP_FIRST_LAYER:,} of its {mlp_size:,} parameters, one per (time step, feature, unit), so "
            "its size grows with the length of the sequence and nothing it learns at one step serves another; a "
            "1-D CNN's kernels are shared by all 50 steps and its size does not depend on the length at all."))
    evidence += [Quote(UNPLACED_5A, "A paragraph after problem 5, under no question"),
                 Paragraph("It makes the right point for images (the same object at another position is learned "
                           "apart); here the positions are time steps and the 'pixels' are (time step, feature) "
                           "pairs.")]
    return question("q5a", "5A. Why an MLP may be a poor choice", "5A", answer, evidence)


def _q5b(p5: dict, m: Measured) -> Section:
    answer = ("A 1-D CNN slides its filters along time, with the 8 features as the input channels of each "
              "convolution (not as a second image axis). It is most effective when short patterns decide the class "
              "wherever they occur, and least effective when the label depends on steps farther apart than its "
              "receptive field. "
              + (f"Measured: on `motif` the 7-step CNN scores {m.accuracy('motif', 'cnn_local')} against the MLP's "
                 f"{m.accuracy('motif', 'mlp')}; on `order` it scores {m.accuracy('order', 'cnn_local')} against the "
                 f"LSTM's {m.accuracy('order', 'lstm')}, while an ordinary CNN with a wider receptive field "
                 f"(dilations 1-2-4-8, 61 steps) scores {m.accuracy('order', 'cnn')}"
                 + (": a wide enough receptive field solves the long-range task." if m.solved(("order", "cnn"))
                    else ".")
                 if m.has("motif", "cnn_local", "mlp") and m.has("order", "cnn_local", "lstm", "cnn") else ""))
    evidence = [_claims_table(_for(p5, "5B"))]
    if m.has("trend", "cnn", "cnn_local"):
        evidence.append(Paragraph(
            f"The student's example, a temperature rising over the sequence (`trend`), is one a CNN with global "
            f"pooling handles: {m.accuracy('trend', 'cnn')} (61-step field) and {m.accuracy('trend', 'cnn_local')} "
            "(7-step field). A rising trend is a local slope present at every step, which is what a convolution "
            "averaged over time measures; it is not a long-range dependency."))
    return question("q5b", "5B. When a CNN works best, and worst", "5B", answer, evidence)


def _q5c(p5: dict, m: Measured) -> Section:
    answer = ("Recurrent networks (LSTM, GRU) read the sequence step by step and carry a state through it, so order "
              "and variable length come naturally; attention-based Transformers let every time step look at every "
              "other, with position encodings for the order; temporal convolutional networks (dilated 1-D CNNs) are a "
              "third family. "
              + (f"Measured on `order`: LSTM {m.accuracy('order', 'lstm')}, GRU {m.accuracy('order', 'gru')}, "
                 f"Transformer {m.accuracy('order', 'transformer')}, dilated CNN {m.accuracy('order', 'cnn')}."
                 if m.has("order", "lstm", "gru", "transformer", "cnn") else ""))
    evidence = [_claims_table(_for(p5, "5C"))]
    slow = [(task, m.rows[(task, "lstm")], m.rows[(task, "gru")]) for task in SYNTHETIC
            if m.has(task, "lstm", "gru") and min(m.rows[(task, "lstm")]["accuracy_mean"],
                                                  m.rows[(task, "gru")]["accuracy_mean"]) < SOLVED
            and max(m.rows[(task, "lstm")]["gain_last_third"] or 0, m.rows[(task, "gru")]["gain_last_third"] or 0) > 0]
    if slow:
        evidence.append(Paragraph(
            "Where LSTM and GRU stay below the solved line, the budget may be the limit rather than the architecture: "
            + "; ".join(f"on `{task}` (LSTM {m.accuracy(task, 'lstm')}, GRU {m.accuracy(task, 'gru')}) their test "
                        f"accuracy still rose by {lstm['gain_last_third']:+.3f} and {gru['gain_last_third']:+.3f} over "
                        "the last third of the epochs" for task, lstm, gru in slow)
            + f" ({p5['config']['epochs']} epochs for every model)."))
    if m.has("vowels", "lstm", "gru"):
        evidence.append(Paragraph(
            f"On the real JapaneseVowels task (nine speakers, twelve features: not the homework's binary 50 x 8 data, "
            f"so it is reported beside the synthetic tasks and averaged into nothing) LSTM scores "
            f"{m.accuracy('vowels', 'lstm')} and GRU {m.accuracy('vowels', 'gru')}."))
    evidence.append(Paragraph("Gating lets gradients pass through many steps far better than a plain RNN's, but it "
                              "mitigates the vanishing gradient problem rather than removing it."))
    return question("q5c", "5C. Two other model families", "5C", answer, evidence)


def sections(results: dict) -> list[Section]:
    """Problem 5's sections of the report."""
    p5 = results["problem5"]
    config, summary = p5["config"], p5["summary"]
    m = Measured(p5)
    models = list(dict.fromkeys(r["model"] for r in summary))
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    rows = [[t] + [m.accuracy(t, model) for model in models] for t in tasks]
    sizes = {r["model"]: r["parameters"] for r in summary if r["task"] != "vowels"}
    if sizes:
        rows.append(["parameters (8 features)"] + [f"{sizes[x]:,}" if x in sizes else "-" for x in models])
    seconds = {x: [r["seconds_per_member"] for r in summary if r["model"] == x] for x in models}
    rows.append(["training seconds per run (share of its program)"] + [f"{sum(v) / len(v):.1f}"
                                                                       for v in seconds.values()])
    descriptions = p5.get("task_descriptions", {})
    intro_blocks = [
        Paragraph("`jaxhw.experiments.timeseries.compare_sequence_models` (`python -m jaxhw.timeseries`) trains every "
                  "model family on tasks of 50 time steps x 8 features, each built so that one inductive bias decides "
                  f"it, with the same budget for all: Adam({config['lr']:g}), {config['epochs']} epochs, "
                  f"{config['num_train']} training and {config['num_test']} test samples per synthetic task, "
                  f"{seeds_text(config['seeds'])}. For each model every (task, seed) pair of the synthetic tasks is "
                  "one member of a single program; the seed draws the data, the initial weights, the batch "
                  "order and dropout, so two models compared on the same seed saw the same data."),
        Bullets([f"`{t}`: {descriptions[t]}" for t in tasks if t in descriptions]),
        Table(["task"] + models, rows, "Test accuracy, mean [95% interval] over seeds"),
        Figure("problem5/results.png", "Test accuracy per task and model, mean with its 95% interval over seeds"),
        Paragraph(f"A claim is **supported** when the whole 95% interval of its paired difference (or of an accuracy "
                  f"against the solved line {SOLVED}) lies on its side, **refuted** when it lies wholly on the other "
                  "side, and **not shown** when the interval straddles it: the seeds cannot decide."),
    ]
    if any(c["verdict"] == "not measured" for c in p5["claims"]):
        intro_blocks.append(Note("Some claims need tasks or models this run did not train (a `--quick` run trains "
                                 "one task): they are marked 'not measured'.", "info"))
    intro = Section("problem-5", "Problem 5: sequence models for 50 x 8 time series", "", intro_blocks, 2)
    bullets = [
        f"Weight sharing over time decides `shifted_motif`: 7-step CNN {m.accuracy('shifted_motif', 'cnn_local')}, "
        f"MLP {m.accuracy('shifted_motif', 'mlp')}.",
        f"The receptive field, not convolution, limits a CNN on `order`: 7 steps {m.accuracy('order', 'cnn_local')}, "
        f"61 steps {m.accuracy('order', 'cnn')}.",
        f"A claim needs its interval: GRU against LSTM is {m.verdict('5C-gru-vs-lstm')} here "
        f"({m.evidence('5C-gru-vs-lstm', 'mean over the synthetic tasks: lstm - gru')}).",
    ]
    return [intro, _q5a(p5, m), _q5b(p5, m), _q5c(p5, m), remember("remember-5", bullets)]
