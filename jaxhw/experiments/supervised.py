"""The body that classify and autoencode share: load the images, build the model and its state, train with
``fit`` (checkpoints, devices), and return what the run left behind.

A run reads top to bottom in ``train_supervised``; what differs between the two commands (the model, the
objective, the metrics) is passed in, and what they report is built by their own modules.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxhw.common import fingerprint
from jaxhw.configs import SupervisedConfig
from jaxhw.data.images import ImageDataset, load_train_test
from jaxhw.intervals import bounds_of, interval, summarize_members
from jaxhw.training import Objective, TrainState, create_train_state, distributed, fit, parameter_count
from jaxhw.training.checkpoint import open_checkpoints
from jaxhw.training.fit import program_name
from jaxhw.training.state import create_train_states, member


@dataclasses.dataclass(frozen=True)
class SupervisedRun:
    """What a training run leaves: its per-epoch history, the trained state and model, the data it used."""

    history: list[dict]
    state: TrainState
    model: nn.Module
    objective: Objective
    train: ImageDataset
    test: ImageDataset
    devices: int  # over all processes
    processes: int  # that trained together (jaxhw.training.distributed)
    started: float  # time.perf_counter() when the run began
    data: dict  # data_description(train, test)
    fingerprints: list[str]  # of the data each process loaded, in process order (all equal: agreed before training)
    seeds: tuple[int, ...]  # one member per seed; the state and the history are stacked when there are several

    @property
    def parameters(self) -> int:
        """Parameters of one member."""
        return parameter_count(self.first.params)

    @property
    def first(self) -> TrainState:
        return first_member(self.state, self.seeds)

    def summary(self, finals: dict[str, float | list[float]]) -> dict:
        """Final metrics as metrics.json states them: the mean over seeds, ``<metric>_ci95`` (its 95% interval,
        inside [0, 1] for an accuracy; None for one seed: jaxhw.intervals) and ``per_seed``."""
        per_seed = {name: list(np.atleast_1d(values)) for name, values in finals.items()}
        record = {}
        for name, values in per_seed.items():
            record[name] = float(np.mean(values))
            record[f"{name}_ci95"] = interval(values, bounds_of(name))
        record["per_seed"] = [{"seed": seed, **{name: float(values[k]) for name, values in per_seed.items()}}
                              for k, seed in enumerate(self.seeds)]
        return record

    def history_record(self) -> list[dict]:
        """The per-epoch history, with every metric of several members as its mean, interval and per-seed values."""
        if len(self.seeds) == 1:
            return self.history
        return [summarize_members(record, self.seeds) for record in self.history]

    def data_record(self) -> dict:
        """What metrics.json says about the data and the size of the run."""
        return {"dataset": self.train.name, "data_source": self.train.source, "train_examples": len(self.train),
                "test_examples": len(self.test), "data_fingerprint": self.data["fingerprint"],
                "data_fingerprint_of_each_process": self.fingerprints}


def data_description(train: ImageDataset, test: ImageDataset) -> dict:
    """What decides a run's numbers about its data: the data set, the example counts, a fingerprint of every
    image and label (not where they were read from: the same bytes from tfds or IDX files are the same data)."""
    return {"name": train.name, "train_examples": len(train), "test_examples": len(test),
            "fingerprint": fingerprint(train.images, train.labels, test.images, test.labels)}


def group_description(config: SupervisedConfig, data: dict) -> dict:
    """What every process of a group must share before it trains (``distributed.agree``): the process count, the
    config (all but paths) and the data."""
    return {"processes": jax.process_count(), "config": config.group_description(), "data": data}


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """What a command returns: its config, ``metrics`` (what metrics.json holds, the config included), and the
    trained state and model."""

    config: SupervisedConfig
    metrics: dict
    state: TrainState
    model: nn.Module

    @property
    def history(self) -> list[dict]:
        return self.metrics["epochs"]

    @property
    def first(self) -> TrainState:
        return first_member(self.state, self.config.seed_list)


def first_member(state: TrainState, seeds: tuple[int, ...]) -> TrainState:
    """The model of the first seed: the state itself for one seed, else member 0 of the stack."""
    return state if len(seeds) == 1 else member(state, 0)


def train_supervised(config: SupervisedConfig, task: str, build_model: Callable[[ImageDataset], nn.Module],
                     objective_for: Callable[[nn.Module], Objective], progress: bool | None = None,
                     model_name: str = "model") -> SupervisedRun:
    """Train ``build_model(train split)`` on ``objective_for(model)`` with Adam, as ``config`` says.

    ``task`` names the command in the checkpoint's run description, so a checkpoint of one command is never
    resumed by the other; ``model_name`` names the progress bar ("cnn on mnist x 5 seeds").
    """
    started = time.perf_counter()
    speaks = jax.process_index() == 0  # of several processes, only process 0 reports progress
    # The checkpoint dir first: a second run on it, or a fresh run into another run's checkpoints, stops here.
    checkpoints = open_checkpoints(config.checkpoint_dir, config.keep_checkpoints, resume=config.resume,
                                   overwrite=config.overwrite)
    try:
        train, test = load_train_test(config.dataset, config.source, config.data_dir, verbose=speaks)
        data = data_description(train, test)
        # Every process of a group runs the same config on the same data, or none trains (one line names the field).
        agreed = distributed.agree(group_description(config, data))
        model = build_model(train)
        objective = objective_for(model)
        sample = objective.prepare({name: values[:1] for name, values in train.arrays().items()}, None, False)[0]
        seeds = config.seed_list
        if len(seeds) == 1:
            state = create_train_state(model, optax.adam(config.lr), sample, config.seed)
        else:  # one member per seed, trained as one program
            state = create_train_states(model, optax.adam(config.lr), sample, seeds)
        if checkpoints is not None:
            checkpoints.description = {"task": task, **config.run_description(),
                                       "parameters": parameter_count(state.params), "data": data}
        devices = jax.device_count() if config.devices is None else config.devices
        state, history = fit(state, train.arrays(), test.arrays(), epochs=config.epochs,
                             batch_size=config.batch_size, objective=objective, progress=progress if speaks else False,
                             devices=devices, checkpoints=checkpoints, resume=config.resume,
                             members=None if len(seeds) == 1 else len(seeds),
                             member_names=[f"seed {seed}" for seed in seeds],
                             description=program_name(f"{model_name} on {train.name}", len(seeds)))
    finally:
        if checkpoints is not None:
            checkpoints.close()
    return SupervisedRun(history, state, model, objective, train, test, devices, jax.process_count(), started, data,
                         [description["data"]["fingerprint"] for description in agreed], seeds)
