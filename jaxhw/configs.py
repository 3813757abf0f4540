"""Every default of every command, in one place: one frozen config per command, validated when it is built.

``python -m jaxhw.classify`` builds a ``ClassifyConfig`` from its arguments, ``python -m jaxhw.autoencode`` an
``AutoencodeConfig``, and so on; a Python caller builds the same object. The report's two budgets are named
instances: ``HOMEWORK_FULL`` and ``HOMEWORK_QUICK``. The library holds no default of its own for what a
config names. A config that cannot run raises InputError naming the field, what was expected and what came.

This module is light on purpose (no jax, no flax), so the command-line tools can show these defaults in
``--help`` and reject bad arguments before loading the numerical libraries. The model names below are the
registries of jaxhw.models and jaxhw.experiments, which build their models from them.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from jaxhw.common import (
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
    plain,
)
from jaxhw.data.images import DATASETS, SOURCES
from jaxhw.data.sequences import TASKS
from jaxhw.errors import InputError

CLASSIFIERS = ("mlp", "cnn")
AUTOENCODERS = ("dense", "conv")
WEIGHT_INITS = ("flax", "torch")
SEQUENCE_MODELS = ("mlp", "cnn", "cnn_local", "lstm", "gru", "transformer")
# jax.random.key keeps 32 bits of a seed when 64-bit mode is off: larger seeds would repeat smaller ones.
MAX_SEED = 2**32 - 1
# The fields of a run's config that may change between the legs of one run (a --resume), because they do not
# decide its numbers: how long, where to write, how often to checkpoint, on how many devices.
RESUMABLE_FIELDS = ("epochs", "devices", "checkpoint_dir", "resume", "overwrite", "keep_checkpoints")
# Where the data was asked for does not decide the numbers either: what was loaded does, and the run
# describes that itself (jaxhw.experiments.supervised).
REQUEST_FIELDS = ("source", "data_dir")
# Paths each machine of a group names its own way; every other field must be the same in every process.
MACHINE_FIELDS = REQUEST_FIELDS + ("checkpoint_dir",)

HOMEWORK_PROBABILITIES = (0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1)  # 1A, as printed
HOMEWORK_LABEL = (0.0, 0.1, 0.0, 0.0, 0.0)  # 1A's "one-hot" label, as printed
HOMEWORK_TRUE_CLASS = 3  # "an image of the digit '3'", y = torch.tensor([3])
HOMEWORK_P_TRUE = 0.9  # 1B: y_hat_3 = 0.9


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``; else InputError listing them."""
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}: expected one of {', '.join(map(str, choices))}")
    return value


