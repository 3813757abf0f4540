"""Helpers shared by the tests: child processes, small data sets on disk."""
import contextlib
import gzip
import pathlib
import signal
from typing import Iterator

import numpy as np

from jaxhw.data import images


@contextlib.contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """Children started inside the block get SIGINT's default action, as from a terminal.

    A shell starts background jobs with SIGINT ignored; a suite run that way would pass that on to its children,
    and Python in them would keep ignoring Ctrl-C. A handled signal is reset to its default by exec, so while the
    block runs this process handles SIGINT (no ``preexec_fn``: forking a threaded JAX process to run Python in the
    child can deadlock).
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_idx_dataset(folder: pathlib.Path, count: int, splits=("train", "test")) -> None:
    """``count`` random 28x28 digits per split as the four gzipped IDX files of MNIST."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)

    def idx(array: np.ndarray) -> bytes:
        return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) \
            + array.tobytes()

    for split in splits:
        image_stem, label_stem = images.IDX_FILES[split]
        (folder / f"{image_stem}.gz").write_bytes(gzip.compress(idx(rng.integers(0, 256, (count, 28, 28),
                                                                                  dtype=np.uint8))))
        (folder / f"{label_stem}.gz").write_bytes(gzip.compress(idx(rng.integers(0, 10, count, dtype=np.uint8))))


def wilson_by_hand(values, critical: float) -> tuple[float, float]:
    """The Wilson interval of the mean of values in [0, 1] at the seeds' effective sample size, derived apart
    from jaxhw.intervals: the p with (m - p)^2 = q^2 p (1 - p) / n_eff, n_eff = m (1 - m) n / s^2, are the roots of
    (1 + q^2 / n_eff) p^2 - (2 m + q^2 / n_eff) p + m^2 = 0."""
    values = np.asarray(values, np.float64)
    m, variance = values.mean(), values.var(ddof=1)
    k = critical ** 2 * variance / (values.size * m * (1 - m))  # q^2 / n_eff
    a, b, c = 1 + k, -(2 * m + k), m ** 2
    root = np.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


# The TensorBoard tags docs/commands.md promises for each key of a run's history, written out here by hand.
TENSORBOARD_TAGS = {"train_loss": "loss/train", "test_loss": "loss/test", "train_accuracy": "accuracy/train",
                    "test_accuracy": "accuracy/test", "train_mse": "mse/train", "test_mse": "mse/test",
                    "seconds": "epoch/seconds", "test_accuracy_train_mode": "accuracy_train_mode/test"}


def read_tensorboard_run(folder: pathlib.Path) -> dict:
    """What TensorBoard's own reader finds in one run folder: scalars as {tag: [(step, value)]}, the HParams
    session's hparams and whether it ended, the text entries, and how many event files there are."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    scalars = {tag: [(event.step, event.value) for event in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}
    hparams, ended = {}, False
    for tag in reader.PluginTagToContent("hparams"):
        content = plugin_data_pb2.HParamsPluginData.FromString(reader.SummaryMetadata(tag).plugin_data.content)
        if content.HasField("session_start_info"):
            for name, value in content.session_start_info.hparams.items():
                hparams[name] = getattr(value, value.WhichOneof("kind"))
        ended |= content.HasField("session_end_info")
    texts = {tag: [event.tensor_proto.string_val[0].decode() for event in reader.Tensors(tag)]
             for tag in reader.Tags()["tensors"]}
    return {"scalars": scalars, "hparams": hparams, "ended": ended, "texts": texts,
            "files": len(list(folder.glob("events.out.tfevents.*")))}


def as_float32(series: dict) -> dict:
    """{tag: [(step, value)]} with each value rounded to float32, as an event stores it."""
    return {tag: [(step, float(np.float32(value))) for step, value in points] for tag, points in series.items()}


def member_value(record: dict, key: str, k: int):
    """Member k's number for ``key`` in a history record of one member, of every member (a list), or of their
    summary (``<key>_per_seed`` beside the mean)."""
    value = record.get(f"{key}_per_seed", record[key])
    return value[k] if isinstance(value, list) else value


def history_scalars(history: list[dict], k: int) -> dict:
    """Member k's scalars of a history, as the docs map its keys to tags."""
    return as_float32({TENSORBOARD_TAGS[key]: [(r["epoch"], member_value(r, key, k)) for r in history]
                       for key in history[0] if key in TENSORBOARD_TAGS})


def metrics_scalars(metrics: dict, k: int) -> dict:
    """Member k's scalars as a metrics.json states them: every history key per epoch, and the final numbers the
    history lacks (``per_seed``) at the last epoch."""
    series = history_scalars(metrics["epochs"], k)
    last = metrics["epochs"][-1]["epoch"]
    for key, value in metrics["per_seed"][k].items():
        if key != "seed" and key not in metrics["epochs"][0]:
            series |= as_float32({TENSORBOARD_TAGS[key]: [(last, value)]})
    return series
