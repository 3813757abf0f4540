"""Writing without losing or misdescribing anything: atomic files, strict JSON, a lock that makes a run the
only owner of its folders, and multi-file outputs built aside and swapped in whole.

- ``write_bytes``/``write_text``/``write_json``: a temporary file of a unique name in the same folder,
  flushed to disk, then renamed over the target. A crash leaves the old file or the new one.
- ``write_json`` writes strict JSON: a non-finite number becomes null, and a sibling field
  ``<key>_nonfinite`` says what it was ("nan", "inf", "-inf"), so browsers and jq can parse every file.
- ``FolderLock``: while a run lives it holds an exclusive lock (``fcntl.flock``) on ``.NAME.lock`` beside
  each folder it writes; a second run meets it at once. The lock file names the holder (pid, host); the
  operating system releases the lock of a process that dies, and the next run says it took it over.
- ``StagedFolder``: the output is built in ``.NAME.staging`` beside ``NAME``, then swapped in (the old folder
  renamed to ``.NAME.old``, the new one renamed in, the old one removed). ``recover`` finishes or rolls back
  a swap that a kill interrupted, so a kill or a full disk leaves the previous output exactly as it was.
- Paths are resolved first (``real_folder``): a lock and a swap act on the real folder a symlink leads to, so
  two routes to one folder meet one lock, and the staging folder lives beside the real target on its file system.
- Only checkpoints jaxhw wrote count (``is_checkpoint``): a folder named by an epoch that holds jaxhw's metadata
  item beside orbax's record of the commit; any other folder, numeric name or not, is never counted or deleted.
- ``signals_deferred``: Ctrl-C or SIGTERM during a write that runs in other threads (orbax's checkpoint), or
  during the swap of a staged folder, takes effect when it has ended, so the write is whole, no thread outlives
  the interpreter, and the line that reports the signal can say which output the folder holds.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from typing import Any, Iterator

import numpy as np

from jaxhw import stopping
from jaxhw.errors import InputError, ResourceError

OUTPUT_MARKER = ".jaxhw-output"  # in every folder jaxhw builds: it may be replaced whole
COMPLETE_MARKER = ".complete"  # in a staging folder once every file of it is written
RESOURCE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                   errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                   errno.EROFS: "read-only file system"}


def resource_error(error: OSError, path: pathlib.Path | str, doing: str) -> Exception:
    """A one-line ResourceError for a full disk, a quota or a permission, naming the path; other errors as
    they are."""
    reason = RESOURCE_ERRORS.get(error.errno)
    if reason is None:
        return error
    return ResourceError(f"{doing} {path}: {reason}")


def _fsync_folder(folder: pathlib.Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (another thread may be creating files)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: pathlib.Path, data: bytes) -> pathlib.Path:
    """Write a file atomically (see the module docstring), with the mode a plain ``open`` would give it (0644
    under umask 022); a full disk or a refused write is a ResourceError naming the path, and leaves the old file
    and no temporary behind."""
    path = pathlib.Path(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600: nobody else could read a report
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise resource_error(error, path, "cannot write") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_text(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write UTF-8 text atomically (see ``write_bytes``)."""
    return write_bytes(path, text.encode("utf-8"))


def strict(value: Any) -> Any:
    """A JSON-ready copy holding only finite numbers: NaN and infinities become null, and each dict gains a
    ``<key>_nonfinite`` field beside a key whose value held any: the kind ("nan", "inf", "-inf") for a
    number, or {position: kind} for a list or a nested object."""
    cleaned, _ = _strict(value)
    return cleaned


def _kind(number: float) -> str:
    return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")


