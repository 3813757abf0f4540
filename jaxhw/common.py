"""What several floors of jaxhw share and nothing else owns: JSON-ready values, argument checks, timing
summaries, batched application of a function, a line printed above the progress bars, and heavy modules
loaded on first use (file writing is jaxhw.files). A leaf: it imports nothing from jaxhw but the error type,
and neither jax nor flax, so the command-line tools can import it before parsing."""
from __future__ import annotations

import hashlib
import importlib
import math
import pathlib
import statistics
import sys
from typing import Any, Callable

import numpy as np

from jaxhw.errors import InputError

# The largest float32: a learning rate or noise level above it would be inf inside the jitted step.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest normal float32: a positive number below it is 0 or denormal (and then slow) in float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


# ------------------------------------------------------------------------------------------------ values


def plain(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars and arrays as Python numbers and lists, tuples as lists, paths as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return value


# ------------------------------------------------------------------------------------------------ checks


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is an integer >= 1 (not a bool); else InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """``value`` as a float if it is a number that float32 holds as a positive normal number; else InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not FLOAT32_TINY <= value <= FLOAT32_MAX:
        raise InputError(f"{name} must be a positive number between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g} "
                         f"(float32), got {value!r}")
    return float(value)


def check_non_negative_float(name: str, value: Any) -> float:
    """``value`` as a float if it is 0 or a positive number within float32's range; else InputError."""
    if not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and value == 0:
        return 0.0
    try:
        return check_positive_float(name, value)
    except InputError:
        raise InputError(f"{name} must be a finite number >= 0 (0, or between {FLOAT32_TINY:.3g} and "
                         f"{FLOAT32_MAX:.3g} in float32), got {value!r}") from None


# ------------------------------------------------------------------------------------------------ runs


def summarize_timing(history: list[dict]) -> dict:
    """The first epoch (compilation included) apart from the median of the rest."""
    seconds = [h["seconds"] for h in history]
    steady = seconds[1:] or seconds
    return {"first_epoch_seconds": seconds[0], "seconds_per_epoch": statistics.median(steady)}


def fingerprint(*arrays: np.ndarray) -> str:
    """A short BLAKE2b digest of arrays' dtypes, shapes and bytes: equal data, equal fingerprint."""
    digest = hashlib.blake2b(digest_size=8)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}|{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def flatten(description: dict, prefix: str = "") -> dict:
    """A nested record as one level, in its order: {"data": {"fingerprint": x}} -> {"data.fingerprint": x}."""
    flat = {}
    for key, value in description.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_in_batches(fn: Callable[[Any], Any], inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Run a (jitted) function over a large array in fixed-size chunks and gather the results on the host."""
    return np.concatenate([np.asarray(fn(inputs[i:i + batch_size])) for i in range(0, len(inputs), batch_size)])


# ------------------------------------------------------------------------------------------------ output


def print_above_bars(line: str) -> None:
    """A line on stderr for the person at the terminal, printed above any progress bar (tqdm.write) instead of
    through the middle of one."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


# ------------------------------------------------------------------------------------------------ modules


class ModuleOnFirstUse:
    """A module imported when one of its attributes is first read: ``ocp = ModuleOnFirstUse("orbax.checkpoint")``
    at the top of a module keeps a heavy dependency that only some runs need (orbax without a checkpoint
    directory, matplotlib before a figure is written) out of every other run. ``prepare`` runs once before the
    import (matplotlib's backend is chosen before pyplot loads)."""

    def __init__(self, name: str, prepare: Callable[[], None] | None = None):
        self._name, self._prepare, self._module = name, prepare, None

    def __getattr__(self, attribute: str) -> Any:  # called only for what the proxy itself lacks
        if "_name" not in self.__dict__:  # a copy made without __init__
            raise AttributeError(attribute)
        if self._module is None:
            if self._prepare is not None:
                self._prepare()
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, {'imported' if self._module is not None else 'imported on first use'}>"
