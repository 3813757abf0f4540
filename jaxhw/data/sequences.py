"""The time-series tasks of homework problem 5: samples of 50 time steps x 8 features with a binary label.

Each synthetic task is built so that one inductive bias decides it (noise is N(0, 1) everywhere):

- ``motif``: class 1 holds a fixed 6-step pattern, class 0 a different fixed pattern of the same energy, at any
  time step (translation invariance decides it: a CNN's home ground).
- ``shifted_motif``: the same, but training samples hold the pattern in steps 0-24 and test samples in
  steps 25-49 (only a model that shares weights across time can recognise it where it never saw it).
- ``order``: two strong 3-step events, A and B, occur at least 20 steps apart, always 8 or more steps away
  from either end; the label says whether A came first (a long-range dependency: a CNN whose receptive
  field is shorter than the gap sees the same bag of local features in both classes).
- ``trend``: every feature drifts linearly up (class 1) or down (class 0) over the whole sequence under
  random offsets, seasonal oscillations and noise (the homework's "temperature rising" example).

Plus one real data set, ``vowels``: JapaneseVowels (Kudo, Toyama and Shimbo 1999, UCI Machine Learning
Repository, CC BY 4.0), 640 utterances of the vowels /ae/ by 9 male speakers as 12 LPC cepstrum
coefficients over 7 to 29 frames; the task is the speaker (9 classes, not binary), with the original split
of 270 training and 370 test utterances. It ships as ``japanese_vowels.npz`` (converted once from the
``.ts`` files inside the wheel of the aeon package, BSD-3-Clause, by ``python -m jaxhw.data.make_vowels``);
here each feature is standardised with the training set's mean and standard deviation and the
utterances are zero-padded at the front to 50 steps (cropping would keep the last 50 frames), so its
samples are 50 x 12.

``load_task(name, num_train, num_test, seed)`` returns (train, test) ``SequenceDataset`` values; the same
arguments always give the same arrays.
"""
from __future__ import annotations

import dataclasses
import pathlib
import zipfile
import zlib
from typing import Callable

import numpy as np

from jaxhw.errors import InputError

SEQUENCE_LENGTH, NUM_FEATURES = 50, 8
VOWELS_PATH = pathlib.Path(__file__).with_name("japanese_vowels.npz")
VOWELS_SPEAKERS = 9

# Fixed patterns shared by every sample of every seed (the seed varies the samples, not the task).
_PATTERNS = np.random.default_rng(20240501)
MOTIF = 1.0 * _PATTERNS.choice([-1.0, 1.0], size=(6, NUM_FEATURES))  # class 1 of the motif tasks
DISTRACTOR = 1.0 * _PATTERNS.choice([-1.0, 1.0], size=(6, NUM_FEATURES))  # class 0: same energy, other shape
EVENT_A = 2.0 * _PATTERNS.choice([-1.0, 1.0], size=(3, NUM_FEATURES))
EVENT_B = 2.0 * _PATTERNS.choice([-1.0, 1.0], size=(3, NUM_FEATURES))
SHIFT_SPLIT = 25  # shifted_motif: training patterns start in [0, 25 - 6], test patterns in [25, 50 - 6]
ORDER_MIN_GAP, ORDER_MARGIN = 20, 8


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    """One split of a sequence classification task: float32 x (N, time, features), int32 labels (N,)."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    split: str

    def __post_init__(self):
        if self.x.ndim != 3 or self.x.dtype != np.float32:
            raise InputError(f"{self.name} {self.split}: x must be float32 (N, time, features), "
                             f"got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (len(self.x),) or self.y.dtype != np.int32:
            raise InputError(f"{self.name} {self.split}: y must be int32 of shape ({len(self.x)},), "
                             f"got {self.y.dtype} {self.y.shape}")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= self.num_classes):
            raise InputError(f"{self.name} {self.split}: labels must lie in [0, {self.num_classes}), "
                             f"got [{self.y.min()}, {self.y.max()}]")
        if not np.isfinite(self.x).all():
            raise InputError(f"{self.name} {self.split}: x holds NaN or infinite values")

    def __len__(self) -> int:
        return len(self.y)

    def arrays(self) -> dict[str, np.ndarray]:
        """The dict of arrays jaxhw.training.fit takes."""
        return {"x": self.x, "y": self.y}


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % 2).astype(np.int32)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(n, SEQUENCE_LENGTH, NUM_FEATURES))


def _place(x: np.ndarray, pattern: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """Add ``pattern`` to the samples ``rows`` starting at time steps ``starts``."""
    steps = starts[:, None] + np.arange(len(pattern))[None, :]
    x[rows[:, None], steps] += pattern[None]


def motif_sequences(n: int, rng: np.random.Generator, first_start: int = 0,
                    last_start: int = SEQUENCE_LENGTH - len(MOTIF)) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: MOTIF, class 0: DISTRACTOR, starting anywhere in [first_start, last_start], on noise."""
    x, y = _noise(n, rng), _balanced_labels(n, rng)
    starts = rng.integers(first_start, last_start + 1, size=n)
    rows = np.arange(n)
    _place(x, MOTIF, starts[y == 1], rows[y == 1])
    _place(x, DISTRACTOR, starts[y == 0], rows[y == 0])
    return x, y


