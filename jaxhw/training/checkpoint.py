"""Checkpoints of the whole TrainState with orbax that prove themselves: written atomically at each epoch end,
the last K kept, each with the description of its run and checksums of its arrays and of what it says beside them.

A checkpoint holds params, batch_stats, optimizer state, step and the PRNG key (the data order of every
epoch is drawn from that key and the epoch number, so the epoch number is the data-order position), plus
the history so far, the run's description, a BLAKE2b checksum of every saved array and one of the epoch, history
and description.

``--resume`` takes the newest checkpoint that restores, carries its own epoch and matches its checksums; newer
ones that do not (truncated or garbled files, missing metadata, a renamed step folder, flipped bits, an edited
history) are moved into ``unusable/`` inside the directory, never deleted, and named in one line; orbax's errors
from the reads it abandoned are kept off stderr. A checkpoint
of a different run (its description differs) is refused with the fields that differ. A fresh run into a
directory that already holds checkpoints is refused unless it resumes or overwrites them; overwritten ones are
deleted only when the first new checkpoint is about to be saved, so a run that stops before (bad input, a
signal) leaves them. Only checkpoints jaxhw wrote (jaxhw.files.is_checkpoint) are counted, rotated or deleted:
a folder of the user's in the directory, even one named by a number, is left alone. The directory is resolved
(symlinks followed) and locked (jaxhw.files.FolderLock) while the store is open.

Over several processes (``jaxhw.training.distributed``) every process opens the store and calls ``save`` and
``resume`` alike, but process 0 alone locks, writes and reads the directory (the others need not see it at
all); ``resume`` hands process 0's checkpoint, epoch and history to every process.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import sys
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxhw import stopping
from jaxhw.common import ModuleOnFirstUse, flatten
from jaxhw.errors import InputError, ResourceError
from jaxhw.files import (
    CHECKPOINT_META_ITEM,
    RESOURCE_ERRORS,
    FolderLock,
    check_writable,
    is_checkpoint,
    real_folder,
    resource_error,
    signals_deferred,
)
from jaxhw.training.distributed import share
from jaxhw.training.parallel import process_local
from jaxhw.training.state import TrainState

ocp = ModuleOnFirstUse("orbax.checkpoint")  # 0.5 s to import: only a run with a checkpoint directory loads it

UNUSABLE = "unusable"
CHECKPOINT_MARGIN = 256 * 1024  # bytes of metadata and file-system overhead beside a checkpoint's arrays


def _arrays(state: TrainState) -> dict:
    """The saved part of a TrainState: plain arrays (the typed PRNG key as its raw uint32 data)."""
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": jax.random.key_data(state.rng)}


def _from_arrays(like: TrainState, arrays: dict) -> TrainState:
    """The TrainState that ``_arrays`` saved."""
    return like.replace(step=arrays["step"], params=arrays["params"], batch_stats=arrays["batch_stats"],
                        opt_state=arrays["opt_state"], rng=jax.random.wrap_key_data(arrays["rng"]))


def checksum(tree: Any) -> str:
    """BLAKE2b of every array in a pytree: its path, dtype, shape and bytes, in path order."""
    digest = hashlib.blake2b(digest_size=16)
    for path, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(tree)):
        value = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{value.dtype}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def record_checksum(epoch: int, history: list[dict], description: dict) -> str:
    """BLAKE2b of what a checkpoint says beside its arrays (epoch, history, run description) as JSON reads it
    back, so an edited history fails like a flipped bit."""
    record = json.loads(json.dumps({"epoch": epoch, "history": history, "description": description}))
    return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=16).hexdigest()


def differences(saved: dict, now: dict) -> list[str]:
    """'field was X, now Y' for every field in which two run descriptions differ."""
    old, new = flatten(saved), flatten(now)
    return [f"{key} was {old.get(key)!r}, now {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def _abandoned_read(report) -> bool:
    """Whether an unraisable error is orbax's from a restore that failed: a tensorstore read finishing after
    orbax closed its event loop, or one of its read coroutines collected with the error of that restore."""
    closed = isinstance(report.exc_value, RuntimeError) and str(report.exc_value) == "Event loop is closed"
    code = getattr(report.object, "cr_code", None)
    return closed or (code is not None and "orbax" in code.co_filename)


def quiet_abandoned_reads() -> None:
    """Keep the errors of the reads orbax abandons when a checkpoint fails to restore (dozens of tracebacks that
    come from its threads, some after the restore has returned) off stderr: the one line that sets the checkpoint
    aside says what happened. Every other unraisable error goes to the hook as before."""
    if getattr(sys.unraisablehook, "keeps_quiet", None) is _abandoned_read:
        return
    previous = sys.unraisablehook

    def hook(report) -> None:
        if not _abandoned_read(report):
            previous(report)

    hook.keeps_quiet = _abandoned_read
    sys.unraisablehook = hook


class _JaxhwSteps:
    """orbax's step names ("1", "2", ...), but only the checkpoints jaxhw wrote count as steps: orbax neither
    rotates nor skips a save past a folder of the user's (``C/0/notes.txt``, ``exp/2024``)."""

    def __init__(self):
        self.standard = ocp.step.standard_name_format()

    def build_name(self, step: int) -> str:
        return self.standard.build_name(step)

    def find_all(self, base_path):
        return (found for found in self.standard.find_all(base_path) if is_checkpoint(pathlib.Path(found.path)))

    def find_step(self, base_path, step: int):
        return self.standard.find_step(base_path, step)


