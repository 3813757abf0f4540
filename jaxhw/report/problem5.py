"""Problem 5 in the report: the sequence models compared over seeds, and the homework's claims with verdicts that
follow their 95% intervals; the key and its evidence."""
from __future__ import annotations

from jaxhw.experiments.timeseries import SOLVED, SYNTHETIC
from jaxhw.intervals import COVERS
from jaxhw.report.document import Bullets, Figure, Note, Paragraph, Section, Table
from jaxhw.report.wording import evidence_section, key_question, over_seeds, seeds_text, with_interval

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
        return with_interval(row["accuracy_mean"], 3, *(row["accuracy_ci95"] or (None, None)))

    def evidence(self, claim_id: str, label: str) -> str:
        """A claim's evidence as 'mean [low, high], verdict', '-' if it was not measured."""
        found = self.claims.get(claim_id, {}).get("evidence", {}).get(label)
        if found is None:
            return "-"
        return f"{with_interval(found['mean'], 3, *(found['ci95'] or (None, None)))}, {found['verdict']}"

    def below(self, key: tuple[str, str]) -> bool:
        """Whether the whole 95% interval of a (task, model) accuracy lies below the solved line."""
        interval = self.rows[key]["accuracy_ci95"]
        return interval is not None and interval[1] < SOLVED

    def still_rising(self, key: tuple[str, str]) -> bool:
        """Whether the test accuracy's gain over the last third of the epochs is above 0 for the whole interval."""
        interval = self.rows[key].get("gain_last_third_ci95")
        return interval is not None and interval[0] > 0

    def verdict(self, claim_id: str) -> str:
        return self.claims[claim_id]["verdict"] if claim_id in self.claims else "not measured"


def _claims_table(claims: list[dict]) -> Table:
    rows = []
    for claim in claims:
        lines = [f"{label}: {with_interval(found['mean'], 3, *(found['ci95'] or (None, None)))} ({found['verdict']})"
                 for label, found in claim["evidence"].items()]
        rows.append([claim["claim"], claim["test"], "; ".join(lines) or "not run", f"**{claim['verdict']}**"])
    return Table(["the student's claim", "how it is tested", "evidence: mean [95% interval] over seeds", "verdict"],
                 rows, over_seeds("The claims of the student's answer, each tested on its task"))


def _for(p5: dict, question: str) -> list[dict]:
    return [c for c in p5["claims"] if c["question"] == question]


SIMPLE_FOR_AN_MLP = {"trend": "a rise at every step", "order": "which of two far-apart events came first"}
CNN_NAMES = {"cnn": "61-step CNN", "cnn_local": "7-step CNN"}
VERDICT_TEXT = {"supported": "supported", "refuted": "refuted",
                "not shown": "not shown: the intervals cannot decide"}


def signed(x: float) -> str:
    """+0.028 / -0.014: a difference with its sign, as the intervals beside it write it."""
    return f"{x:+.3f}"


def _worst_other(m: Measured, model: str, task: str) -> str:
    """The model's worst synthetic task other than ``task``, as "`name` accuracy"."""
    others = [t for t in SYNTHETIC if t != task and m.has(t, model)]
    worst = min(others, key=lambda t: m.rows[(t, model)]["accuracy_mean"])
    return f"`{worst}` {m.accuracy(worst, model)}"


def _numbers_5b(m: Measured) -> str:
    parts = []
    if m.has("order", "cnn_local", "lstm", "cnn"):
        parts.append(f"`order` (events 20+ steps apart): 7-step CNN {m.accuracy('order', 'cnn_local')}, 61-step CNN "
                     f"{m.accuracy('order', 'cnn')}, LSTM {m.accuracy('order', 'lstm')}")
    if m.verdict("5B-rising-trend") not in ("not measured",):
        parts.append(
            f"`trend` (a steady rise): 61-step CNN {m.accuracy('trend', 'cnn')}, 7-step CNN "
            f"{m.accuracy('trend', 'cnn_local')}, LSTM {m.accuracy('trend', 'lstm')}, GRU "
            f"{m.accuracy('trend', 'gru')}; each CNN's worst other task: 61-step {_worst_other(m, 'cnn', 'trend')}, "
            f"7-step {_worst_other(m, 'cnn_local', 'trend')}; 'least effective on a rise', tested against both, "
            f"paired over the seeds: {VERDICT_TEXT[m.verdict('5B-rising-trend')]}")
    return "; ".join(parts)