def order_sequences(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: EVENT_A comes >= ORDER_MIN_GAP steps before EVENT_B; class 0: B before A."""
    x, y = _noise(n, rng), _balanced_labels(n, rng)
    width = len(EVENT_A)
    lo, hi = ORDER_MARGIN, SEQUENCE_LENGTH - ORDER_MARGIN - width  # both events start in [lo, hi]
    first = rng.integers(lo, hi - ORDER_MIN_GAP + 1, size=n)
    second = first + ORDER_MIN_GAP + (rng.random(n) * (hi - first - ORDER_MIN_GAP + 1)).astype(int)
    rows = np.arange(n)
    a_start, b_start = np.where(y == 1, first, second), np.where(y == 1, second, first)
    _place(x, EVENT_A, a_start, rows)
    _place(x, EVENT_B, b_start, rows)
    return x, y


def trend_sequences(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: every feature rises by 1 to 2.5 (times a per-feature weight in [0.5, 1.5]) over the sequence;
    class 0: it falls; under per-feature offsets N(0, 2^2), sinusoids of amplitude <= 1.5 and noise."""
    y = _balanced_labels(n, rng)
    t = np.linspace(-0.5, 0.5, SEQUENCE_LENGTH)[None, :, None]
    rise = np.where(y == 1, 1.0, -1.0) * rng.uniform(1.0, 2.5, size=n)
    weights = rng.uniform(0.5, 1.5, size=(n, 1, NUM_FEATURES))
    offsets = rng.normal(0.0, 2.0, size=(n, 1, NUM_FEATURES))
    amplitude = rng.uniform(0.0, 1.5, size=(n, 1, NUM_FEATURES))
    period = rng.uniform(8.0, 25.0, size=(n, 1, NUM_FEATURES))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, NUM_FEATURES))
    steps = np.arange(SEQUENCE_LENGTH)[None, :, None]
    x = (rise[:, None, None] * weights * t + offsets + amplitude * np.sin(2 * np.pi * steps / period + phase)
         + _noise(n, rng))
    return x, y


