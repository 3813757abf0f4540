"""What every ``python -m jaxhw.*`` command shares: arguments built from the command's config (jaxhw.configs),
argument types, output folders, the compile cache, and turning bad input into one line on stderr with exit code 2."""
from __future__ import annotations

from jaxhw import stopping

# First, before numpy and JAX load (so E402 is off for this file): a signal from here on stops the command.
COMMANDS = ("jaxhw.__main__", "jaxhw.classify", "jaxhw.autoencode", "jaxhw.gradients", "jaxhw.timeseries")
stopping.record_from_start(COMMANDS)

import argparse
import contextlib
import dataclasses
import functools
import os
import pathlib
import sys
import time
from typing import Any, Callable

from jaxhw.common import (
    FLOAT32_MAX,
    FLOAT32_TINY,
    check_positive_float,
    check_positive_int,
)
from jaxhw.configs import ProcessGroup
from jaxhw.data.images import DATASETS, SOURCES
from jaxhw.errors import InputError, ResourceError
from jaxhw.files import COMMIT_RECORD, FolderLock, StagedFolder, check_writable, real_folder, saved_epochs

# An empty JAXHW_CACHE_DIR counts as unset (not as the current folder); ``start`` says so in one line.
DEFAULT_COMPILE_CACHE = pathlib.Path(os.environ.get("JAXHW_CACHE_DIR") or pathlib.Path.home() / ".cache" / "jaxhw")
DEFAULT_COMPILE_CACHE = DEFAULT_COMPILE_CACHE / "jax"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        return check_positive_int("value", int(text))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def positive_float(text: str) -> float:
    """argparse type: a positive number that float32 represents (as every jitted step computes in float32)."""
    try:
        return check_positive_float("value", float(text))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected a positive number between {FLOAT32_TINY:.3g} and "
                                         f"{FLOAT32_MAX:.3g} (float32), got {text!r}") from None


def config_from(config_class: type, args: argparse.Namespace, **changes: Any):
    """The command's config from its parsed arguments: every field the arguments name, then ``changes``."""
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(config_class)
             if hasattr(args, field.name)}
    return config_class(**{**given, **changes})


def add_common_args(parser: argparse.ArgumentParser, config_class: type, default_out: str) -> None:
    """--seed, --out, --compile-cache, --no-compile-cache and --no-tensorboard, shared by every CLI."""
    parser.add_argument("--seed", type=int, default=config_class.seed, help=f"PRNG seed (default {config_class.seed})")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(default_out),
                        help=f"output directory (default {default_out})")
    parser.add_argument("--compile-cache", type=pathlib.Path, default=DEFAULT_COMPILE_CACHE,
                        help=f"JAX persistent compilation cache (default {DEFAULT_COMPILE_CACHE}; "
                             "env JAXHW_CACHE_DIR moves it)")
    parser.add_argument("--no-compile-cache", action="store_true", help="compile from scratch every run")
    # Not a config field: where the results are shown decides none of their numbers, so a run resumes across it.
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="write no TensorBoard event files (default: one run per seed in --out's tensorboard/)")


def tensorboard_folder(args: argparse.Namespace) -> str:
    """" and tensorboard/" for the line that lists what a command wrote, unless --no-tensorboard."""
    return "" if args.no_tensorboard else " and tensorboard/"


def add_training_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--epochs, --batch-size and --lr, validated at parse time, with the config's defaults."""
    epochs, batch_size, lr = config_class.epochs, config_class.batch_size, config_class.lr
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default {lr})")
    parser.add_argument("--seeds", type=positive_int, default=config_class.seeds,
                        help=f"train one member per seed, --seed .. --seed + N - 1, as one program; results "
                             f"are means with 95%% intervals (default {config_class.seeds})")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_process_args(parser: argparse.ArgumentParser) -> None:
    """The options that make this process one of several training together (jaxhw.configs.ProcessGroup)."""
    group = parser.add_argument_group("several processes (docs/distributed.md)")
    group.add_argument("--coordinator-address", metavar="HOST:PORT",
                       help="process 0's address and a free port there, the same in every process")
    group.add_argument("--num-processes", type=positive_int, help="how many processes train together")
    group.add_argument("--process-id", type=non_negative_int, help="this process's number, 0 .. N - 1")
    group.add_argument("--distributed", action="store_true",
                       help="join the processes of a cluster JAX detects (SLURM, a TPU pod, Open MPI)")
    group.add_argument("--join-timeout", type=positive_int, default=ProcessGroup.join_timeout,
                       help=f"seconds to wait for every process to join (default {ProcessGroup.join_timeout})")
    group.add_argument("--heartbeat-timeout", type=positive_int, default=ProcessGroup.heartbeat_timeout,
                       help="seconds of silence after which a process counts as dead and the run ends "
                            f"(default {ProcessGroup.heartbeat_timeout})")


