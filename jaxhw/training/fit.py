"""The epoch loop: one jitted epoch per iteration, metrics fetched once per epoch, a tqdm progress bar."""
from __future__ import annotations

import time
from typing import Callable, Mapping

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxhw.training.state import TrainState
from jaxhw.training.steps import Objective, classification, make_epoch_fn, make_eval_fn


def to_device(arrays: Mapping[str, np.ndarray]) -> dict:
    """Put a data set on the default device once, keeping its dtype (images stay uint8)."""
    return {name: jax.device_put(np.asarray(values)) for name, values in arrays.items()}


def _averages(totals: dict, num_examples: int, prefix: str) -> dict:
    return {f"{prefix}{name}": float(value) / num_examples for name, value in jax.device_get(totals).items()}


def fit(state: TrainState, train_data: Mapping[str, np.ndarray], test_data: Mapping[str, np.ndarray] | None = None,
        *, epochs: int, batch_size: int, objective: Objective = classification, drop_last: bool = False,
        progress: bool | None = None, on_epoch_end: Callable[[TrainState, dict], None] | None = None,
        start_epoch: int = 0) -> tuple[TrainState, list[dict]]:
    """Train for ``epochs`` epochs and return the final state and one metrics dict per epoch.

    Each dict holds ``epoch``, ``train_<metric>`` (averaged over the epoch's examples, measured during
    training as PyTorch loops usually report), ``test_<metric>`` in eval mode, and ``seconds`` (training
    time of the epoch, compilation included for the first). ``progress=None`` shows a bar only on a terminal.
    """
    train_device, test_device = to_device(train_data), (to_device(test_data) if test_data is not None else None)
    num_train = len(next(iter(train_data.values())))
    num_test = len(next(iter(test_data.values()))) if test_data is not None else 0
    epoch_fn = make_epoch_fn(objective, batch_size, shuffle=True, drop_last=drop_last)
    evaluate = make_eval_fn(objective)
    seen = num_train if not drop_last else (num_train // batch_size) * batch_size
    history = []
    bar = tqdm(range(start_epoch, epochs), desc="epochs", unit="epoch", disable=None if progress is None else not progress,
               initial=start_epoch, total=epochs)
    for epoch in bar:
        start = time.perf_counter()
        state, totals = epoch_fn(state, train_device, epoch)
        totals = jax.block_until_ready(totals)
        record = {"epoch": epoch + 1, **_averages(totals, seen, "train_"), "seconds": time.perf_counter() - start}
        if test_device is not None:
            record.update(_averages(evaluate(state, test_device), num_test, "test_"))
        history.append(record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_loss", "test_"))})
        if on_epoch_end is not None:
            on_epoch_end(state, record)
    return state, history
