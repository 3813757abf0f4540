"""The epoch loop: one jitted epoch per iteration, metrics fetched once per epoch, a tqdm progress bar,
optional data parallelism over a device mesh (which may span several processes) and epoch-end checkpoints
that a killed run resumes from."""
from __future__ import annotations

import time
from typing import Mapping, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxhw import stopping
from jaxhw.errors import InputError
from jaxhw.training.feeding import HostFeed
from jaxhw.training.parallel import make_mesh, process_local, replicate, shard_members
from jaxhw.training.state import TrainState
from jaxhw.training.steps import Objective, classification, make_epoch_fn, make_eval_fn, resolve_members_at_once


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
    """Summed metrics divided by the data size: a float per metric, or a list of K for a stack of members."""
    return {f"{prefix}{name}": (np.asarray(value, np.float64) / num_examples).tolist()
            for name, value in jax.device_get(process_local(totals)).items()}


def _first_bad(per_batch_loss) -> tuple[int, int]:
    """(member, step of the epoch counted from 1) of the first non-finite batch loss ((K, B) or (B,) losses)."""
    losses = np.atleast_2d(np.asarray(jax.device_get(process_local(per_batch_loss))))
    member, step = np.argwhere(~np.isfinite(losses))[0]
    return int(member), int(step) + 1


def _check_members(state: TrainState, data: Mapping[str, np.ndarray], members: int, data_per_member: bool,
                   what: str) -> None:
    leading = {np.shape(leaf)[0] for leaf in jax.tree_util.tree_leaves(state.params)}
    if leading != {members}:
        raise InputError(f"members={members} needs a stack of {members} states (create_train_states), got a leading "
                         f"axis of {sorted(leading)}")
    if data_per_member and any(len(values) != members for values in data.values()):
        raise InputError(f"{what}: data_per_member needs arrays stacked per member with a leading axis {members}, "
                         f"got {({name: np.shape(values) for name, values in data.items()})}")


def program_name(what: str, seeds: int = 1) -> str:
    """How a progress bar names a training program: "cnn on mnist", "lstm on order, motif x 5 seeds"."""
    return what + (f" x {seeds} seeds" if seeds > 1 else "")