def _strict(value: Any) -> tuple[Any, Any]:
    """(cleaned value, what was non-finite in it or None)."""
    if isinstance(value, dict):
        cleaned, found = {}, {}
        for key, item in value.items():
            cleaned[str(key)], bad = _strict(item)
            if bad is not None:
                cleaned[f"{key}_nonfinite"] = bad
                found[str(key)] = bad
        return cleaned, (found or None)
    if isinstance(value, (list, tuple, np.ndarray)):
        pairs = [_strict(item) for item in (value.tolist() if isinstance(value, np.ndarray) else value)]
        found = {str(i): bad for i, (_, bad) in enumerate(pairs) if bad is not None}
        return [item for item, _ in pairs], (found or None)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None, _kind(value)
    if isinstance(value, pathlib.PurePath):
        return str(value), None
    return value, None


def json_text(data: Any) -> str:
    """Strict JSON text (see ``strict``); no NaN or Infinity literal can appear."""
    return json.dumps(strict(data), indent=2, allow_nan=False) + "\n"


def write_json(path: pathlib.Path, data: Any) -> pathlib.Path:
    """Write strict JSON atomically."""
    return write_text(path, json_text(data))


# ------------------------------------------------------------------------------------------------ paths

CHECKPOINT_META_ITEM = "meta"  # the orbax item of a checkpoint that holds jaxhw's metadata (its run description)
COMMIT_RECORD = "_CHECKPOINT_METADATA"  # what orbax writes in a checkpoint folder as it commits it
STEP_NAME = re.compile(r"0|[1-9][0-9]*")  # orbax's step folder names
NAME_MAX = 255  # bytes in one file name on most file systems, where os.pathconf cannot say


def _reason(error: OSError) -> str:
    return RESOURCE_ERRORS.get(error.errno) or (error.strerror or str(error)).lower()


def real_folder(path: pathlib.Path | str, what: str) -> pathlib.Path:
    """The absolute path of the folder ``path`` names, every symlink followed, whether it exists yet or not;
    InputError for a symlink loop or a file where one of its folders should be."""
    given = pathlib.Path(path).expanduser()
    try:
        real = given.absolute().resolve()
    except (RuntimeError, OSError) as error:  # a loop: RuntimeError before Python 3.13, ELOOP after
        if isinstance(error, OSError) and error.errno != errno.ELOOP:
            raise InputError(f"{what} {str(given)!r} cannot be resolved: {_reason(error)}") from None
        raise InputError(f"{what} {str(given)!r} is a symlink loop: it never reaches a folder") from None
    for ancestor in real.parents:
        if os.path.lexists(ancestor):
            if not os.path.isdir(ancestor):
                raise InputError(f"{what} {str(given)!r} is not writable: {ancestor} is a file, not a folder")
            break
    return real


