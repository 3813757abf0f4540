"""What several floors of jaxhw share and nothing else owns: atomic file writes, JSON-ready values, argument
checks, timing summaries and batched application of a function. A leaf: it imports nothing from jaxhw but
the error type, and neither jax nor flax, so the command-line tools can import it before parsing."""
from __future__ import annotations

import json
import math
import os
import pathlib
import statistics
import tempfile
from typing import Any, Callable

import numpy as np

from jaxhw.errors import InputError

# The largest float32: a learning rate or noise level above it would be inf inside the jitted step.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest normal float32: a positive number below it is 0 or denormal (and then slow) in float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


# ------------------------------------------------------------------------------------------------ files


def write_bytes(path: pathlib.Path, data: bytes) -> pathlib.Path:
    """Write a file atomically: a temporary file of a unique name in the same folder, flushed to disk, then
    renamed over ``path``. A crash leaves the old file or the new one, never half of one."""
    path = pathlib.Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write UTF-8 text atomically (see ``write_bytes``)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: pathlib.Path, data: Any) -> pathlib.Path:
    """Write JSON atomically (see ``write_bytes``), after making ``data`` JSON-ready (``plain``)."""
    return write_text(path, json.dumps(plain(data), indent=2) + "\n")


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


def apply_in_batches(fn: Callable[[Any], Any], inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Run a (jitted) function over a large array in fixed-size chunks and gather the results on the host."""
    return np.concatenate([np.asarray(fn(inputs[i:i + batch_size])) for i in range(0, len(inputs), batch_size)])