def fit(state: TrainState, train_data: Mapping[str, np.ndarray], test_data: Mapping[str, np.ndarray] | None = None,
        *, epochs: int, batch_size: int, objective: Objective = classification, drop_last: bool = False,
        progress: bool | None = None, devices: int | None = 1, checkpoints=None, resume: bool = False,
        members: int | None = None, data_per_member: bool = False, members_at_once: int | None = None,
        member_names: Sequence[str] | None = None, description: str = "epochs") -> tuple[TrainState, list[dict]]:
    """Train for ``epochs`` epochs and return the final state and one metrics dict per epoch.

    Each dict holds ``epoch``, ``train_<metric>`` (averaged over the epoch's examples, measured during
    training as PyTorch loops usually report), ``test_<metric>`` in eval mode, and ``seconds`` (training time
    of the epoch, compilation included for the first). ``progress=None`` shows a bar only on a terminal, named by
    ``description`` (what trains: ``program_name``); under another bar (the main job's stages) it is removed
    when done.
    ``devices``: how many devices share the work (None: all). ``checkpoints``: a CheckpointStore saved at
    every epoch end; with ``resume`` training continues from its newest checkpoint (history included).

    With ``members`` K, ``state`` is a stack of K members (``create_train_states``), trained as one program,
    ``members_at_once`` of them side by side (vmapped) at a time (None: all on an accelerator, one on the CPU;
    ``jaxhw.training.steps.resolve_members_at_once``); the data is one set for all, or with ``data_per_member``
    one per member stacked on a leading axis K (all of one shape). Every metric is then a list of K values, one
    per member; a member whose loss diverges stops the run, named by ``member_names`` (for example "seed 3").
    Over several devices the members are split among them when K is a multiple of their count, otherwise every
    member's batches are; there all members train side by side.

    Over several processes (``jaxhw.training.distributed``) every process calls ``fit`` alike with the whole
    data, the mesh spans all their devices, each process places only its own slice of every batch
    (``HostFeed``), and each gets the trained state back whole on its own device.
    """
    check_finite(train_data, "training data")
    if test_data is not None:
        check_finite(test_data, "test data")
    if members is not None:
        _check_members(state, train_data, members, data_per_member, "training data")
        if test_data is not None:
            _check_members(state, test_data, members, data_per_member, "test data")
    mesh = make_mesh(devices) if devices != 1 or jax.process_count() > 1 else None
    at_once = None  # with a mesh all members train side by side: it splits them, or each batch, over devices
    if members is not None and mesh is None:
        at_once = resolve_members_at_once(members_at_once, members)
    elif members_at_once is not None:
        raise InputError(f"members_at_once={members_at_once} needs members on one device, got members={members} "
                         f"over {mesh.size if mesh is not None else 1} device(s)")
    by_member = members is not None and mesh is not None and members % mesh.size == 0
    step_mesh = None if by_member else mesh  # where each batch is split over the devices
    example_axis = 1 if members is not None and data_per_member else 0
    num_train = np.shape(next(iter(train_data.values())))[example_axis]
    num_test = np.shape(next(iter(test_data.values())))[example_axis] if test_data is not None else 0
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
    feed = None
    if mesh is not None and mesh.is_multi_process:  # no process can place data on another's devices
        feed = HostFeed(mesh, state.rng, train_data, batch_size=batch_size, drop_last=drop_last,
                        members=members is not None, by_member=by_member, data_per_member=data_per_member)
    if mesh is not None:
        state = shard_members(state, mesh) if by_member else replicate(state, mesh)

    def place(data):  # a member's own data goes where the member trains; shared data everywhere
        if by_member and data_per_member:
            return shard_members({name: np.asarray(values) for name, values in data.items()}, mesh)
        return to_device(data, mesh)

    if feed is None:
        train_device = place(train_data)
        test_device = place(test_data) if test_data is not None else None
    else:
        test_device = feed.evaluation(test_data) if test_data is not None else None
    stacked, fed = members is not None, feed is not None
    epoch_fn = make_epoch_fn(objective, batch_size, shuffle=True, drop_last=drop_last, mesh=step_mesh,
                             members=stacked, data_per_member=data_per_member, fed=fed, at_once=at_once)
    evaluate = make_eval_fn(objective, mesh=step_mesh, members=stacked, data_per_member=data_per_member, fed=fed,
                            at_once=at_once)
    seen = num_train if not drop_last else (num_train // batch_size) * batch_size
    bar = tqdm(range(start_epoch, epochs), desc=description, unit="epoch", initial=start_epoch, total=epochs,
               leave=None, disable=None if progress is None else not progress)
    for epoch in bar:
        stopping.check()  # Ctrl-C or SIGTERM stops the run between epochs, whatever frame it landed in
        start = time.perf_counter()
        state, totals, per_batch = epoch_fn(state, train_device if feed is None else feed.epoch(epoch), epoch)
        totals = jax.block_until_ready(totals)
        record = {"epoch": epoch + 1, **_averages(totals, seen, "train_"), "seconds": time.perf_counter() - start}
        if not np.isfinite(record["train_loss"]).all():
            bad_member, step = _first_bad(per_batch["loss"])
            which = (f" of {member_names[bad_member] if member_names else f'member {bad_member}'}" if stacked else "")
            kept = checkpoints.latest_epoch() if checkpoints is not None else None
            raise TrainingDiverged(
                f"training loss{which} became {np.ravel(record['train_loss'])[bad_member]} at epoch {epoch + 1}, "
                f"step {step} of the epoch (global step {epoch * np.shape(per_batch['loss'])[-1] + step}); "
                + (f"last good checkpoint: epoch {kept} in {checkpoints.directory}" if kept is not None
                   else "no checkpoint was written") + ". Try a lower --lr.")
        if test_device is not None:
            record.update(_averages(evaluate(state, test_device), num_test, "test_"))
        history.append(record)
        bar.set_postfix({k: f"{np.mean(v):.4f}" for k, v in record.items() if k.startswith(("train_loss", "test_"))})
        if checkpoints is not None:
            checkpoints.save(epoch + 1, state, history)
    stopping.check()
    return (state if feed is None else process_local(state)), history
