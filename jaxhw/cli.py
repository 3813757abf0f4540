"""What every ``python -m jaxhw.*`` command shares: argument types, output folders, the compile cache, and
turning bad input into one line on stderr with exit code 2."""
from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
import tempfile
from typing import Any, Callable

from jaxhw.errors import InputError

DEFAULT_COMPILE_CACHE = pathlib.Path(os.environ.get("JAXHW_CACHE_DIR", pathlib.Path.home() / ".cache" / "jaxhw")) / "jax"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def add_common_args(parser: argparse.ArgumentParser, default_out: str) -> None:
    """--seed, --out, --compile-cache and --no-compile-cache, shared by every CLI."""
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(default_out),
                        help=f"output directory (default {default_out})")
    parser.add_argument("--compile-cache", type=pathlib.Path, default=DEFAULT_COMPILE_CACHE,
                        help=f"JAX persistent compilation cache (default {DEFAULT_COMPILE_CACHE}; "
                             "env JAXHW_CACHE_DIR moves it)")
    parser.add_argument("--no-compile-cache", action="store_true", help="compile from scratch every run")


def add_training_args(parser: argparse.ArgumentParser, epochs: int = 10, batch_size: int = 64,
                      lr: float = 1e-3) -> None:
    """--epochs, --batch-size and --lr, validated at parse time."""
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"Adam learning rate (default {lr})")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    """--devices, --checkpoint-dir, --resume and --keep-checkpoints, for every training CLI."""
    parser.add_argument("--devices", type=positive_int, default=None,
                        help="devices that share each batch (default: all that JAX sees)")
    parser.add_argument("--checkpoint-dir", type=pathlib.Path, default=None,
                        help="save the whole training state here at every epoch end")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=3, help="checkpoints kept (default 3)")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """--dataset, --source and --data-dir for the image CLIs."""
    from jaxhw.data.images import DATASETS, SOURCES

    parser.add_argument("--dataset", default="mnist", help=f"one of {', '.join(DATASETS)} (default mnist)")
    parser.add_argument("--source", default="auto", help=f"one of {', '.join(SOURCES)} (default auto)")
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


def write_json(path: pathlib.Path, data: Any) -> None:
    """Write JSON atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


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
