"""MNIST and Fashion-MNIST as uint8 arrays, from tfds, from an IDX directory, or embedded in the package.

The counterpart of ``torchvision.datasets.MNIST``/``FashionMNIST``: ``load_images`` returns the whole split
as arrays; batching and shuffling are the loader's job (``jaxhw.data.loader``).
"""
from __future__ import annotations

import dataclasses
import gzip
import logging
import math
import os
import pathlib
import socket
import threading
import zipfile
import zlib

import numpy as np

from jaxhw.common import print_above_bars
from jaxhw.errors import InputError

DATASETS = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
SOURCES = ("auto", "tfds", "idx", "embedded")
SPLITS = ("train", "test")
# Directories searched for IDX files when no data_dir is given (Debian's dataset-fashion-mnist package).
KNOWN_IDX_DIRS = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
    "mnist": ("/usr/share/datasets/mnist",),
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EMBEDDED_PATH = pathlib.Path(__file__).with_name("mnist_5k.npz")
NETWORK_PROBE = ("storage.googleapis.com", 443)
NETWORK_PROBE_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """One split of an image classification data set, held as uint8 images and int32 labels."""

    images: np.ndarray  # uint8, (N, 28, 28, 1)
    labels: np.ndarray  # int32, (N,)
    class_names: tuple[str, ...]
    source: str  # where the data came from, e.g. "idx:/usr/share/datasets/fashion-mnist"
    name: str = ""
    split: str = ""

    def __post_init__(self):
        check_images_and_labels(self.images, self.labels, len(self.class_names), what=f"{self.name} {self.split}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def arrays(self) -> dict[str, np.ndarray]:
        """The dict of arrays jaxhw.training.fit takes: images as "x", labels as "y"."""
        return {"x": self.images, "y": self.labels}

    def __len__(self) -> int:
        return len(self.labels)


def check_images_and_labels(images: np.ndarray, labels: np.ndarray, num_classes: int, what: str = "data") -> None:
    """Raise InputError unless images are uint8 N x H x W x C and labels int N in [0, num_classes)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise InputError(f"{what}: images must be a uint8 array of shape (N, H, W, C), "
                         f"got {getattr(images, 'dtype', type(images).__name__)} of shape {np.shape(images)}")
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{what}: labels must be a 1-D integer array, got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)} of shape {np.shape(labels)}")
    if len(images) != len(labels):
        raise InputError(f"{what}: {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise InputError(f"{what}: the split is empty (0 examples)")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise InputError(f"{what}: labels must lie in [0, {num_classes}), got values from {low} to {high}")


def _check_request(name: str, source: str, data_dir) -> None:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    if data_dir is not None and not pathlib.Path(data_dir).is_dir():
        raise InputError(f"data dir {str(data_dir)!r} does not exist or is not a directory")
    if data_dir is not None:
        try:
            os.listdir(data_dir)
        except OSError as error:
            raise InputError(f"data dir {str(data_dir)!r} is not readable: {(error.strerror or str(error)).lower()}"
                             ) from None
    if data_dir is not None and source == "embedded":
        raise InputError(f"--source embedded reads the digits shipped with jaxhw and no --data-dir (got {data_dir})")


def resolve_source(name: str, source: str = "auto", data_dir=None) -> str:
    """The one source both splits are read from: ``source`` itself, or for "auto" the first that holds the whole
    data set: a prepared tfds dataset, the IDX files, the embedded digits (MNIST only). A given ``data_dir``
    must hold the whole data set itself: there is no fallback to another source then."""
    _check_request(name, source, data_dir)
    if source != "auto":
        return source
    if data_dir is not None:
        if all(_idx_dir_holds(data_dir, split) for split in SPLITS):
            return "idx"
        if _tfds_prepared(name, data_dir):
            return "tfds"
        missing = [f"{stem}[.gz]" for split in SPLITS for stem in IDX_FILES[split] if _idx_path(data_dir, stem) is None]
        raise InputError(f"data dir {data_dir} does not hold the whole of {name}: no prepared tfds dataset, and "
                         f"of its IDX files {', '.join(missing)} are missing. " + _how_to_provide(name))
    if _tfds_prepared(name, None):
        return "tfds"
    if all(find_idx_dir(name, split) is not None for split in SPLITS):
        return "idx"
    if name == "mnist":
        return "embedded"
    raise InputError(f"no source holds {name}: tried tfds (no prepared dataset found), idx (no IDX files in "
                     f"{', '.join(KNOWN_IDX_DIRS[name])}); only MNIST is embedded. " + _how_to_provide(name))


def load_images(name: str = "mnist", split: str = "train", source: str = "auto",
                data_dir: str | os.PathLike | None = None, verbose: bool = False) -> ImageDataset:
    """Load one split of MNIST or Fashion-MNIST.

    source: "tfds" (a prepared tensorflow-datasets dataset, read without TensorFlow), "idx" (a directory
    of the four standard IDX files, .gz or not), "embedded" (5,000 real MNIST digits shipped with jaxhw:
    4,000 train, 1,000 test) or "auto" (see ``resolve_source``).
    """
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    chosen = resolve_source(name, source, data_dir)
    dataset = _LOADERS[chosen](name, split, data_dir)
    if verbose and source == "auto":
        print_above_bars(f"jaxhw: {name} {split} from {dataset.source}")
    return dataset


def _how_to_provide(name: str) -> str:
    hint = ("apt-get install dataset-fashion-mnist" if name == "fashion_mnist"
            else "download the four IDX files from a MNIST mirror")
    return (f"Provide IDX files with --source idx --data-dir DIR ({hint}), or prepare the tfds dataset "
            f"on a machine with internet (pip install 'jaxhw[tfds]'; python -c \"import tensorflow_datasets as "
            f"tfds; tfds.data_source('{name}')\").")


# ---------------------------------------------------------------------------------------------------- IDX

def find_idx_dir(name: str, split: str, data_dir=None) -> pathlib.Path | None:
    """The directory that holds the IDX files of this split: data_dir if given, else a known system one."""
    candidates = [data_dir] if data_dir is not None else KNOWN_IDX_DIRS.get(name, ())
    for directory in candidates:
        if _idx_dir_holds(directory, split):
            return pathlib.Path(directory)
    return None


def _idx_dir_holds(directory, split: str) -> bool:
    return all(_idx_path(directory, stem) is not None for stem in IDX_FILES[split])


def _idx_path(directory, stem: str) -> pathlib.Path | None:
    for candidate in (pathlib.Path(directory) / stem, pathlib.Path(directory) / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes, validating its magic number and size; the size
    its header promises is computed with Python integers (no overflow) and checked before the data is read."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            start = f.read(4)
            if len(start) < 4 or start[0] != 0 or start[1] != 0:
                raise InputError(f"{path}: not an IDX file (expected magic bytes 00 00, got "
                                 f"{start[:2].hex() or 'nothing'})")
            dtype_code, ndim = start[2], start[3]
            if dtype_code != 0x08:
                raise InputError(f"{path}: expected IDX data type 0x08 (unsigned byte), got 0x{dtype_code:02x}")
            dimensions = f.read(4 * ndim)
            header = 4 + 4 * ndim
            if len(dimensions) < 4 * ndim:
                raise InputError(f"{path}: truncated header (needs {header} bytes, file has "
                                 f"{4 + len(dimensions)})")
            shape = tuple(int.from_bytes(dimensions[4 * i: 4 * i + 4], "big") for i in range(ndim))
            promised = math.prod(shape)
            data = _read_at_most(f, promised + 1)  # one byte more tells a file that is too long
    except (OSError, EOFError, zlib.error) as e:  # gzip's BadGzipFile is an OSError, a bad deflate stream not
        raise InputError(f"{path}: cannot read IDX file ({type(e).__name__}: {e})") from None
    if len(data) != promised:
        size = (f"{header + len(data)} bytes (truncated)" if len(data) < promised
                else f"more than {header + promised} bytes")
        raise InputError(f"{path}: header promises shape {shape} ({header + promised} bytes) but the file has "
                         f"{size}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _read_at_most(file, limit: int) -> bytes:
    """Up to ``limit`` bytes of an open file, read in chunks (a header may promise more than memory holds)."""
    chunks, size = [], 0
    while size < limit:
        chunk = file.read(min(limit - size, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def load_idx(name: str, split: str, data_dir=None) -> ImageDataset:
    """Load a split from the standard IDX files in data_dir (or a known system directory)."""
    directory = find_idx_dir(name, split, data_dir)
    if directory is None:
        where = str(data_dir) if data_dir is not None else " or ".join(KNOWN_IDX_DIRS.get(name, ())) or "nowhere"
        raise InputError(f"no IDX files for {name} {split} in {where}: expected "
                         f"{' and '.join(s + '[.gz]' for s in IDX_FILES[split])}. " + _how_to_provide(name))
    image_path, label_path = (_idx_path(directory, stem) for stem in IDX_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{image_path}: expected images of shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1:
        raise InputError(f"{label_path}: expected a 1-D label file, got shape {labels.shape}")
    if len(images) != len(labels):
        raise InputError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels")
    return ImageDataset(images[..., None].copy(), labels.astype(np.int32), DATASETS[name],
                        f"idx:{directory}", name, split)


# ---------------------------------------------------------------------------------------------------- embedded

def load_embedded(name: str = "mnist", split: str = "train", data_dir=None) -> ImageDataset:
    """The real MNIST subset shipped inside jaxhw: 4,000 train and 1,000 test digits, balanced by class."""
    if name != "mnist":
        raise InputError(f"only mnist is embedded, not {name!r}: use --source idx or tfds for {name}")
    try:
        with np.load(EMBEDDED_PATH) as archive:
            images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise InputError(f"the embedded digits {EMBEDDED_PATH} are unreadable ({type(e).__name__}: {e}); "
                         "reinstall jaxhw or rebuild them with python -m jaxhw.data.make_embedded") from None
    return ImageDataset(images, labels, DATASETS[name], "embedded:mnist_5k", name, split)


# ---------------------------------------------------------------------------------------------------- tfds

def _tfds_prepared(name: str, data_dir) -> bool:
    """Whether tensorflow-datasets holds this dataset already prepared locally (never touches the network)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return False
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "no dataset_info.json" warnings only mean "not prepared"
    try:
        tfds.data_source(name, split="train", data_dir=data_dir, download=False)
    except Exception:  # any failure here just means "not prepared"
        return False
    finally:
        absl_logger.setLevel(level)
    return True


def network_reachable(address=NETWORK_PROBE, timeout: float = NETWORK_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the tfds download host opens within ``timeout`` seconds (DNS included)."""
    outcome = []

    def probe():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def load_tfds(name: str, split: str, data_dir=None) -> ImageDataset:
    """Load a split through ``tfds.data_source``: prepared data is read without TensorFlow.

    Unprepared data is downloaded and prepared only when the network answers and TensorFlow is installed;
    otherwise this fails at once with a message naming the other sources.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise InputError("source 'tfds' needs tensorflow-datasets (pip install tensorflow-datasets); "
                         "other sources: idx, embedded") from None
    if not _tfds_prepared(name, data_dir):
        if not network_reachable():
            raise InputError(f"tfds: {name} is not prepared locally and the network is unreachable "
                             f"(no answer from {NETWORK_PROBE[0]} within {NETWORK_PROBE_SECONDS:.0f} s). "
                             "Use --source embedded (MNIST subset) or --source idx --data-dir DIR. "
                             + _how_to_provide(name))
        try:
            import tensorflow  # noqa: F401  (preparing needs it)
        except ImportError:
            raise InputError(f"tfds: preparing {name} needs TensorFlow: pip install 'jaxhw[tfds]'; "
                             "or use --source idx / embedded") from None
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir,
                                  download_and_prepare_kwargs={"file_format": "array_record"})
    except Exception as e:
        raise InputError(f"tfds: could not load {name} {split}: {e}") from None
    examples = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(ex["image"], dtype=np.uint8) for ex in examples]) if examples else \
        np.zeros((0, 28, 28, 1), np.uint8)
    labels = np.asarray([ex["label"] for ex in examples], dtype=np.int32)
    return ImageDataset(images, labels, DATASETS[name], f"tfds:{data_dir or '~/tensorflow_datasets'}", name, split)


_LOADERS = {"tfds": load_tfds, "idx": load_idx, "embedded": load_embedded}


def load_train_test(name: str = "mnist", source: str = "auto", data_dir=None,
                    verbose: bool = False) -> tuple[ImageDataset, ImageDataset]:
    """Both splits of a data set, from one source (never the training split from one and the test split from
    another)."""
    chosen = resolve_source(name, source, data_dir)
    train, test = (_LOADERS[chosen](name, split, data_dir) for split in SPLITS)
    if verbose and source == "auto":
        print_above_bars(f"jaxhw: {name} from {train.source}")
    return train, test