class Unusable(Exception):
    """A checkpoint that cannot be trusted; the message says why in a few words."""


class CheckpointStore:
    """Epoch-end checkpoints of one run in ``directory``; the ``keep`` newest are kept.

    ``resume=False`` refuses a directory that holds checkpoints (``overwrite=True`` deletes them at the first
    save). ``log`` receives the one-line notes (checkpoints set aside, a lock taken over).
    """

    def __init__(self, directory: str | pathlib.Path, keep: int = 3, description: dict | None = None, *,
                 resume: bool = False, overwrite: bool = False, log: Callable[[str], None] | None = None):
        if keep < 1:
            raise InputError(f"keep must be at least 1 checkpoint, got {keep}")
        self.directory = real_folder(directory, "checkpoint dir")
        self.description = dict(description or {})
        self.keep = keep
        self.log = log or (lambda line: print(f"jaxhw: {line}", file=sys.stderr))
        self.writer = jax.process_index() == 0  # the one process that touches the directory
        self.last_saved: int | None = None  # what the other processes know of the newest checkpoint
        self.replacing: list[int] = []  # the epochs --overwrite deletes at the first save
        if not self.writer:
            self.lock = self.manager = None
            return
        if self.directory.exists() and not self.directory.is_dir():
            raise InputError(f"checkpoint dir {str(directory)!r} exists and is not a directory")
        self.lock = FolderLock(self.directory, "checkpoint dir").acquire()
        if self.lock.note:
            self.log(self.lock.note)
        try:
            if resume and not self.directory.exists():
                raise InputError(f"--resume: checkpoint dir {self.directory} does not exist, so there is nothing to "
                                 "resume: check the path, or leave out --resume to start afresh")
            if self.directory.exists():
                check_writable(self.directory, "checkpoint dir")  # a run saves there at every epoch end
            self.manager = self._open_manager()
            existing = self.steps()
            if existing and not resume:
                if not overwrite:
                    raise InputError(f"checkpoint dir {self.directory} already holds checkpoints (epochs "
                                     f"{', '.join(map(str, existing))}): use --resume to continue that run, "
                                     "--overwrite to replace them, or another --checkpoint-dir")
                self.replacing = existing
        except BaseException:
            self.lock.release()
            raise

    def _open_manager(self):
        alone = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})  # no barrier with others
        options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, enable_async_checkpointing=False, create=False,
                                               multiprocessing_options=alone, step_name_format=_JaxhwSteps())
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return ocp.CheckpointManager(self.directory, options=options, item_names=("state", CHECKPOINT_META_ITEM))
        except OSError as error:
            raise resource_error(error, self.directory, "cannot use checkpoint dir") from None

    def steps(self) -> list[int]:
        """The epochs of this run's checkpoints in the directory (not those it replaces), oldest first (not yet
        verified)."""
        return sorted(step for step in self.manager.all_steps() if step not in self.replacing)

    def _delete_replaced(self) -> None:
        """Delete the checkpoints --overwrite replaces: once a new one is ready to take their place."""
        if not self.replacing:
            return
        self.manager.close()
        stopping.check()  # a signal that came before this point deletes nothing
        with signals_deferred():  # all or none: the line a signal ends with says which
            for step in self.replacing:
                shutil.rmtree(self.directory / str(step))
            self.replacing = []
        self.manager = self._open_manager()

    def latest_epoch(self) -> int | None:
        """The newest epoch saved, or None (not verified: see ``resume``)."""
        if not self.writer:
            return self.last_saved
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, epoch: int, state: TrainState, history: list[dict]) -> None:
        """Save the state after ``epoch`` epochs (atomic: written to a temporary folder, then renamed)."""
        arrays = _arrays(process_local(state))  # every process takes part: a state split over them is gathered
        if jax.process_count() > 1:  # orbax saves a process's own arrays in a group only as host arrays
            arrays = jax.device_get(arrays)
        self.last_saved = epoch
        if not self.writer:
            return
        meta = {"epoch": epoch, "history": history, "description": self.description, "checksum": checksum(arrays),
                "record_checksum": record_checksum(epoch, history, self.description)}
        # Checked first: orbax's own failure on a full disk is dozens of lines from its writer threads.
        needed = sum(np.dtype(leaf.dtype).itemsize * int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(arrays))
        free = shutil.disk_usage(self.directory).free
        if needed + CHECKPOINT_MARGIN > free:
            raise ResourceError(f"cannot save the checkpoint of epoch {epoch} in {self.directory}: it needs about "
                                f"{(needed + CHECKPOINT_MARGIN) / 2**20:.1f} MiB and the device has "
                                f"{free / 2**20:.1f} MiB free")
        if (self.directory / str(epoch)).exists() and not is_checkpoint(self.directory / str(epoch)):
            raise ResourceError(f"cannot save the checkpoint of epoch {epoch} in {self.directory}: "
                                f"{self.directory / str(epoch)} is a folder jaxhw did not write; move it away")
        self._delete_replaced()
        try:
            with signals_deferred():  # orbax writes in threads: Ctrl-C mid-save would leave them running at exit
                self.manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(arrays),
                                                                 meta=ocp.args.JsonSave(meta)))
                self.manager.wait_until_finished()
        except Exception as error:  # orbax and tensorstore wrap the OSError of a full disk in their own types
            for partial in self.directory.glob(f"{epoch}.orbax-checkpoint-tmp*"):  # never a half checkpoint
                shutil.rmtree(partial, ignore_errors=True)
            if isinstance(error, OSError) and error.errno in RESOURCE_ERRORS:
                raise resource_error(error, self.directory, f"cannot save the checkpoint of epoch {epoch} in") from None
            if "No space left" in str(error) or "ENOSPC" in str(error):
                raise ResourceError(f"cannot save the checkpoint of epoch {epoch} in {self.directory}: no space "
                                    "left on the device") from None
            raise

    def _verified(self, step: int, like: TrainState) -> tuple[TrainState, list[dict]]:
        """The checkpoint of ``step`` restored and verified, or Unusable (or InputError for another run)."""
        quiet_abandoned_reads()
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as error:  # a missing or garbled metadata file, an empty folder
            raise Unusable(f"no readable metadata ({type(error).__name__})") from None
        if not isinstance(meta, dict) or "checksum" not in meta:
            raise Unusable("its metadata has no epoch or checksum")
        if meta.get("epoch") != step:
            raise Unusable(f"its metadata says epoch {meta.get('epoch')}, not {step} (a renamed folder)")
        if meta.get("record_checksum") != record_checksum(step, meta.get("history"), meta.get("description")):
            raise Unusable("its history or description does not match its checksum")
        found = differences(meta.get("description", {}), self.description)
        if found:
            raise InputError(f"checkpoint in {self.directory} is from a different run: " + ", ".join(found))
        target = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=getattr(a, "sharding", None)),
            _arrays(like))
        try:
            arrays = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
            arrays = arrays["state"]
        except Exception as error:  # truncated or garbled array files
            raise Unusable(f"its arrays do not restore ({type(error).__name__})") from None
        if checksum(arrays) != meta["checksum"]:
            raise Unusable("checksum mismatch")
        return _from_arrays(like, arrays), meta["history"]

    def resume(self, like: TrainState) -> tuple[TrainState, int, list[dict]] | None:
        """The newest verified checkpoint as (state shaped like ``like``, epoch, history); None when the
        directory holds no checkpoint. Newer unusable ones are set aside and named. Over several processes,
        process 0's answer (or its error) is every process's."""
        if jax.process_count() == 1:
            return self._resume(like)
        try:
            restored = self._resume(like) if self.writer else None
        except InputError as error:
            share({"error": str(error)})
            raise
        found = share(None if restored is None else {"epoch": restored[1], "history": restored[2]})
        if found is not None and "error" in found:
            raise InputError(f"process 0 cannot resume: {found['error']}")
        if found is None:
            return None
        arrays = multihost_utils.broadcast_one_to_all(_arrays(restored[0] if self.writer else like))
        self.last_saved = found["epoch"]
        return _from_arrays(like, arrays), found["epoch"], found["history"]

    def _resume(self, like: TrainState) -> tuple[TrainState, int, list[dict]] | None:
        """``resume`` in the process that reads the directory."""
        steps = self.steps()
        if not steps:
            return None
        unusable = []
        for step in reversed(steps):
            try:
                state, history = self._verified(step, like)
            except Unusable as reason:
                unusable.append((step, str(reason)))
                continue
            self._set_aside(unusable)
            return state, step, history
        self._set_aside(unusable)
        raise InputError(f"--resume: no usable checkpoint in {self.directory}: "
                         + "; ".join(f"epoch {step}: {reason}" for step, reason in unusable)
                         + f" (moved to {self.directory / UNUSABLE})")

    def restore(self, like: TrainState) -> tuple[TrainState, int, list[dict]]:
        """Like ``resume``, but a directory without checkpoints is an error."""
        restored = self.resume(like)
        if restored is None:
            raise InputError(f"--resume: no checkpoint in {self.directory}")
        return restored

    def _set_aside(self, unusable: list[tuple[int, str]]) -> None:
        """Move unusable checkpoint folders into ``unusable/`` (never deleted) and say so in one line."""
        if not unusable:
            return
        self.manager.close()
        aside = self.directory / UNUSABLE
        try:
            aside.mkdir(exist_ok=True)
            for step, _ in unusable:
                destination, copy = aside / str(step), 1
                while destination.exists():
                    copy += 1
                    destination = aside / f"{step}-{copy}"
                shutil.move(str(self.directory / str(step)), str(destination))
        except OSError as error:
            raise resource_error(error, aside, "cannot set aside the unusable checkpoints "
                                 f"({', '.join(str(step) for step, _ in unusable)}) in") from None
        self.manager = self._open_manager()
        self.log(f"skipped unusable checkpoints in {self.directory} and moved them to {aside}: "
                 + "; ".join(f"epoch {step} ({reason})" for step, reason in unusable))

    def close(self) -> None:
        if self.writer:
            self.manager.close()
            self.lock.release()


def open_checkpoints(directory, keep: int = 3, description: dict | None = None, resume: bool = False,
                     overwrite: bool = False) -> CheckpointStore | None:
    """The run's CheckpointStore, or None when no directory is given (resuming then is an error)."""
    if directory is None:
        if resume:
            raise InputError("--resume needs --checkpoint-dir")
        return None
    return CheckpointStore(directory, keep, description, resume=resume, overwrite=overwrite)
