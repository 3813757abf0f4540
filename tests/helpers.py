"""Helpers shared by the tests: child processes, small data sets on disk."""
import contextlib
import gzip
import pathlib
import signal
from typing import Iterator

import numpy as np

from jaxhw.data import images


@contextlib.contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """Children started inside the block get SIGINT's default action, as from a terminal.

    A shell starts background jobs with SIGINT ignored; a suite run that way would pass that on to its children,
    and Python in them would keep ignoring Ctrl-C. A handled signal is reset to its default by exec, so while the
    block runs this process handles SIGINT (no ``preexec_fn``: forking a threaded JAX process to run Python in the
    child can deadlock).
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_idx_dataset(folder: pathlib.Path, count: int, splits=("train", "test")) -> None:
    """``count`` random 28x28 digits per split as the four gzipped IDX files of MNIST."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)

    def idx(array: np.ndarray) -> bytes:
        return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) \
            + array.tobytes()

    for split in splits:
        image_stem, label_stem = images.IDX_FILES[split]
        (folder / f"{image_stem}.gz").write_bytes(gzip.compress(idx(rng.integers(0, 256, (count, 28, 28),
                                                                                  dtype=np.uint8))))
        (folder / f"{label_stem}.gz").write_bytes(gzip.compress(idx(rng.integers(0, 10, count, dtype=np.uint8))))


def wilson_by_hand(values, critical: float) -> tuple[float, float]:
    """The Wilson interval of the mean of values in [0, 1] at the seeds' effective sample size, derived apart
    from jaxhw.intervals: the p with (m - p)^2 = q^2 p (1 - p) / n_eff, n_eff = m (1 - m) n / s^2, are the roots of
    (1 + q^2 / n_eff) p^2 - (2 m + q^2 / n_eff) p + m^2 = 0."""
    values = np.asarray(values, np.float64)
    m, variance = values.mean(), values.var(ddof=1)
    k = critical ** 2 * variance / (values.size * m * (1 - m))  # q^2 / n_eff
    a, b, c = 1 + k, -(2 * m + k), m ** 2
    root = np.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)
