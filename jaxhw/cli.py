"""What every ``python -m jaxhw.*`` command shares: arguments built from the command's config (jaxhw.configs),
argument types, output folders, the compile cache, and turning bad input into one line on stderr with exit code 2."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pathlib
import sys
import tempfile
from typing import Any, Callable

from jaxhw.common import (
    FLOAT32_MAX,
    FLOAT32_TINY,
    check_positive_float,
    check_positive_int,
)
from jaxhw.data.images import DATASETS, SOURCES
from jaxhw.errors import InputError

DEFAULT_COMPILE_CACHE = pathlib.Path(os.environ.get("JAXHW_CACHE_DIR", pathlib.Path.home() / ".cache" / "jaxhw"))
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
    """--seed, --out, --compile-cache and --no-compile-cache, shared by every CLI."""
    parser.add_argument("--seed", type=int, default=config_class.seed, help=f"PRNG seed (default {config_class.seed})")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(default_out),
                        help=f"output directory (default {default_out})")
    parser.add_argument("--compile-cache", type=pathlib.Path, default=DEFAULT_COMPILE_CACHE,
                        help=f"JAX persistent compilation cache (default {DEFAULT_COMPILE_CACHE}; "
                             "env JAXHW_CACHE_DIR moves it)")
    parser.add_argument("--no-compile-cache", action="store_true", help="compile from scratch every run")


def add_training_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--epochs, --batch-size and --lr, validated at parse time, with the config's defaults."""
    epochs, batch_size, lr = config_class.epochs, config_class.batch_size, config_class.lr
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default {lr})")


def add_run_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--devices, --checkpoint-dir, --resume and --keep-checkpoints, for every training CLI."""
    parser.add_argument("--devices", type=positive_int, default=config_class.devices,
                        help="devices that share each batch (default: all that JAX sees)")
    parser.add_argument("--checkpoint-dir", type=pathlib.Path, default=None,
                        help="save the whole training state here at every epoch end")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=config_class.keep_checkpoints,
                        help=f"checkpoints kept (default {config_class.keep_checkpoints})")


def add_data_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """--dataset, --source and --data-dir for the image CLIs."""
    parser.add_argument("--dataset", default=config_class.dataset,
                        help=f"one of {', '.join(DATASETS)} (default {config_class.dataset})")
    parser.add_argument("--source", default=config_class.source,
                        help=f"one of {', '.join(SOURCES)} (default {config_class.source})")
    parser.add_argument("--data-dir", type=pathlib.Path, default=None, help="IDX directory or tfds data_dir")


def enable_compilation_cache(path: pathlib.Path | None) -> None:
    """Turn on JAX's persistent compilation cache, so a second run of a command does not compile again."""
    if path is None:
        return
    import jax

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"jaxhw: compilation cache disabled ({path}: {e.strerror})", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def prepare_out_dir(path: pathlib.Path) -> pathlib.Path:
    """Create the output directory and prove it is writable before any work starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise InputError(f"output directory {str(path)!r} is not writable: {e.strerror or e}") from None
    return path


def run_cli(main: Callable[[list[str] | None], Any]) -> Callable[[list[str] | None], int]:
    """Wrap a CLI's main: InputError becomes 'error: ...' on stderr and exit code 2, not a traceback;
    a diverged training run (NaN loss) exits 1 with its one-line message."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        from jaxhw.training.fit import TrainingDiverged

        try:
            main(argv)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except TrainingDiverged as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0

    return wrapped


def start(args: argparse.Namespace) -> pathlib.Path:
    """The steps every CLI takes after parsing: the compile cache, then a writable --out."""
    enable_compilation_cache(None if args.no_compile_cache else args.compile_cache)
    return prepare_out_dir(args.out)
