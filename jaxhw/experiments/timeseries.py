"""Homework problem 5 measured: every sequence model on every time-series task, over seeds, with one budget.

``compare_sequence_models`` trains each model of jaxhw.models.sequence on the tasks of jaxhw.data.sequences,
Adam on cross-entropy, the same epochs, learning rate and batch size for every model. The seed draws the
data set (synthetic tasks), the initial weights, the batch order and dropout. All synthetic tasks share one
shape (50 x 8, two classes), so for each model every (task, seed) pair is one member of a single
program (``fit(..., members=K, data_per_member=True)``): one trace and one compilation per model instead of
one per run; the real ``vowels`` task (50 x 12, nine classes) is a second program.

The table reports each (task, model) mean test accuracy with its 95% interval over seeds; ``assess_claims``
tests the homework's claims, each as the student made it, with paired differences over the same seeds (same
data, same seed for both models) and a verdict from jaxhw.intervals: supported, refuted or not shown.
"""
from __future__ import annotations

import statistics
import time

import jax
import numpy as np
import optax

from jaxhw.configs import TimeseriesConfig
from jaxhw.data.sequences import DESCRIPTIONS, NUM_FEATURES, SEQUENCE_LENGTH, load_task
from jaxhw.intervals import ACCURACY_RANGE, mean_interval, paired_difference, verdict
from jaxhw.models.sequence import build_sequence_model
from jaxhw.training import fit, parameter_count
from jaxhw.training.fit import program_name
from jaxhw.training.state import check_memory, create_train_states, member

SOLVED = 0.95  # "solves": the whole 95% interval of the mean test accuracy at or above this
VOWELS_EXAMPLES = 270 + 370  # its train and test utterances (jaxhw.data.sequences)
SYNTHETIC = ("motif", "shifted_motif", "order", "trend")


def full_batch_size(num_examples: int, target: int) -> int:
    """The largest batch size <= target that divides the data set, so every batch is full (one step compiled)."""
    return max(size for size in range(1, min(target, num_examples) + 1) if num_examples % size == 0)