Generator = Callable[[int, np.random.Generator, str], tuple[np.ndarray, np.ndarray]]
SYNTHETIC: dict[str, Generator] = {
    "motif": lambda n, rng, split: motif_sequences(n, rng),
    "shifted_motif": lambda n, rng, split: (
        motif_sequences(n, rng, 0, SHIFT_SPLIT - len(MOTIF)) if split == "train"
        else motif_sequences(n, rng, SHIFT_SPLIT, SEQUENCE_LENGTH - len(MOTIF))),
    "order": lambda n, rng, split: order_sequences(n, rng),
    "trend": lambda n, rng, split: trend_sequences(n, rng),
}
TASKS = (*SYNTHETIC, "vowels")
DESCRIPTIONS = {
    "motif": "a fixed 6-step pattern (class 1) or another of equal energy (class 0) anywhere in the sequence",
    "shifted_motif": "the motif task trained with patterns in steps 0-24 and tested with them in steps 25-49",
    "order": "two events >= 20 steps apart; the label says whether A came before B",
    "trend": "every feature drifts up (1) or down (0) under offsets, seasonal waves and noise",
    "vowels": "JapaneseVowels (real, UCI): 9 speakers from 12 LPC coefficients, 270 train / 370 test",
}


def load_task(name: str, num_train: int | None = None, num_test: int | None = None,
              seed: int = 0) -> tuple[SequenceDataset, SequenceDataset]:
    """The (train, test) splits of a task; synthetic sizes default to 2,000 / 1,000, ``vowels`` to its 270 / 370.

    For ``vowels`` smaller sizes take a seeded random subset of each split.
    """
    if name not in TASKS:
        raise InputError(f"unknown sequence task {name!r}: expected one of {', '.join(TASKS)}")
    for what, value in (("num_train", num_train), ("num_test", num_test)):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2):
            raise InputError(f"{what} must be an integer >= 2, got {value!r}")
    if name == "vowels":
        return load_vowels(num_train, num_test, seed)
    splits = []
    for index, (split, size) in enumerate((("train", num_train or 2000), ("test", num_test or 1000))):
        x, y = SYNTHETIC[name](size, np.random.default_rng([seed, index]), split)
        splits.append(SequenceDataset(x.astype(np.float32), y, 2, name, split))
    return splits[0], splits[1]


def _pad(values: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """Ragged utterances (concatenated frames) -> (N, length, features): the last ``length`` frames of each,
    zero-padded at the front, so a recurrent model's final state follows the last real frame."""
    out = np.zeros((len(lengths), length, values.shape[1]), np.float32)
    ends = np.cumsum(lengths)
    for i, (start, end) in enumerate(zip(ends - lengths, ends)):
        frames = values[max(start, end - length):end]
        out[i, length - len(frames):] = frames
    return out


def load_vowels(num_train: int | None = None, num_test: int | None = None, seed: int = 0,
                path: pathlib.Path = VOWELS_PATH) -> tuple[SequenceDataset, SequenceDataset]:
    """JapaneseVowels from the shipped ``.npz``: standardised per feature (training statistics), padded to 50."""
    if not path.exists():
        raise InputError(f"{path} is missing: rebuild it with python -m jaxhw.data.make_vowels")
    try:
        with np.load(path) as data:
            stored = {key: data[key] for key in data.files}
        train_frames = stored["train_values"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise InputError(f"{path} is unreadable ({type(e).__name__}: {e}); rebuild it with "
                         "python -m jaxhw.data.make_vowels") from None
    mean, std = train_frames.mean(axis=0), train_frames.std(axis=0)
    rng = np.random.default_rng(seed)
    splits = []
    for split, size in (("train", num_train), ("test", num_test)):
        values, lengths, labels = stored[f"{split}_values"], stored[f"{split}_lengths"], stored[f"{split}_labels"]
        x, y = _pad((values - mean) / std, lengths, SEQUENCE_LENGTH), labels.astype(np.int32)
        if size is not None:
            if size > len(y):
                raise InputError(f"vowels has {len(y)} {split} utterances, {size} were asked for")
            keep = np.sort(rng.permutation(len(y))[:size])
            x, y = x[keep], y[keep]
        splits.append(SequenceDataset(x, y, VOWELS_SPEAKERS, "vowels", split))
    return splits[0], splits[1]
