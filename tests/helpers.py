"""Helpers shared by the tests: child processes, small data sets on disk."""
import gzip
import pathlib
import signal

import numpy as np

from jaxhw.data import images


def default_ctrl_c() -> None:
    """In the child before it starts: SIGINT as a terminal delivers it. A shell starts background jobs with SIGINT
    ignored, the child would inherit that from a suite run in the background, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