def check_writable(folder: pathlib.Path, what: str) -> None:
    """InputError unless a file can be created in ``folder`` (not a read-only mount, a permission, a full disk)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise InputError(f"{what} {str(folder)!r} is not writable: {_reason(error)}") from None


def check_name_fits(folder: pathlib.Path, sibling: str, what: str) -> None:
    """InputError unless ``sibling``, a name jaxhw builds beside ``folder`` from its name, fits the file system."""
    existing = next((p for p in (folder.parent, *folder.parent.parents) if os.path.isdir(p)), pathlib.Path("/"))
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = NAME_MAX
    size, extra = len(os.fsencode(folder.name)), len(os.fsencode(sibling)) - len(os.fsencode(folder.name))
    if size + extra > limit:
        built = sibling.replace(folder.name, "NAME")
        raise InputError(f"{what} {folder}: its name is {size} bytes long, and the {built} that jaxhw builds beside "
                         f"it would be {size + extra}, over the file system's limit of {limit}: choose a name of "
                         f"at most {limit - extra} bytes")


def is_checkpoint(folder: pathlib.Path) -> bool:
    """A checkpoint jaxhw wrote: a folder named by its epoch holding jaxhw's metadata item beside orbax's record
    of the commit. No other folder, whatever its name, is counted, rotated or deleted as a checkpoint."""
    folder = pathlib.Path(folder)
    return (STEP_NAME.fullmatch(folder.name) is not None and (folder / CHECKPOINT_META_ITEM).is_dir()
            and (folder / COMMIT_RECORD).is_file())


def saved_epochs(directory: pathlib.Path | None) -> list[int]:
    """The epochs of the checkpoints jaxhw wrote in ``directory``, oldest first (not yet verified)."""
    if directory is None or not os.path.isdir(directory):
        return []
    try:
        entries = list(pathlib.Path(directory).iterdir())
    except OSError:
        return []
    return sorted(int(entry.name) for entry in entries if is_checkpoint(entry))


def _removable(folder: pathlib.Path) -> str:
    """Why ``folder`` could not be removed whole: a folder in it that is write-protected or a mount point ("" if
    none)."""
    effective = os.access in os.supports_effective_ids
    for root, _, _ in os.walk(folder):
        if not os.access(root, os.W_OK | os.X_OK, effective_ids=effective):
            return f"{root} is write-protected"
        if root != str(folder) and os.path.ismount(root):
            return f"{root} is a mount point"
    return ""


def _remove(folder: pathlib.Path, what: str) -> None:
    """Remove a folder jaxhw built; a refusal is one line naming it."""
    try:
        shutil.rmtree(folder)
    except OSError as error:
        raise ResourceError(f"cannot remove {what} {folder}: {_reason(error)}; remove it by hand") from None


# ------------------------------------------------------------------------------------------------ locks


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then act on the first one that came, as it would have acted.

    Only the main thread receives signals, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    names = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda number, frame: caught.append(number)) for number in names}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if caught:
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)  # KeyboardInterrupt for SIGINT, the command's own SIGTERM handler
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), caught[0])


def lock_path(folder: pathlib.Path) -> pathlib.Path:
    """Where the lock of a folder lives: ``.NAME.lock`` beside the real folder (so swapping the folder keeps the
    lock, and a symlink to a locked folder meets the same lock)."""
    folder = real_folder(folder, "folder")
    return folder.parent / f".{folder.name}.lock"


class FolderLock:
    """An exclusive lock on a folder for as long as a run lives (see the module docstring)."""

    def __init__(self, folder: pathlib.Path, what: str):
        self.folder, self.what = real_folder(folder, what), what
        self.path = lock_path(self.folder)
        self.descriptor: int | None = None
        self.note = ""  # set when the lock of a process that died was taken over

    def acquire(self) -> "FolderLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_name_fits(self.folder, self.path.name, self.what)
            self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InputError(f"{self.what} {self.folder}: cannot create its lock {self.path}: "
                             f"{_reason(error)}") from None
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self.descriptor)
            self.descriptor = None
            raise InputError(f"{self.what} {self.folder} is in use by another jaxhw run ({holder}); wait for it "
                             "to finish or choose another folder") from None
        previous = self._holder()
        if previous:
            self.note = f"took over the lock of {self.folder} left by {previous}, which is no longer running"
        try:
            os.ftruncate(self.descriptor, 0)
            os.pwrite(self.descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        except OSError as error:  # a full disk: not even the lock's few bytes fit
            self.release()
            raise InputError(f"{self.what} {self.folder}: cannot write its lock {self.path}: "
                             f"{_reason(error)}") from None
        return self

    def _holder(self) -> str:
        try:
            record = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return ""
        if not record:
            return ""
        return f"pid {record.get('pid')} on {record.get('host')} since {record.get('since')}"

    def release(self) -> None:
        """Unlock and leave an empty lock file (the next holder finds no one to take over from)."""
        if self.descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.descriptor, 0)
        fcntl.flock(self.descriptor, fcntl.LOCK_UN)
        os.close(self.descriptor)
        self.descriptor = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ------------------------------------------------------------------------------------------------ folders


class StagedFolder:
    """A multi-file output built in ``.NAME.staging`` and swapped in whole (see the module docstring).

    ``with StagedFolder(target) as folder: write into folder`` swaps on success; on any exception the
    staging folder is removed and the target is left as it was.
    """

    def __init__(self, target: pathlib.Path):
        self.target = real_folder(target, "output directory")  # built beside the real folder, on its file system
        self.staging = self.target.parent / f".{self.target.name}.staging"
        self.old = self.target.parent / f".{self.target.name}.old"
        check_name_fits(self.target, self.staging.name, "output directory")
        self.swapped = False  # whether the target now holds the new output

    def recover(self) -> str:
        """Finish or roll back a swap a kill interrupted, and drop an unfinished build; say what was done."""
        done = ""
        if self.old.exists():
            if self.target.exists():
                _remove(self.old, "the previous output an interrupted run left")
                done = f"removed the previous output {self.old} that an interrupted run left"
            elif (self.staging / COMPLETE_MARKER).exists():
                os.replace(self.staging, self.target)
                _remove(self.old, "the previous output an interrupted run left")
                done = f"finished swapping in the output of an interrupted run at {self.target}"
            else:
                os.replace(self.old, self.target)
                done = f"restored {self.target} from an interrupted swap"
        if self.staging.exists():
            _remove(self.staging, "the unfinished output of an interrupted run")
            done = done or f"removed the unfinished output {self.staging} of an interrupted run"
        return done

    def check_replaceable(self) -> None:
        """InputError unless the target is missing, empty, or a folder jaxhw built (it is replaced whole), and the
        swap can happen: no checkpoints inside, not a mount point, nothing write-protected."""
        if not self.target.exists():
            return
        if not self.target.is_dir():
            raise InputError(f"output directory {self.target} exists and is not a directory")
        checkpoints = saved_epochs(self.target)
        if checkpoints:
            raise InputError(f"output directory {self.target} holds checkpoints (epochs "
                             f"{', '.join(map(str, checkpoints))}) that replacing it would delete: choose another "
                             "--out, or move the checkpoints out of it")
        if os.path.ismount(self.target):
            raise InputError(f"output directory {self.target} is a mount point, which jaxhw cannot swap a new "
                             f"output in for: use a folder inside it, such as {self.target / 'run'}")
        if any(self.target.iterdir()) and not (self.target / OUTPUT_MARKER).exists():
            raise InputError(f"output directory {self.target} holds files jaxhw did not write; jaxhw replaces its "
                             "output folder whole, so choose a new or empty folder")
        blocked = _removable(self.target)  # walked last: only a folder jaxhw built, not a mistyped home folder
        if blocked:
            raise InputError(f"output directory {self.target} cannot be replaced whole: {blocked}; make it "
                             "writable, or choose another --out")

    def __enter__(self) -> pathlib.Path:
        self.recover()
        self.check_replaceable()
        try:
            self.staging.mkdir(parents=True)
            (self.staging / OUTPUT_MARKER).write_text("a folder jaxhw built and may replace whole\n")
        except OSError as error:
            raise resource_error(error, self.staging, "cannot create") from None
        return self.staging

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None or stopping.pending():
            shutil.rmtree(self.staging, ignore_errors=True)
            if kind is None:
                stopping.check()  # a signal came before the swap: it stops the run with the target as it was
            return
        with signals_deferred():  # whole: a signal now acts once the target holds the new output
            self._swap()

    def _swap(self) -> None:
        try:
            write_bytes(self.staging / COMPLETE_MARKER, b"")
            _fsync_folder(self.staging)
            if self.target.exists():
                os.replace(self.target, self.old)
            os.replace(self.staging, self.target)
            _fsync_folder(self.target.parent)
        except (OSError, ResourceError) as error:
            if self.old.exists() and not self.target.exists():
                os.replace(self.old, self.target)
            shutil.rmtree(self.staging, ignore_errors=True)
            if isinstance(error, OSError):
                raise resource_error(error, self.target, "cannot swap in") from None
            raise
        self.swapped = True
        (self.target / COMPLETE_MARKER).unlink(missing_ok=True)
        if self.old.exists():
            _remove(self.old, f"the previous output (the new one is in {self.target})")