def check_seed(name: str, seed: Any, count: int = 1) -> int:
    """An integer seed such that seed, ..., seed + count - 1 are distinct PRNG keys."""
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise InputError(f"{name} must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED - (count - 1):
        raise InputError(f"{name} must lie in [0, {MAX_SEED - (count - 1)}] so that {count} seed(s) from it are "
                         f"distinct 32-bit PRNG keys, got {seed}")
    return int(seed)


def check_names(name: str, values: Any, choices: tuple) -> tuple[str, ...]:
    """A non-empty tuple of distinct names from ``choices``."""
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [v for v in values if v not in choices]
    if not values or unknown or len(set(values)) != len(values):
        raise InputError(f"{name} must be a non-empty selection of distinct names from {', '.join(choices)}, "
                         f"got {', '.join(map(str, values)) or 'none'}")
    return values


class Config:
    """What every config does: ``record()`` for metrics.json and ``replace(**changes)`` (validated again)."""

    def _check_data(self) -> None:
        """The dataset and source names, and data_dir as a Path (for configs that load images)."""
        check_choice("dataset", self.dataset, tuple(DATASETS))
        check_choice("source", self.source, SOURCES)
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", pathlib.Path(self.data_dir))

    def record(self) -> dict:
        """The config as JSON-ready values (paths as text)."""
        return plain(dataclasses.asdict(self))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def seed_list(self) -> tuple[int, ...]:
        """seed, seed + 1, ..., one per member (``seeds`` of them; configs without ``seeds`` train one)."""
        return tuple(range(self.seed, self.seed + getattr(self, "seeds", 1)))


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(Config):
    """What classify and autoencode share: the data, the budget, the seed, and where the run is kept."""

    dataset: str = "mnist"
    source: str = "auto"
    data_dir: pathlib.Path | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    seeds: int = 1  # members trained as one program, seeds seed .. seed + seeds - 1
    devices: int | None = None  # devices that share the work; None: every device JAX sees
    checkpoint_dir: pathlib.Path | None = None
    resume: bool = False
    overwrite: bool = False  # a fresh run replaces the checkpoints already in checkpoint_dir
    keep_checkpoints: int = 3

    def __post_init__(self):
        self._check_data()
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", pathlib.Path(self.checkpoint_dir))
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_positive_int("seeds", self.seeds)
        check_seed("seed", self.seed, self.seeds)
        if self.devices is not None:
            check_positive_int("devices", self.devices)
        check_positive_int("keep_checkpoints", self.keep_checkpoints)
        if self.resume and self.checkpoint_dir is None:
            raise InputError("--resume needs --checkpoint-dir")
        if self.resume and self.overwrite:
            raise InputError("--resume continues the checkpoints that --overwrite would delete: choose one")

    def run_description(self) -> dict:
        """The fields that decide a run's numbers, which a checkpoint must share to be resumed from."""
        return {k: v for k, v in self.record().items() if k not in RESUMABLE_FIELDS + REQUEST_FIELDS}

    def group_description(self) -> dict:
        """The fields every process of a group must share (jaxhw.training.distributed.agree): all but paths."""
        return {k: v for k, v in self.record().items() if k not in MACHINE_FIELDS}


@dataclasses.dataclass(frozen=True)
class ClassifyConfig(SupervisedConfig):
    """``python -m jaxhw.classify``: the homework MLP (or the CNN), cross-entropy on logits, Adam."""

    model: str = "mlp"

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", self.model, CLASSIFIERS)


@dataclasses.dataclass(frozen=True)
class AutoencodeConfig(SupervisedConfig):
    """``python -m jaxhw.autoencode``: the homework's dense autoencoder (or a conv one), MSE, Adam."""

    model: str = "dense"
    latent: int = 2
    noise: float = 0.0  # denoising: std of the Gaussian noise added to training inputs (never to targets)
    weight_init: str = "flax"

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", self.model, AUTOENCODERS)
        check_positive_int("latent", self.latent)
        object.__setattr__(self, "noise", check_non_negative_float("noise", self.noise))
        check_choice("weight init", self.weight_init, WEIGHT_INITS)


@dataclasses.dataclass(frozen=True)
class ProcessGroup(Config):
    """Several processes as one training job (``jaxhw.training.distributed``): every process gives the same
    ``coordinator_address`` (process 0's HOST:PORT) and ``num_processes`` and its own ``process_id``, or, on a
    cluster JAX detects by itself (SLURM, a TPU pod, Open MPI), ``detect`` alone. A process that cannot join
    within ``join_timeout`` seconds, or a peer silent for ``heartbeat_timeout`` seconds, ends the run (JAX's
    defaults: 300 and 100)."""

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    detect: bool = False
    join_timeout: int = 120
    heartbeat_timeout: int = 10

    def __post_init__(self):
        given = [name for name in ("coordinator_address", "num_processes", "process_id")
                 if getattr(self, name) is not None]
        if self.detect and given:
            raise InputError(f"--distributed finds the processes by itself: drop --{given[0].replace('_', '-')}, "
                             "or give --coordinator-address, --num-processes and --process-id without --distributed")
        if given and len(given) < 3:
            missing = sorted({"coordinator_address", "num_processes", "process_id"} - set(given))
            raise InputError("several processes need --coordinator-address, --num-processes and --process-id "
                             f"together: --{missing[0].replace('_', '-')} is missing")
        if given:
            host, _, port = self.coordinator_address.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise InputError(f"--coordinator-address must be HOST:PORT with a port from 1 to 65535, got "
                                 f"{self.coordinator_address!r}")
            check_positive_int("num_processes", self.num_processes)
            if isinstance(self.process_id, bool) or not 0 <= self.process_id < self.num_processes:
                raise InputError(f"--process-id must lie in [0, {self.num_processes}) for --num-processes "
                                 f"{self.num_processes}, got {self.process_id}")
        check_positive_int("join_timeout", self.join_timeout)
        check_positive_int("heartbeat_timeout", self.heartbeat_timeout)

    @property
    def active(self) -> bool:
        """Whether this process joins a group at all."""
        return self.detect or self.coordinator_address is not None


@dataclasses.dataclass(frozen=True)
class GradientsConfig(Config):
    """``python -m jaxhw.gradients``: problem 1's vector and label (1A), the gradient case (1B), and the MLP
    trained with and without an extra softmax (1C)."""

    vector: tuple[float, ...] = HOMEWORK_PROBABILITIES
    label: int | tuple[float, ...] = HOMEWORK_LABEL
    label_as_class: int | None = None  # read an invalid label as this class
    renormalize: bool = False  # also divide the vector by its sum
    true_class: int = HOMEWORK_TRUE_CLASS
    p_true: float = HOMEWORK_P_TRUE
    epochs: int = 2
    train_examples: int | None = None  # of the 4,000 embedded digits; None: all
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    seeds: int = 5  # the MLP with and without the extra softmax, one member per seed for each

    def __post_init__(self):
        object.__setattr__(self, "vector", tuple(float(v) for v in self.vector))
        if not isinstance(self.label, (int, str)) and hasattr(self.label, "__iter__"):
            object.__setattr__(self, "label", tuple(float(v) for v in self.label))
        if not 0.0 < self.p_true < 1.0:
            raise InputError(f"p_true must lie strictly between 0 and 1 (the logits are ln p), got {self.p_true}")
        check_positive_int("epochs", self.epochs)
        if self.train_examples is not None:
            check_positive_int("train_examples", self.train_examples)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_positive_int("seeds", self.seeds)
        check_seed("seed", self.seed, self.seeds)


@dataclasses.dataclass(frozen=True)
class TimeseriesConfig(Config):
    """``python -m jaxhw.timeseries``: every sequence model on every task, seeds seed .. seed + seeds - 1,
    one budget for all (Adam, cross-entropy on logits)."""

    tasks: tuple[str, ...] = TASKS
    models: tuple[str, ...] = SEQUENCE_MODELS
    seeds: int = 5
    seed: int = 0
    epochs: int = 15
    lr: float = 2e-3
    batch_size: int = 25
    num_train: int = 1000  # training samples per synthetic task (vowels keeps its own split)
    num_test: int = 1000

    def __post_init__(self):
        object.__setattr__(self, "tasks", check_names("tasks", self.tasks, TASKS))
        object.__setattr__(self, "models", check_names("models", self.models, SEQUENCE_MODELS))
        check_positive_int("seeds", self.seeds)
        check_seed("seed", self.seed, self.seeds)
        for name in ("epochs", "batch_size", "num_train", "num_test"):
            check_positive_int(name, getattr(self, name))
        check_positive_float("lr", self.lr)


TIMESERIES_QUICK = TimeseriesConfig(tasks=("order", "shifted_motif"), seeds=2, epochs=2, num_train=200, num_test=200)


@dataclasses.dataclass(frozen=True)
class HomeworkConfig(Config):
    """``python -m jaxhw``: the data, the seed, and how much each problem trains (``budget`` names it)."""

    budget: str = "full"
    dataset: str = "mnist"
    source: str = "auto"
    data_dir: pathlib.Path | None = None
    seed: int = 0
    seeds: int = 5  # problems 2 and 4: one member per seed, seed .. seed + seeds - 1
    gradients: GradientsConfig = GradientsConfig(label_as_class=HOMEWORK_TRUE_CLASS, renormalize=True)
    autoencoder_epochs: int = 10
    classifier_epochs: int = 10  # problem 4's MLP and CNN, and 3E's loop without zero_grad
    eval_batch_sizes: tuple[int, ...] = (100, 10)  # 3G: the CNN scored in train mode at these test batch sizes
    timeseries: TimeseriesConfig = TimeseriesConfig()
    mistakes_shown: int = 12

    def __post_init__(self):
        self._check_data()
        check_positive_int("seeds", self.seeds)
        check_seed("seed", self.seed, max(self.seeds, self.timeseries.seeds, self.gradients.seeds))
        for name in ("autoencoder_epochs", "classifier_epochs", "mistakes_shown"):
            check_positive_int(name, getattr(self, name))
        for size in self.eval_batch_sizes:
            check_positive_int("eval_batch_sizes", size)

    def with_run(self, dataset: str, source: str, data_dir: pathlib.Path | None, seed: int) -> "HomeworkConfig":
        """This budget on another data set and seed (what ``python -m jaxhw``'s arguments choose)."""
        return self.replace(dataset=dataset, source=source, data_dir=data_dir, seed=seed,
                            gradients=self.gradients.replace(seed=seed), timeseries=self.timeseries.replace(seed=seed))

    def classify(self, model: str) -> ClassifyConfig:
        """Problem 4's run of one classifier."""
        return ClassifyConfig(dataset=self.dataset, source=self.source, data_dir=self.data_dir, model=model,
                              epochs=self.classifier_epochs, seed=self.seed, seeds=self.seeds)

    def autoencode(self) -> AutoencodeConfig:
        """Problem 2's run of the homework's autoencoder."""
        return AutoencodeConfig(dataset=self.dataset, source=self.source, data_dir=self.data_dir,
                                epochs=self.autoencoder_epochs, seed=self.seed, seeds=self.seeds)


HOMEWORK_FULL = HomeworkConfig()
HOMEWORK_QUICK = HomeworkConfig(
    budget="quick", seeds=2, gradients=HOMEWORK_FULL.gradients.replace(epochs=1, train_examples=1000, seeds=2),
    autoencoder_epochs=1, classifier_epochs=1, eval_batch_sizes=(100,), timeseries=TIMESERIES_QUICK)