def process_group(args: argparse.Namespace) -> ProcessGroup:
    """The group of processes the arguments describe (none for a command without those options)."""
    return ProcessGroup(coordinator_address=getattr(args, "coordinator_address", None),
                        num_processes=getattr(args, "num_processes", None),
                        process_id=getattr(args, "process_id", None), detect=getattr(args, "distributed", False),
                        join_timeout=getattr(args, "join_timeout", ProcessGroup.join_timeout),
                        heartbeat_timeout=getattr(args, "heartbeat_timeout", ProcessGroup.heartbeat_timeout))


def add_run_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--devices, --checkpoint-dir, --resume, --keep-checkpoints and the process options, for every training
    CLI."""
    parser.add_argument("--devices", type=positive_int, default=config_class.devices,
                        help="devices that share each batch (default: all that JAX sees)")
    parser.add_argument("--checkpoint-dir", type=pathlib.Path, default=None,
                        help="save the whole training state here at every epoch end")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh, deleting the checkpoints already in --checkpoint-dir")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=config_class.keep_checkpoints,
                        help=f"checkpoints kept (default {config_class.keep_checkpoints})")
    add_process_args(parser)


def add_data_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--dataset, --source and --data-dir for the image CLIs."""
    parser.add_argument("--dataset", default=config_class.dataset,
                        help=f"one of {', '.join(DATASETS)} (default {config_class.dataset})")
    parser.add_argument("--source", default=config_class.source,
                        help=f"one of {', '.join(SOURCES)} (default {config_class.source})")
    parser.add_argument("--data-dir", type=pathlib.Path, default=None, help="IDX directory or tfds data_dir")


def enable_compilation_cache(path: pathlib.Path | None) -> None:
    """Turn on JAX's persistent compilation cache, so a second run of a command does not compile again; None
    turns it off (also for a process that had turned it on, as a test session calling several commands does)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if path is not None:
        try:  # a cache JAX cannot write to is a dozen warnings a run: one line instead, and no cache
            path = real_folder(path, "compilation cache")
            path.mkdir(parents=True, exist_ok=True)
            check_writable(path, "compilation cache")
        except OSError as e:
            note(f"compilation cache disabled ({path}: {e.strerror})")
            path = None
        except InputError as e:
            note(f"compilation cache disabled: {e}")
            path = None
    compilation_cache.reset_cache()  # JAX decides whether to use a cache once, at the first compilation
    jax.config.update("jax_enable_compilation_cache", path is not None)
    if path is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# What the running command holds, for the line it prints when interrupted (one command runs at a time).
_RUN: dict[str, Any] = {}


def prepare_out_dir(path: pathlib.Path) -> pathlib.Path:
    """The real output directory (symlinks followed), proven buildable (its parent is writable) before any work
    starts."""
    real = real_folder(path, "output directory")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"output directory {str(path)!r} is not writable: {e.strerror or e}") from None
    check_writable(real.parent, "output directory's parent")
    if real.exists() and not real.is_dir():
        raise InputError(f"output directory {str(path)!r} is not writable: it exists and is not a directory")
    return real


def kept_line() -> str:
    """What a command that stops now keeps, and how to continue ("" before it knows its folders)."""
    out, checkpoints = _RUN.get("out"), _RUN.get("checkpoint_dir")
    kept = []
    if out is not None:
        staged = _RUN.get("staged")
        kept.append(f"{out} holds this run's complete output" if staged is not None and staged.swapped
                    else f"{out} is as it was before this run")
    if checkpoints is not None:
        epochs = saved_epochs(checkpoints)
        if epochs and _RUN.get("overwrite") and not _saved_by_this_run(checkpoints, epochs[-1]):
            kept.append(f"the earlier run's checkpoints in {checkpoints} are as they were (--overwrite replaces them "
                        "only when this run saves its first)")
        else:
            kept.append(f"checkpoints up to epoch {epochs[-1]} are in {checkpoints}: run the same command with "
                        "--resume to continue" if epochs
                        else f"no epoch had finished, so {checkpoints} holds no checkpoint yet")
    return "; ".join(kept)


def _saved_by_this_run(directory: pathlib.Path, epoch: int) -> bool:
    try:
        return (pathlib.Path(directory) / str(epoch) / COMMIT_RECORD).stat().st_mtime >= _RUN["started"]
    except (OSError, KeyError):
        return False


def interrupted_line(number: int) -> str:
    """What a command interrupted by signal ``number`` kept, and how to continue."""
    kept = kept_line()
    return f"interrupted by {stopping.NAMES[number]}" + (f"; {kept}" if kept else "")


def _is_out_of_memory(error: Exception) -> bool:
    return type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(error)


def run_cli(main: Callable[[list[str] | None], Any]) -> Callable[[list[str] | None], int]:
    """Wrap a CLI's main so that every fault is one line on stderr and an exit code, never a traceback:
    bad input 2; a diverged run, a full disk, a refused write or too little memory 1; Ctrl-C 130; SIGTERM 143
    (``jaxhw.stopping``: at any moment, and never an exit 0 once one came). The folders the run locked are
    released whatever happens. Over several processes they end together (``jaxhw.training.distributed``), and a
    process lost by the group is named in the last line."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        _RUN.clear()
        code = None
        previous = stopping.install()
        try:
            code = _outcome(main, argv)
        finally:
            stopping.ended(code, lambda number: f"error: {interrupted_line(number)}")
            stopping.restore(previous)
        return code

    return wrapped