def task_groups(tasks: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The tasks that train as one program: the synthetic ones together (one shape), vowels apart."""
    groups = [tuple(t for t in tasks if t in SYNTHETIC), tuple(t for t in tasks if t not in SYNTHETIC)]
    return [group for group in groups if group]


def train_group(model_name: str, tasks: tuple[str, ...], config: TimeseriesConfig,
                progress: bool | None = None) -> list[dict]:
    """Every (task, seed) of one task group as one member of one program; one result per member."""
    pairs = [(task, seed) for task in tasks for seed in config.seed_list]
    sizes = (None, None) if tasks == ("vowels",) else (config.num_train, config.num_test)
    # Each member's data is generated, then stacked (twice its float32 bytes), after this check only.
    examples = len(pairs) * (config.num_train + config.num_test if sizes[0] else VOWELS_EXAMPLES)
    check_memory(2 * examples * SEQUENCE_LENGTH * NUM_FEATURES * 4, f"the data of {len(pairs):,} members (tasks x "
                 "--seeds) needs {}", jax.local_devices(backend="cpu")[0], "train fewer seeds or examples at once")
    splits = [load_task(task, *sizes, seed) for task, seed in pairs]
    train = {key: np.stack([t.arrays()[key] for t, _ in splits]) for key in ("x", "y")}
    test = {key: np.stack([t.arrays()[key] for _, t in splits]) for key in ("x", "y")}
    model = build_sequence_model(model_name, splits[0][0].num_classes)
    states = create_train_states(model, optax.adam(config.lr), train["x"][0][:1], [seed for _, seed in pairs])
    batch = full_batch_size(train["x"].shape[1], config.batch_size)
    started = time.perf_counter()
    states, history = fit(states, train, test, epochs=config.epochs, batch_size=batch, progress=progress,
                          members=len(pairs), data_per_member=True,
                          member_names=[f"{task} seed {seed}" for task, seed in pairs],
                          description=program_name(f"{model_name} on {', '.join(tasks)}", len(config.seed_list)))
    seconds = time.perf_counter() - started
    steady = [h["seconds"] for h in history[1:]] or [history[0]["seconds"]]
    parameters = parameter_count(member(states, 0).params)
    return [{"task": task, "model": model_name, "seed": seed, "parameters": parameters, "batch_size": batch,
             "train_examples": int(train["x"].shape[1]), "test_examples": int(test["x"].shape[1]),
             "train_accuracy": history[-1]["train_accuracy"][k], "test_accuracy": history[-1]["test_accuracy"][k],
             "members_in_program": len(pairs), "program_seconds": seconds,
             "program_seconds_per_epoch": statistics.median(steady),
             "test_accuracy_per_epoch": [h["test_accuracy"][k] for h in history],
             **{f"{key}_per_epoch": [h[key][k] for h in history] for key in ("test_loss", "train_loss",
                                                                             "train_accuracy")},
             "program_epoch_seconds": [h["seconds"] for h in history]}
            for k, (task, seed) in enumerate(pairs)]


def accuracies(runs: list[dict], task: str, model: str) -> list[float] | None:
    """The test accuracies of a (task, model) ordered by seed, or None if it was not run."""
    found = sorted((r["seed"], r["test_accuracy"]) for r in runs if r["task"] == task and r["model"] == model)
    return [accuracy for _, accuracy in found] or None


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (task, model): the mean test accuracy over seeds with its 95% interval, its size and time."""
    rows = []
    for task in dict.fromkeys(r["task"] for r in runs):
        for model in dict.fromkeys(r["model"] for r in runs if r["task"] == task):
            group = [r for r in runs if r["task"] == task and r["model"] == model]
            found = mean_interval(accuracies(runs, task, model), bounds=ACCURACY_RANGE)
            curves = np.asarray([r["test_accuracy_per_epoch"] for r in group])
            third = max(1, curves.shape[1] // 3)
            gains = curves[:, -1] - curves[:, -1 - third] if curves.shape[1] > 1 else None
            gain = mean_interval(gains, bounds=(-1.0, 1.0)) if gains is not None else None
            rows.append({"task": task, "model": model, "seeds": len(group), "accuracy_mean": found["mean"],
                         # still learning? the gain in test accuracy over the last third of the epochs
                         "gain_last_third": None if gain is None else gain["mean"],
                         "gain_last_third_ci95": None if gain is None or gain["low"] is None
                         else [gain["low"], gain["high"]],
                         "accuracy_ci95": None if found["low"] is None else [found["low"], found["high"]],
                         "accuracy_sd": found["sd"], "accuracy_min": min(r["test_accuracy"] for r in group),
                         "parameters": group[0]["parameters"],
                         "seconds_per_member": group[0]["program_seconds"] / group[0]["members_in_program"]})
    return rows


def _interval_record(found: dict) -> dict:
    return {"mean": round(found["mean"], 4), "ci95": None if found["low"] is None else
            [round(found["low"], 4), round(found["high"], 4)], "n": found["n"]}


def _joint(verdicts: list[str]) -> str:
    """Several comparisons that must all hold: supported if all are, refuted if any is, else not shown."""
    if "refuted" in verdicts:
        return "refuted"
    return "supported" if verdicts and all(v == "supported" for v in verdicts) else "not shown"


def assess_claims(runs: list[dict]) -> list[dict]:
    """The homework's problem-5 claims as the student made them, each tested on its task with paired differences
    over seeds (or an accuracy against the solved line) and a three-way verdict; "not measured" when a task or
    model it needs was not run."""

    def difference(task: str, better: str, worse: str) -> tuple[str, dict] | None:
        a, b = accuracies(runs, task, better), accuracies(runs, task, worse)
        if a is None or b is None:
            return None
        found = paired_difference(a, b, bounds=ACCURACY_RANGE)
        return f"{task}: {better} - {worse}", {**_interval_record(found), "verdict": verdict(found)}

    def level(task: str, model: str, above: bool) -> tuple[str, dict] | None:
        values = accuracies(runs, task, model)
        if values is None:
            return None
        found = mean_interval(values, bounds=ACCURACY_RANGE)
        shown = verdict(found, SOLVED) if above else {"supported": "refuted", "refuted": "supported"}.get(
            verdict(found, SOLVED), "not shown")
        return f"{task}: {model} {'>=' if above else '<'} {SOLVED}", {**_interval_record(found), "verdict": shown}

    def claim(claim_id: str, text: str, test: str, evidence: list) -> dict:
        entry = {"id": claim_id, "question": claim_id.split("-")[0], "claim": text, "test": test}
        if any(e is None for e in evidence):
            return {**entry, "evidence": {}, "verdict": "not measured"}
        found = dict(evidence)
        return {**entry, "evidence": found, "verdict": _joint([e["verdict"] for e in found.values()])}

    lstm_minus_gru = [difference(t, "lstm", "gru") for t in SYNTHETIC]
    synthetic_gap = None
    if all(d is not None for d in lstm_minus_gru):
        per_seed = np.mean([np.subtract(accuracies(runs, t, "lstm"), accuracies(runs, t, "gru")) for t in SYNTHETIC],
                           axis=0)
        found = mean_interval(per_seed, bounds=(-1.0, 1.0))
        synthetic_gap = ("mean over the synthetic tasks: lstm - gru", {**_interval_record(found),
                                                                       "verdict": verdict(found)})
    return [
        claim("5A-position", "An MLP learns a pattern at one position apart from the same pattern at another, so it "
              "does not recognise it where it did not see it",
              "shifted_motif (the pattern in steps 0-24 in training, 25-49 in testing): the 7-step CNN, whose "
              "weights are shared over time, beats the MLP on the same seeds",
              [difference("shifted_motif", "cnn_local", "mlp")]),
        claim("5B-local-patterns", "A CNN is most effective on patterns that can appear anywhere (positional "
              "invariance)",
              f"motif (a 6-step pattern anywhere): the 7-step CNN reaches {SOLVED} test accuracy and beats the MLP, "
              "which has no weights shared over time, on the same seeds",
              [level("motif", "cnn_local", above=True), difference("motif", "cnn_local", "mlp")]),
        claim("5B-long-range", "CNNs struggle with long-range dependencies across the entire input",
              "order (which of two events 20 or more steps apart came first): a CNN whose receptive field (7 steps) "
              "is shorter than the gap does worse than the LSTM, GRU and Transformer on the same seeds",
              [difference("order", other, "cnn_local") for other in ("lstm", "gru", "transformer")]),
        claim("5B-rising-trend", "A CNN would be least effective on a pattern that changes over time, such as a "
              "temperature rising over the sequence",
              f"trend (every feature drifts up or down): both CNNs stay below {SOLVED} test accuracy",
              [level("trend", "cnn", above=False), level("trend", "cnn_local", above=False)]),
        claim("5C-sequential", "LSTM and GRU suit this data because they learn sequential patterns",
              f"order (a sequential pattern): LSTM and GRU both reach {SOLVED} test accuracy",
              [level("order", "lstm", above=True), level("order", "gru", above=True)]),
        claim("5C-gru-vs-lstm", "A GRU is 'not as superior in performance as LSTM'",
              "the LSTM beats the GRU on the same seeds, averaged over the four synthetic tasks (vowels, with nine "
              "classes and twelve features, is not the homework's data)", [synthetic_gap]),
    ]


def _cell(row: dict) -> str:
    interval = row["accuracy_ci95"]
    return f"{row['accuracy_mean']:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def format_table(summary: list[dict]) -> str:
    """A Markdown table: one row per task, one column per model, 'mean [95% interval]' of test accuracy."""
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    models = list(dict.fromkeys(r["model"] for r in summary))
    cell = {(r["task"], r["model"]): _cell(r) for r in summary}
    lines = ["| task | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(cell.get((t, m), "-") for m in models) + " |" for t in tasks]
    sizes = {r["model"]: r["parameters"] for r in summary if r["task"] != "vowels"}
    lines.append("| parameters (8 features) | " + " | ".join(f"{sizes[m]:,}" if m in sizes else "-" for m in models)
                 + " |")
    return "\n".join(lines)


def compare_sequence_models(config: TimeseriesConfig = TimeseriesConfig(), progress: bool | None = None,
                            log=print) -> dict:
    """Train every model on every task for every seed with the same budget; return runs, summary and claims.

    ``config.num_train``/``num_test`` size the synthetic tasks (the real ``vowels`` task keeps its own 270/370
    split). ``log`` receives one line per trained program (None: silent).
    """
    started = time.perf_counter()
    runs = []
    for model in config.models:
        for group in task_groups(config.tasks):
            found = train_group(model, group, config, progress)
            runs += found
            if log:
                log(f"{model:>11} on {', '.join(group)}: {len(found)} members in one program, "
                    f"{found[0]['program_seconds']:.1f} s")
    summary = summarize(runs)
    return {
        "config": {"tasks": list(config.tasks), "models": list(config.models), "seeds": list(config.seed_list),
                   "epochs": config.epochs, "lr": config.lr, "optimizer": "adam", "batch_size": config.batch_size,
                   "num_train": config.num_train, "num_test": config.num_test,
                   "objective": "classification (cross-entropy on logits)"},
        "task_descriptions": {t: DESCRIPTIONS[t] for t in config.tasks},
        "summary": summary, "claims": assess_claims(runs), "table": format_table(summary),
        "runs": runs, "total_seconds": time.perf_counter() - started,
    }
