"""Checkpoints of the whole TrainState with orbax: written atomically at each epoch end, the last K kept.

A checkpoint holds params, batch_stats, optimizer state, step and the PRNG key (the data order of every
epoch is drawn from that key and the epoch number, so the epoch number is the data-order position), plus
the history so far and a description of the run, used to refuse a checkpoint of another model or shape.
"""
from __future__ import annotations

import pathlib

import jax
import numpy as np

from jaxhw.errors import InputError
from jaxhw.training.state import TrainState


def _arrays(state: TrainState) -> dict:
    """The saved part of a TrainState: plain arrays (the typed PRNG key as its raw uint32 data)."""
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": jax.random.key_data(state.rng)}


class CheckpointStore:
    """Epoch-end checkpoints of one run in ``directory``; ``keep`` newest are kept."""

    def __init__(self, directory: str | pathlib.Path, keep: int = 3, description: dict | None = None):
        import orbax.checkpoint as ocp  # imported only when checkpoints are used

        if keep < 1:
            raise InputError(f"keep must be at least 1 checkpoint, got {keep}")
        self.directory = pathlib.Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise InputError(f"checkpoint dir {str(directory)!r} exists and is not a directory")
        self.description = dict(description or {})
        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False, create=True)
        try:
            self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))
        except OSError as e:
            raise InputError(f"checkpoint dir {str(directory)!r} is not usable: {e}") from None

    def latest_epoch(self) -> int | None:
        """The epoch of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, epoch: int, state: TrainState, history: list[dict]) -> None:
        """Save the state after ``epoch`` epochs (atomic: written to a temporary folder, then renamed)."""
        args = self._ocp.args
        self.manager.save(epoch, args=args.Composite(
            state=args.StandardSave(_arrays(state)),
            meta=args.JsonSave({"epoch": epoch, "history": history, "description": self.description})))
        self.manager.wait_until_finished()

    def restore(self, like: TrainState) -> tuple[TrainState, int, list[dict]]:
        """The newest checkpoint as a TrainState shaped like ``like``, its epoch and its history."""
        epoch = self.latest_epoch()
        if epoch is None:
            raise InputError(f"--resume: no checkpoint in {self.directory}")
        args = self._ocp.args
        meta = self.manager.restore(epoch, args=args.Composite(meta=args.JsonRestore()))["meta"]
        saved = meta.get("description", {})
        differences = {k: (saved.get(k), v) for k, v in self.description.items() if saved.get(k) != v}
        if differences:
            raise InputError(f"checkpoint in {self.directory} is from a different run: " + ", ".join(
                f"{k} was {old!r}, now {new!r}" for k, (old, new) in differences.items()))
        target = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype,
                                           sharding=getattr(a, "sharding", None)), _arrays(like))
        try:
            restored = self.manager.restore(epoch, args=args.Composite(state=args.StandardRestore(target)))["state"]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"checkpoint in {self.directory} does not fit this model's shapes: "
                             f"{str(e).splitlines()[0][:300]}") from None
        state = like.replace(step=restored["step"], params=restored["params"], batch_stats=restored["batch_stats"],
                             opt_state=restored["opt_state"], rng=jax.random.wrap_key_data(restored["rng"]))
        return state, epoch, meta["history"]

    def close(self) -> None:
        self.manager.close()


def open_checkpoints(directory, keep: int = 3, description: dict | None = None,
                     resume: bool = False) -> CheckpointStore | None:
    """The run's CheckpointStore, or None when no directory is given (resuming then is an error)."""
    if directory is None:
        if resume:
            raise InputError("--resume needs --checkpoint-dir")
        return None
    return CheckpointStore(directory, keep, description)
