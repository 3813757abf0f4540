"""Homework problem 5 measured: every sequence model on every time-series task, over seeds, with one budget.

``compare_sequence_models`` trains each model of jaxhw.models.sequence on each task of
jaxhw.data.sequences with jaxhw.training.fit (the ``classification`` objective: cross-entropy on logits,
Adam), the same epochs, learning rate and batch size for every model, and reports the mean and standard
deviation over seeds of the final test accuracy, the parameter count and the training seconds; then it
checks the homework's claims against those numbers (``assess_claims``). The seed draws the data set
(synthetic tasks), the initial weights, the batch order and dropout.
"""
from __future__ import annotations

import statistics
import time

import optax

from jaxhw.configs import TimeseriesConfig
from jaxhw.data.sequences import DESCRIPTIONS, load_task
from jaxhw.models.sequence import build_sequence_model
from jaxhw.training import create_train_state, fit, parameter_count

SOLVED = 0.95  # "reaches" in the claims: mean test accuracy at least this


def full_batch_size(num_examples: int, target: int) -> int:
    """The largest batch size <= target that divides the data set, so every batch is full (one step compiled)."""
    return max(size for size in range(1, min(target, num_examples) + 1) if num_examples % size == 0)


def train_one(task_name: str, model_name: str, seed: int, *, epochs: int, lr: float, batch_size: int,
              num_train: int | None, num_test: int | None, progress: bool | None = None) -> dict:
    """Train one model on one task with one seed; return its final accuracies, size and timing."""
    train, test = load_task(task_name, num_train, num_test, seed)
    model = build_sequence_model(model_name, train.num_classes)
    state = create_train_state(model, optax.adam(lr), train.x[:1], seed)
    batch = full_batch_size(len(train), batch_size)
    started = time.perf_counter()
    state, history = fit(state, train.arrays(), test.arrays(), epochs=epochs, batch_size=batch, progress=progress)
    seconds = time.perf_counter() - started
    steady = [h["seconds"] for h in history[1:]] or [history[0]["seconds"]]
    return {"task": task_name, "model": model_name, "seed": seed, "parameters": parameter_count(state.params),
            "batch_size": batch, "train_examples": len(train), "test_examples": len(test),
            "train_accuracy": history[-1]["train_accuracy"], "test_accuracy": history[-1]["test_accuracy"],
            "seconds": seconds, "seconds_per_epoch": statistics.median(steady),
            "test_accuracy_per_epoch": [h["test_accuracy"] for h in history]}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (task, model): mean and population std of test accuracy over seeds, parameters, seconds."""
    rows = []
    for task in dict.fromkeys(r["task"] for r in runs):
        for model in dict.fromkeys(r["model"] for r in runs if r["task"] == task):
            group = [r for r in runs if r["task"] == task and r["model"] == model]
            accuracies = [r["test_accuracy"] for r in group]
            rows.append({"task": task, "model": model, "seeds": len(group),
                         "accuracy_mean": statistics.fmean(accuracies), "accuracy_std": statistics.pstdev(accuracies),
                         "accuracy_min": min(accuracies), "parameters": group[0]["parameters"],
                         "seconds_mean": statistics.fmean(r["seconds"] for r in group)})
    return rows


def _mean(summary: list[dict], task: str, model: str) -> float | None:
    for row in summary:
        if row["task"] == task and row["model"] == model:
            return row["accuracy_mean"]
    return None


def assess_claims(summary: list[dict]) -> list[dict]:
    """The homework's problem-5 claims, each with the numbers that decide it and a verdict.

    A claim whose task or models were not run gets the verdict "not measured".
    """
    acc = lambda task, model: _mean(summary, task, model)  # noqa: E731

    def claim(claim_id: str, text: str, numbers: dict, holds) -> dict:
        entry = {"id": claim_id, "question": claim_id.split("-")[0], "claim": text}
        if any(v is None for v in numbers.values()):
            return {**entry, "numbers": numbers, "verdict": "not measured"}
        return {**entry, "numbers": {k: round(v, 4) for k, v in numbers.items()},
                "verdict": "supported" if holds(numbers) else "refuted"}

    recurrent_and_attention = {f"order/{m}": acc("order", m) for m in ("lstm", "gru", "transformer")}
    others = ("mlp", "lstm", "gru", "transformer")
    cnn_versus_rest = {f"{t}/{m}": acc(t, m) for t in ("motif", "shifted_motif") for m in ("cnn", "cnn_local", *others)}

    def cnn_is_best(n: dict) -> bool:
        best = {t: max(n[f"{t}/cnn"], n[f"{t}/cnn_local"]) for t in ("motif", "shifted_motif")}
        return all(best[t] >= SOLVED and best[t] >= max(n[f"{t}/{m}"] for m in others) for t in best)

    synthetic = ("motif", "shifted_motif", "order", "trend")
    return [
        claim("5A-mlp-poor",
              "A: an MLP is a poor choice: it learns each time step apart, so a pattern seen only early is not "
              f"recognised late (shifted_motif: the small-receptive-field CNN >= {SOLVED}, the MLP at least "
              "0.2 below it)",
              {"shifted_motif/cnn_local": acc("shifted_motif", "cnn_local"),
               "shifted_motif/mlp": acc("shifted_motif", "mlp")},
              lambda n: n["shifted_motif/cnn_local"] >= SOLVED
              and n["shifted_motif/mlp"] <= n["shifted_motif/cnn_local"] - 0.2),
        claim("5B-cnn-most-effective",
              f"B, most effective: a CNN finds a local pattern wherever it occurs (motif and shifted_motif: the "
              f"better CNN >= {SOLVED} and at least as accurate as every other model)",
              cnn_versus_rest, cnn_is_best),
        claim("5B-cnn-least-effective",
              f"B, least effective: a CNN cannot relate time steps farther apart than its receptive field "
              f"(order: the 7-step CNN below {SOLVED} while LSTM, GRU and attention reach it)",
              {"order/cnn_local": acc("order", "cnn_local"), **recurrent_and_attention},
              lambda n: n["order/cnn_local"] < SOLVED and min(n[k] for k in recurrent_and_attention) >= SOLVED),
        claim("5B-student-trend",
              f"B, the student's example: a CNN struggles with a trend such as a temperature rising over the "
              f"sequence (trend: both CNNs below {SOLVED})",
              {"trend/cnn": acc("trend", "cnn"), "trend/cnn_local": acc("trend", "cnn_local")},
              lambda n: max(n.values()) < SOLVED),
        claim("5C-recurrent-order",
              f"C, the student's reason: LSTM and GRU learn sequential patterns (order: both >= {SOLVED})",
              {"order/lstm": acc("order", "lstm"), "order/gru": acc("order", "gru")},
              lambda n: min(n.values()) >= SOLVED),
        claim("5C-recurrent-blanket",
              f"C, as a blanket answer: LSTM and GRU suit this kind of data (both >= {SOLVED} on every synthetic "
              "task)",
              {f"{t}/{m}": acc(t, m) for t in synthetic for m in ("lstm", "gru")},
              lambda n: min(n.values()) >= SOLVED),
        claim("5C-gru-aside",
              "C, the student's aside: a GRU is 'not as superior in performance as LSTM' (LSTM's mean accuracy "
              "over all tasks run above GRU's)",
              {"mean/lstm": _mean_over_tasks(summary, "lstm"), "mean/gru": _mean_over_tasks(summary, "gru")},
              lambda n: n["mean/lstm"] > n["mean/gru"]),
    ]


def _mean_over_tasks(summary: list[dict], model: str) -> float | None:
    values = [row["accuracy_mean"] for row in summary if row["model"] == model]
    return statistics.fmean(values) if values else None


def format_table(summary: list[dict]) -> str:
    """A Markdown table: one row per task, one column per model, 'mean ± std' of test accuracy."""
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    models = list(dict.fromkeys(r["model"] for r in summary))
    cell = {(r["task"], r["model"]): f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}" for r in summary}
    lines = ["| task | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(cell.get((t, m), "-") for m in models) + " |" for t in tasks]
    sizes = {r["model"]: r["parameters"] for r in summary if r["task"] != "vowels"}
    seconds = {m: statistics.fmean(r["seconds_mean"] for r in summary if r["model"] == m) for m in models}
    lines.append("| parameters (8 features) | " + " | ".join(f"{sizes[m]:,}" if m in sizes else "-" for m in models)
                 + " |")
    lines.append("| training seconds (mean per run) | " + " | ".join(f"{seconds[m]:.1f}" for m in models) + " |")
    return "\n".join(lines)


def compare_sequence_models(config: TimeseriesConfig = TimeseriesConfig(), progress: bool | None = None,
                            log=print) -> dict:
    """Train every model on every task for every seed with the same budget; return runs, summary and claims.

    ``config.num_train``/``num_test`` size the synthetic tasks (the real ``vowels`` task keeps its own 270/370
    split). ``log`` receives one line per finished run (None: silent).
    """
    started = time.perf_counter()
    runs = []
    for task in config.tasks:
        sizes = (None, None) if task == "vowels" else (config.num_train, config.num_test)
        for model in config.models:
            for seed in config.seed_list:
                run = train_one(task, model, seed, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                                num_train=sizes[0], num_test=sizes[1], progress=progress)
                runs.append(run)
                if log:
                    log(f"{task:>13} {model:>11} seed {seed}: test accuracy {run['test_accuracy']:.3f} "
                        f"({run['seconds']:.1f} s)")
    summary = summarize(runs)
    return {
        "config": {"tasks": list(config.tasks), "models": list(config.models), "seeds": list(config.seed_list),
                   "epochs": config.epochs, "lr": config.lr, "optimizer": "adam", "batch_size": config.batch_size,
                   "num_train": config.num_train, "num_test": config.num_test,
                   "objective": "classification (cross-entropy on logits)"},
        "task_descriptions": {t: DESCRIPTIONS[t] for t in config.tasks},
        "summary": summary, "claims": assess_claims(summary), "table": format_table(summary),
        "runs": runs, "total_seconds": time.perf_counter() - started,
    }