def _numbers_5c(m: Measured) -> str:
    numbers = (f"on `order`: LSTM {m.accuracy('order', 'lstm')}, GRU {m.accuracy('order', 'gru')}, Transformer "
               f"{m.accuracy('order', 'transformer')}" if m.has("order", "lstm", "gru", "transformer") else "")
    found = m.claims.get("5C-gru-vs-lstm", {}).get("evidence", {})
    average = found.get("mean over the synthetic tasks: lstm - gru")
    if average is None:
        return numbers
    tasks = {label.split(":")[0]: e["mean"] for label, e in found.items() if label.endswith(": lstm - gru")
             and not label.startswith("mean")}
    split = any(x > 0 for x in tasks.values()) and any(x < 0 for x in tasks.values())
    return (numbers + "; LSTM minus GRU, paired over the seeds: "
            + ", ".join(f"`{task}` {signed(x)}" for task, x in tasks.items())
            + f", mean {with_interval(average['mean'], 3, *(average['ci95'] or (None, None)))}: "
            + ("the tasks disagree in sign, so 'the GRU is weaker' is not shown" if split and
               m.verdict("5C-gru-vs-lstm") == "not shown"
               else f"'the GRU is weaker' is {VERDICT_TEXT.get(m.verdict('5C-gru-vs-lstm'), 'not measured')}"))


def key(results: dict) -> list[Section]:
    """Problem 5's questions as the key answers them."""
    m = Measured(results["problem5"])
    matched = [f"{words} (`{task}` {m.accuracy(task, 'mlp')})" for task, words in SIMPLE_FOR_AN_MLP.items()
               if m.has(task, "mlp")]
    motif = (f"a 6-step pattern anywhere (`motif`): MLP {m.accuracy('motif', 'mlp')}, 7-step CNN "
             f"{m.accuracy('motif', 'cnn_local')}" if m.has("motif", "mlp", "cnn_local") else "")
    shifted = (f"`shifted_motif` (the pattern in steps 0-24 in training, 25-49 in testing): MLP "
               f"{m.accuracy('shifted_motif', 'mlp')}, 7-step CNN {m.accuracy('shifted_motif', 'cnn_local')}, 61-step "
               f"CNN {m.accuracy('shifted_motif', 'cnn')}" if m.has("shifted_motif", "mlp", "cnn_local", "cnn")
               else "")
    q5a = key_question(
        "q5a", "5A. Why an MLP may be a poor choice", "5A",
        "An MLP gives every (time step, feature) pair its own weights, so a multi-step pattern learned at one time "
        "is unknown at another: it is a poor choice when such a pattern decides the class and can appear anywhere. "
        + (f"Where weights tied to positions suffice, {' or '.join(matched)}, it did as well as the best models, "
           "and its" if matched else "Its")
        + " 12,800 unshared first-layer weights are a minor cost at 400 inputs.",
        "; ".join(part for part in (motif, shifted) if part), "e-q5a")
    answer_5b = ("A 1-D CNN slides its filters along time with the 8 features as input channels; it is most "
                 "effective when short patterns decide the class wherever they occur, and least effective when the "
                 "label depends on steps farther apart than its receptive field (the span of steps one output sees). "
                 "A steady rise shows at every step, within even a short filter's reach, so it is no CNN's worst "
                 "case.")
    q5b = key_question("q5b", "5B. When a CNN works best, and worst", "5B", answer_5b, _numbers_5b(m), "e-q5b")
    answer_5c = ("Recurrent networks (LSTM, GRU) read the sequence step by step and carry a state, so order and "
                 "length come naturally and gating keeps gradients alive over many steps. Attention-based "
                 "Transformers let every step look at every other, with position encodings for the order, so a "
                 "dependency costs the same at any distance.")
    q5c = key_question("q5c", "5C. Two other model families", "5C", answer_5c, _numbers_5c(m), "e-q5c")
    p5 = results["problem5"]
    intro = Section("problem-5", "Problem 5: sequence models for 50 x 8 time series", "", [Paragraph(
        f"Every model family trained on synthetic tasks of 50 steps x 8 features, each built so that one inductive "
        "bias decides it, with one budget for all: "
        f"{p5['config']['epochs']} epochs, {seeds_text(p5['config']['seeds'])}. Two CNNs differ in reach: each "
        "output of the 7-step CNN sees 7 consecutive steps, each of the dilated 61-step CNN sees 61 (its receptive "
        "field). The tasks, the full table and the claims are in [the evidence](#e-problem-5).")], 2)
    return [intro, q5a, q5b, q5c]


