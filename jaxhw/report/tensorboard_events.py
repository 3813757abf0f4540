"""TensorBoard event files of a run's history, so runs can be compared side by side (``tensorboard --logdir``).

One TensorBoard run per trained member: ``seed_<s>/`` under the command's ``tensorboard/`` folder (several
models or tasks nest one level deeper: ``<objective>/seed_<s>``, ``<task>/<model>/seed_<s>``). Each holds, at step
= epoch, every per-epoch number the run's JSON holds (``train_loss`` as ``loss/train``, ``test_accuracy`` as
``accuracy/test``, ``seconds`` as ``epoch/seconds``), the numbers known only at the end at the last epoch, and
the run's config as the HParams plugin's session (so its view compares runs by learning rate, model, batch size).

The files are written from the history at output time, not during training, into the staged folder that
replaces the output whole: a resumed run's history is restored from its checkpoint, so its events hold every
epoch once. A non-finite number is left out, as strict JSON leaves it null (jaxhw.files), and a text entry
``nonfinite`` says which and what it was. tensorboardX encodes the protocol buffers (it needs protobuf and
numpy, not TensorFlow); it is imported only when events are written.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import pathlib
import socket
import struct
import sys
import time
from typing import Any, Iterable

from jaxhw.configs import REQUEST_FIELDS, RESUMABLE_FIELDS
from jaxhw.files import resource_error, write_bytes

TENSORBOARD = "tensorboard"  # the folder of event files inside a command's output
SPLITS = ("train", "test")
SUMMARY_SUFFIXES = ("_ci95", "_per_seed", "_nonfinite")  # beside a history's mean over seeds (jaxhw.intervals)
NONFINITE_TAG = "nonfinite"


@dataclasses.dataclass(frozen=True)
class EventRun:
    """One TensorBoard run: its folder under the tensorboard root, its hparams, its numbers per epoch (keyed as
    the run's JSON names them) and those known only at the end (shown at the last epoch)."""

    name: str
    hparams: dict[str, Any]
    epochs: list[tuple[int, dict[str, float]]]
    final: dict[str, float] = dataclasses.field(default_factory=dict)


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``train_loss`` -> ``loss/train``, ``seconds`` -> ``epoch/seconds``;
    a key of neither split keeps its name."""
    if key == "seconds":
        return "epoch/seconds"
    split, _, metric = key.partition("_")
    return f"{metric}/{split}" if split in SPLITS and metric else key


def member_epochs(history: list[dict], seeds: list[int]) -> list[list[tuple[int, dict[str, float]]]]:
    """Each member's (epoch, numbers) from a history whose records hold one member's numbers, every member's
    as a list, or their summary (``<key>_per_seed`` beside the mean); a single number of several members (the
    program's seconds) is every member's."""
    members: list[list[tuple[int, dict[str, float]]]] = [[] for _ in seeds]
    for record in history:
        for k, rows in enumerate(members):
            values = {}
            for key, value in record.items():
                if key == "epoch" or key.endswith(SUMMARY_SUFFIXES):
                    continue
                value = record.get(f"{key}_per_seed", value)
                if isinstance(value, (list, tuple)):
                    if len(value) != len(seeds):
                        raise ValueError(f"history key {key!r} holds {len(value)} values for {len(seeds)} seeds")
                    value = value[k]
                values[key] = value
            rows.append((int(record["epoch"]), values))
    return members


def run_hparams(config: dict, **extra: Any) -> dict[str, Any]:
    """The hparams of a classify or autoencode run: the config's fields that decide its numbers, its epochs,
    and ``extra`` (the data used, the member's seed)."""
    decides = {key: value for key, value in config.items()
               if key not in RESUMABLE_FIELDS + REQUEST_FIELDS or key == "epochs"}
    return {**decides, **extra}


def supervised_runs(metrics: dict) -> list[EventRun]:
    """classify's or autoencode's metrics (what metrics.json holds) as one run per seed."""
    seeds = metrics["seeds"]
    runs = []
    for seed, epochs, finals in zip(seeds, member_epochs(metrics["epochs"], seeds), metrics["per_seed"]):
        final = {key: value for key, value in finals.items() if key != "seed" and key not in epochs[-1][1]}
        runs.append(EventRun(f"seed_{seed}", run_hparams(metrics["config"], data=metrics["data_source"], seed=seed),
                             epochs, final))
    return runs


def extra_softmax_runs(training: dict) -> list[EventRun]:
    """Problem 1C's MLP with and without an extra softmax (``gradients.json``'s ``problem_1c.training``): one run
    per objective and seed, ``<objective>/seed_<s>``."""
    shared = {"model": "mlp", "epochs": training["epochs"], "batch_size": training["batch_size"],
              "lr": training["lr"], "train_examples": training["train_examples"], "data": training["data_source"]}
    return [EventRun(f"{objective}/seed_{seed}", {**shared, "objective": objective, "seed": seed}, epochs)
            for objective, history in training["runs"].items()
            for seed, epochs in zip(training["seeds"], member_epochs(history, training["seeds"]))]


def forgotten_zero_grad_runs(training: dict) -> list[EventRun]:
    """Problem 3E's homework MLP trained with zero_grad forgotten: one run per seed."""
    shared = {"model": "mlp", "loop": "zero_grad forgotten", "optimizer": training["optimizer"],
              "epochs": training["epochs"], "batch_size": training["batch_size"], "lr": training["lr"]}
    return [EventRun(f"seed_{seed}", {**shared, "seed": seed}, epochs)
            for seed, epochs in zip(training["seeds"], member_epochs(training["history"], training["seeds"]))]


def sequence_runs(results: dict) -> list[EventRun]:
    """Problem 5's runs (``results.json``): one per task, model and seed, ``<task>/<model>/seed_<s>``."""
    config = results["config"]
    runs = []
    for run in results["runs"]:
        columns = {key: run[f"{key}_per_epoch"] for key in ("train_loss", "train_accuracy", "test_loss",
                                                            "test_accuracy")}
        columns["seconds"] = run["program_epoch_seconds"]
        epochs = [(epoch, {key: values[epoch - 1] for key, values in columns.items()})
                  for epoch in range(1, len(columns["test_accuracy"]) + 1)]
        hparams = {"task": run["task"], "model": run["model"], "epochs": config["epochs"], "lr": config["lr"],
                   "batch_size": run["batch_size"], "train_examples": run["train_examples"], "seed": run["seed"]}
        runs.append(EventRun(f"{run['task']}/{run['model']}/seed_{run['seed']}", hparams, epochs))
    return runs


def homework_runs(record: dict) -> dict[str, list[EventRun]]:
    """Every training of the homework (report.json's record), by the folder its runs go to: ``problem1/<objective>``
    (1C), ``problem2``, ``problem3/zero_grad_forgotten`` (3E), ``problem4/mlp``, ``problem4/cnn`` and
    ``problem5/<task>/<model>``, each holding ``seed_<s>`` runs, so one ``tensorboard --logdir`` compares them."""
    forgotten = record["problem3"]["forgotten_zero_grad_training"]
    return {"problem1": extra_softmax_runs(record["problem1"]["problem_1c"]["training"]),
            "problem2": supervised_runs(record["problem2"]),
            "problem3/zero_grad_forgotten": forgotten_zero_grad_runs(forgotten),
            **{f"problem4/{model}": supervised_runs(record["problem4"][model]) for model in ("mlp", "cnn")},
            "problem5": sequence_runs(record["problem5"])}


@functools.cache
def _tensorboardx():
    """tensorboardX's summary builders, event proto and record checksum, imported without torch: its package
    imports torch when torch is installed (seconds), only to accept torch tensors, which jaxhw never passes."""
    hidden = "torch" not in sys.modules
    if hidden:
        sys.modules["torch"] = None  # `import torch` raises ImportError while tensorboardX loads
    try:
        from tensorboardX import summary
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
    finally:
        if hidden and sys.modules.get("torch", False) is None:
            del sys.modules["torch"]
    return summary, event_pb2, masked_crc32c


def _hparam_value(value: Any) -> Any:
    """A value the HParams plugin holds (text, a boolean, a number), paths as text, None and lists left out."""
    if value is None or isinstance(value, (list, tuple, dict)):
        return None
    return value if isinstance(value, (str, bool, int, float)) else str(value)


def _nonfinite_kind(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def run_events(run: EventRun, written_at: float) -> list:
    """A run's Event protocol buffers: the file version, the hparams session's start, one event per epoch with
    its scalars, the note of what was non-finite, the session's end. Epoch wall times are counted back from
    ``written_at`` by the epochs' seconds, so TensorBoard's relative time axis shows training time."""
    summary, event_pb2, _ = _tensorboardx()
    hparams = {key: _hparam_value(value) for key, value in run.hparams.items()}
    _, session_start, session_end = summary.hparams({k: v for k, v in hparams.items() if v is not None}, {})
    durations = [float(values.get("seconds", 0.0)) for _, values in run.epochs]
    started = written_at - sum(d for d in durations if math.isfinite(d))
    events = [event_pb2.Event(wall_time=started, file_version="brain.Event:2"),
              event_pb2.Event(wall_time=started, summary=session_start)]
    skipped = []
    ends = itertools.accumulate(d if math.isfinite(d) else 0.0 for d in durations)
    last = len(run.epochs) - 1
    for position, ((epoch, values), end) in enumerate(zip(run.epochs, ends)):
        shown = {**values, **(run.final if position == last else {})}
        scalars = []
        for key, value in shown.items():
            value = float(value)
            if math.isfinite(value):
                scalars.append(summary.Summary.Value(tag=scalar_tag(key), simple_value=value))
            else:
                skipped.append(f"{key} ({scalar_tag(key)}) at epoch {epoch}: {_nonfinite_kind(value)}")
        events.append(event_pb2.Event(wall_time=started + end, step=epoch, summary=summary.Summary(value=scalars)))
    final_step = run.epochs[-1][0] if run.epochs else 0
    if skipped:
        note = "left out, as the run's JSON holds them as null: " + "; ".join(skipped)
        events.append(event_pb2.Event(wall_time=written_at, step=final_step, summary=summary.text(NONFINITE_TAG, note)))
    events.append(event_pb2.Event(wall_time=written_at, step=final_step, summary=session_end))
    return events


def event_file_bytes(events: Iterable) -> bytes:
    """Events framed as TFRecords: length, its masked CRC-32C, the serialized event, its masked CRC-32C."""
    masked_crc32c = _tensorboardx()[2]
    records = []
    for event in events:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        records += [header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data))]
    return b"".join(records)


def write_events(runs: list[EventRun], root: pathlib.Path) -> list[pathlib.Path]:
    """One event file per run in ``root/<run name>/``, each written atomically; returns their paths."""
    written_at = time.time()
    name = f"events.out.tfevents.{int(written_at)}.{socket.gethostname()}"
    written = []
    for run in runs:
        folder = root / run.name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise resource_error(error, folder, "cannot create") from None
        written.append(write_bytes(folder / name, event_file_bytes(run_events(run, written_at))))
    return written