def _outcome(main: Callable[[list[str] | None], Any], argv: list[str] | None) -> int:
    """Run ``main``; 0, or the exit code of the one line printed for what stopped it."""
    try:
        stopping.act()  # and at once for a signal that came while the command's modules loaded
        with contextlib.ExitStack() as stack:
            _RUN["stack"] = stack
            main(argv)
        stopping.check()  # a signal that landed where it could not act
        from jaxhw.training import distributed

        if distributed.joined():
            distributed.finish()
        stopping.stop_acting()
        number = stopping.received()  # one that came while the group finished
        return 0 if number is None else _fail(interrupted_line(number), stopping.EXIT_CODES[number])
    except (KeyboardInterrupt, stopping.Terminated) as error:
        stopping.stop_acting()
        number = stopping.received() or stopping.signal_of(error)
        return _fail(interrupted_line(number), stopping.EXIT_CODES[number])
    except Exception as error:
        stopping.stop_acting()
        return _failure(error)


def _failure(error: Exception) -> int:
    """The one line and exit code of an error that stopped a command; an unknown error is raised again."""
    if isinstance(error, InputError):  # often before JAX has loaded: answered without loading it
        return _fail(error, 2)
    if isinstance(error, ResourceError):
        return _fail(error, 1)
    if isinstance(error, MemoryError):
        return _fail("out of host memory (a numpy allocation failed)", 1)
    from jaxhw.training import distributed
    from jaxhw.training.fit import TrainingDiverged

    if isinstance(error, TrainingDiverged):
        return _fail(error, 1)
    if _is_out_of_memory(error):
        return _fail(f"out of device memory: {str(error).splitlines()[0][:300]}", 1)
    if distributed.lost_in_collective(error):
        return _fail(distributed.await_verdict(error), 1)
    raise error


def with_interval(metrics: dict, name: str) -> str:
    """A final metric as the commands print it: "0.9312", or "0.9312 [0.9270, 0.9354]" over several seeds."""
    interval = metrics.get(f"{name}_ci95")
    return f"{metrics[name]:.4f}" + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")


def _fail(message: Any, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def note(line: str) -> None:
    """A one-line note on stderr."""
    if line:
        print(f"jaxhw: {line}", file=sys.stderr)


def start(args: argparse.Namespace) -> pathlib.Path | None:
    """The steps every CLI takes after parsing: joining the other processes of a group, the compile cache, then
    --out checked, locked for the run and recovered from an interrupted earlier run. The run's files are written
    with ``output(out)``. None in a process of a group other than process 0, which alone writes."""
    group = process_group(args)
    if group.active:
        from jaxhw.training import distributed

        distributed.join(group, on_loss=kept_line)
    if os.environ.get("JAXHW_CACHE_DIR") == "" and not args.no_compile_cache and \
            args.compile_cache == DEFAULT_COMPILE_CACHE:
        note(f"JAXHW_CACHE_DIR is empty, so the compilation cache is in its default place {DEFAULT_COMPILE_CACHE}")
    enable_compilation_cache(None if args.no_compile_cache else args.compile_cache)
    import jax

    if jax.process_index() != 0:
        return None
    # Every path resolved first, then locked (a symlink meets the lock of the folder it leads to), then checked;
    # nothing is deleted before the whole input has been (the checkpoints a run replaces: at its first save).
    out = prepare_out_dir(args.out)
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    if checkpoint_dir is not None:
        inside = real_folder(checkpoint_dir, "checkpoint dir")
        if inside == out or out in inside.parents:
            raise InputError(f"--checkpoint-dir {checkpoint_dir} lies inside --out {out}, which each run replaces "
                             "whole: keep checkpoints beside the output, not in it")
    lock = FolderLock(out, "output directory").acquire()
    _RUN["stack"].callback(lock.release)
    _RUN.update(out=out, checkpoint_dir=checkpoint_dir, overwrite=getattr(args, "overwrite", False),
                started=time.time())
    note(lock.note)
    staged = StagedFolder(out)
    note(staged.recover())
    staged.check_replaceable()
    return out


def output(out: pathlib.Path) -> StagedFolder:
    """``with output(out) as folder:`` write the run's files into ``folder``; they replace ``out`` whole at the
    end, and a failure or a kill leaves ``out`` as it was."""
    staged = _RUN["staged"] = StagedFolder(out)
    return staged