def _e5(p5: dict, m: Measured) -> Section:
    config, summary = p5["config"], p5["summary"]
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
    blocks = [
        Paragraph(f"`jaxhw.experiments.timeseries.compare_sequence_models` (`python -m jaxhw.timeseries`): "
                  f"Adam({config['lr']:g}), {config['epochs']} epochs, {config['num_train']} training and "
                  f"{config['num_test']} test samples per synthetic task, {seeds_text(config['seeds'])}. The seed "
                  "draws the data, the initial weights, the batch order and dropout, so two models compared on the "
                  "same seed saw the same data."),
        Bullets([f"`{t}`: {descriptions[t]}" for t in tasks if t in descriptions]),
        Table(["task"] + models, rows, f"Test accuracy, mean [95% interval] over seeds ({COVERS})"),
        Figure("problem5/results.png", "Test accuracy per task and model, mean with its 95% interval over seeds"),
        Paragraph(f"A claim is **supported** when the whole 95% interval of its paired difference (or of an accuracy "
                  f"against the solved line {SOLVED}) lies on its side, **refuted** when it lies wholly on the other "
                  "side, and **not shown** when the interval straddles it: the seeds cannot decide. A claim about "
                  "two architectures in general, tested on the average over the synthetic tasks, is **not shown** "
                  "whatever the average's interval when the tasks' own mean differences disagree in sign: one task "
                  "would then refute what another supports."),
    ]
    if any(c["verdict"] == "not measured" for c in p5["claims"]):
        blocks.append(Note("Some claims need tasks or models this run did not train (a `--quick` run trains two "
                           "tasks): they are marked 'not measured'.", "info"))
    return evidence_section("e-problem-5", "5", blocks, "Problem 5: the tasks and the table")


def _e5a(p5: dict, m: Measured) -> Section:
    blocks = [_claims_table(_for(p5, "5A"))]
    if m.has("shifted_motif", "cnn", "cnn_local"):
        blocks.append(Paragraph(
            f"The dilated CNN shares its weights over time too, yet scores {m.accuracy('shifted_motif', 'cnn')} on "
            "`shifted_motif`: its 61-step receptive field is longer than the 50-step sequence, so every output also "
            "sees the zero padding at the ends and can tell where in the sequence it is. What carried the pattern "
            "to positions never seen in training was weight sharing with a field shorter than the sequence (the "
            "7-step CNN); this reading fits the two CNNs' scores but no separate run tests it."))
    if m.has("shifted_motif", "lstm", "gru"):
        below = all(m.below(("shifted_motif", model)) for model in ("lstm", "gru"))
        blocks.append(Paragraph(
            f"LSTM and GRU score {m.accuracy('shifted_motif', 'lstm')} and {m.accuracy('shifted_motif', 'gru')} on "
            "`shifted_motif`" + (f", below the solved line {SOLVED} as well; this run does not test why."
                                 if below else ".")))
    if m.has("motif", "mlp", "cnn_local"):
        blocks.append(Paragraph(
            f"Where the pattern may sit anywhere in training as well (`motif`) the MLP scores "
            f"{m.accuracy('motif', 'mlp')} against {m.accuracy('motif', 'cnn_local')} for the 7-step CNN: it must "
            "learn the pattern separately at each position."))
    mlp_rows = [r for key, r in m.rows.items() if key[1] == "mlp" and key[0] != "vowels"]
    if mlp_rows:
        blocks.append(Paragraph(
            f"The parameter argument: the sequence MLP's first layer holds 50 x 8 x 32 = {MLP_FIRST_LAYER:,} of its "
            f"{mlp_rows[0]['parameters']:,} parameters, one per (time step, feature, unit). That is not unmanageable "
            "at 50 x 8; the cost is that none of them is shared across time, while a 1-D CNN's kernels serve all 50 "
            "steps and its size does not depend on the length."))
    return evidence_section("e-q5a", "5A", blocks)


def _e5c(p5: dict, m: Measured) -> Section:
    blocks = [_claims_table(_for(p5, "5C"))]
    rising = [m.rows[(task, model)] for task in SYNTHETIC for model in ("lstm", "gru") if m.has(task, model)
              and m.rows[(task, model)]["accuracy_mean"] < SOLVED and m.still_rising((task, model))]
    if rising:
        blocks.append(Paragraph(
            "Where LSTM or GRU stay below the solved line, the budget may be the limit rather than the architecture: "
            + "; ".join(f"on `{row['task']}` the {row['model'].upper()}'s test accuracy still rose by "
                        f"{with_interval(row['gain_last_third'], 3, *row['gain_last_third_ci95'])} over the last "
                        "third of the epochs" for row in rising)
            + f" ({p5['config']['epochs']} epochs for every model)."))
    if m.has("vowels", "lstm", "gru"):
        blocks.append(Paragraph(
            f"On the real JapaneseVowels task (nine speakers, twelve features: not the homework's binary 50 x 8 data, "
            f"so it is reported beside the synthetic tasks and averaged into nothing) LSTM scores "
            f"{m.accuracy('vowels', 'lstm')} and GRU {m.accuracy('vowels', 'gru')}."))
    return evidence_section("e-q5c", "5C", blocks)


def evidence(results: dict) -> list[Section]:
    """Problem 5's table, figure, claims and notes."""
    p5 = results["problem5"]
    m = Measured(p5)
    return [_e5(p5, m), _e5a(p5, m), evidence_section("e-q5b", "5B", [_claims_table(_for(p5, "5B"))]), _e5c(p5, m)]
