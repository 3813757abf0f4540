"""The epoch loop: one jitted epoch per iteration, metrics fetched once per epoch, a tqdm progress bar,
optional data parallelism over a device mesh and epoch-end checkpoints that a killed run resumes from."""
from __future__ import annotations

import time
from typing import Mapping

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxhw.errors import InputError
from jaxhw.training.parallel import make_mesh, replicate
from jaxhw.training.state import TrainState
from jaxhw.training.steps import Objective, classification, make_epoch_fn, make_eval_fn


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


def check_finite(arrays: Mapping[str, np.ndarray], what: str) -> None:
    """Raise InputError if a floating-point array holds NaN or inf (integer data cannot)."""
    for name, values in arrays.items():
        values = np.asarray(values)
        if np.issubdtype(values.dtype, np.floating):
            bad = int(values.size - np.count_nonzero(np.isfinite(values)))
            if bad:
                raise InputError(f"{what} {name!r} holds {bad} NaN or infinite values; clean the data first")


def to_device(arrays: Mapping[str, np.ndarray], mesh=None) -> dict:
    """Put a data set on the device(s) once, keeping its dtype (images stay uint8); replicated over a mesh."""
    arrays = {name: np.asarray(values) for name, values in arrays.items()}
    if mesh is not None and mesh.size > 1:
        return replicate(arrays, mesh)
    return {name: jax.device_put(values) for name, values in arrays.items()}


def _averages(totals: dict, num_examples: int, prefix: str) -> dict:
    return {f"{prefix}{name}": float(value) / num_examples for name, value in jax.device_get(totals).items()}


def _first_bad_step(per_batch_loss) -> int:
    losses = np.asarray(jax.device_get(per_batch_loss))
    return int(np.flatnonzero(~np.isfinite(losses))[0]) + 1


def fit(state: TrainState, train_data: Mapping[str, np.ndarray], test_data: Mapping[str, np.ndarray] | None = None,
        *, epochs: int, batch_size: int, objective: Objective = classification, drop_last: bool = False,
        progress: bool | None = None, devices: int | None = 1, checkpoints=None,
        resume: bool = False) -> tuple[TrainState, list[dict]]:
    """Train for ``epochs`` epochs and return the final state and one metrics dict per epoch.

    Each dict holds ``epoch``, ``train_<metric>`` (averaged over the epoch's examples, measured during
    training as PyTorch loops usually report), ``test_<metric>`` in eval mode, and ``seconds`` (training time
    of the epoch, compilation included for the first). ``progress=None`` shows a bar only on a terminal.
    ``devices``: how many devices share each batch (None: all). ``checkpoints``: a CheckpointStore saved at
    every epoch end; with ``resume`` training continues from its newest checkpoint (history included).
    """
    check_finite(train_data, "training data")
    if test_data is not None:
        check_finite(test_data, "test data")
    mesh = make_mesh(devices) if devices != 1 else None
    num_train = len(next(iter(train_data.values())))
    num_test = len(next(iter(test_data.values()))) if test_data is not None else 0
    if drop_last and batch_size > num_train:
        raise InputError(f"batch_size {batch_size} is larger than the training set ({num_train} examples) "
                         "and drop_last would leave no batch")
    history: list[dict] = []
    start_epoch = 0
    if resume:
        if checkpoints is None:
            raise InputError("--resume needs --checkpoint-dir")
        restored = checkpoints.resume(state)
        if restored is not None:
            state, start_epoch, history = restored
        if start_epoch > epochs:
            raise InputError(f"--epochs {epochs} is below the epoch of the checkpoint resumed from ({start_epoch} "
                             f"in {checkpoints.directory}): ask for at least {start_epoch} epochs")
    if mesh is not None:
        state = replicate(state, mesh)
    train_device = to_device(train_data, mesh)
    test_device = to_device(test_data, mesh) if test_data is not None else None
    epoch_fn = make_epoch_fn(objective, batch_size, shuffle=True, drop_last=drop_last, mesh=mesh)
    evaluate = make_eval_fn(objective, mesh=mesh)
    seen = num_train if not drop_last else (num_train // batch_size) * batch_size
    bar = tqdm(range(start_epoch, epochs), desc="epochs", unit="epoch", initial=start_epoch, total=epochs,
               disable=None if progress is None else not progress)
    for epoch in bar:
        start = time.perf_counter()
        state, totals, per_batch = epoch_fn(state, train_device, epoch)
        totals = jax.block_until_ready(totals)
        record = {"epoch": epoch + 1, **_averages(totals, seen, "train_"), "seconds": time.perf_counter() - start}
        if not np.isfinite(record["train_loss"]):
            step = _first_bad_step(per_batch["loss"])
            kept = checkpoints.latest_epoch() if checkpoints is not None else None
            raise TrainingDiverged(
                f"training loss became {record['train_loss']} at epoch {epoch + 1}, step {step} of the epoch "
                f"(global step {epoch * len(per_batch['loss']) + step}); "
                + (f"last good checkpoint: epoch {kept} in {checkpoints.directory}" if kept is not None
                   else "no checkpoint was written") + ". Try a lower --lr.")
        if test_device is not None:
            record.update(_averages(evaluate(state, test_device), num_test, "test_"))
        history.append(record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_loss", "test_"))})
        if checkpoints is not None:
            checkpoints.save(epoch + 1, state, history)
    return state, history
