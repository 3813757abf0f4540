"""Homework problem 3 computed: the PyTorch training-loop concepts measured in jaxhw and, with torch
installed, against PyTorch itself.

Each check returns a dict of numbers. Its ``reference`` says what the jaxhw side was compared with:
"torch" when PyTorch is installed, otherwise a hand formula in numpy where one exists (BatchNorm's
running statistics, Adam) or nothing (the check then reports the jaxhw side alone and a ``note``).
torch is optional: where it is missing, ``load_torch()`` is None and each check reports the jaxhw side alone;
weights move through ``jaxhw.torch_bridge``.

- ``loader_check``: len(DataLoader) and batch sizes, jaxhw against torch.utils.data.DataLoader (3C).
- ``batchnorm_check``: running statistics after N train-mode steps, and eval mode (3F).
- ``dropout_check``: the kept fraction and the 1/(1-p) scaling in train mode, identity in eval (3F).
- ``adam_check``: 100 steps of optax.adam against torch.optim.Adam on the same gradients (3B).
- ``zero_grad_check``: a loop without zero_grad, optax against torch, and the gradients it really applies (3E).
- ``step_without_backward_check``: optimizer.step() without backward(), with .grad None, zeros or stale (3D).
- ``forgotten_zero_grad_training``: the homework MLP trained with zero_grad forgotten (3E).
- ``forgotten_eval``: a trained model scored in train mode, at several evaluation batch sizes (3G).
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxhw.data.images import ImageDataset
from jaxhw.data.loader import DataLoader
from jaxhw.intervals import ACCURACY_RANGE, mean_interval, paired_difference, summarize_members, verdict
from jaxhw.models.layers import TorchBatchNorm
from jaxhw.models.mlp import MLP
from jaxhw.torch_bridge import convert, sequential
from jaxhw.training import create_train_state, fit, make_eval_fn, train_step
from jaxhw.training.fit import program_name, to_device
from jaxhw.training.pitfalls import forgotten_zero_grad
from jaxhw.training.state import create_train_states

NO_TORCH = "PyTorch is not installed: the jaxhw side alone (pip install torch to compare)"


def load_torch():
    """The torch module, or None when it is not installed. Imported here, on the first comparison, so importing
    this module (as jaxhw.homework does) does not load torch (seconds and some 200 MB)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _tree_max_abs(a, b) -> float:
    return max(jax.tree_util.tree_leaves(jax.tree_util.tree_map(_max_abs, a, b)))


def loader_check(num_examples: int = 4000, batch_size: int = 64, seed: int = 0) -> dict:
    """len(DataLoader), batch sizes and one epoch's coverage: jaxhw's DataLoader against torch's (3C)."""
    labels = np.arange(num_examples)
    loader = DataLoader({"y": labels}, batch_size=batch_size, shuffle=True, seed=seed)
    sizes = [len(batch["y"]) for batch in loader]
    seen = np.sort(np.concatenate([batch["y"] for batch in loader]))  # the second epoch, reshuffled
    result = {"num_examples": num_examples, "batch_size": batch_size, "batches": len(loader),
              "last_batch": sizes[-1], "every_example_once": bool(np.array_equal(seen, labels)),
              "reference": "hand count"}
    result["hand_batches"] = math.ceil(num_examples / batch_size)
    torch = load_torch()
    if torch is None:
        result["note"] = NO_TORCH
        return result
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import TensorDataset

    theirs = TorchLoader(TensorDataset(torch.arange(num_examples)), batch_size=batch_size, shuffle=True,
                         generator=torch.Generator().manual_seed(seed))
    result.update(reference="torch", torch_batches=len(theirs),
                  torch_last_batch=len(list(theirs)[-1][0]))
    return result


def batchnorm_check(steps: int = 5, shape: tuple = (8, 6, 6, 3), seed: int = 0) -> dict:
    """jaxhw's TorchBatchNorm after ``steps`` train-mode steps against nn.BatchNorm2d (or PyTorch's update
    rule by hand), Flax's nn.BatchNorm beside it, and what eval mode does with a new batch."""
    rng = np.random.default_rng(seed)
    channels = shape[-1]
    batches = [rng.normal(2.0, 3.0, size=shape).astype(np.float32) for _ in range(steps)]
    fresh = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, channels).astype(np.float32)
    layer, flax_layer = TorchBatchNorm(), nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    ours = {"params": {"scale": scale, "bias": bias},
            "batch_stats": layer.init(jax.random.key(0), batches[0])["batch_stats"]}
    theirs_flax = flax_layer.init(jax.random.key(0), batches[0], use_running_average=True)
    train_outputs = []
    for x in batches:
        out, updates = layer.apply(ours, x, train=True, mutable=["batch_stats"])
        ours = {"params": ours["params"], **updates}
        train_outputs.append(np.asarray(out))
        _, flax_updates = flax_layer.apply(theirs_flax, x, use_running_average=False, mutable=["batch_stats"])
        theirs_flax = {"params": theirs_flax["params"], **flax_updates}
    eval_output = np.asarray(layer.apply(ours, fresh, train=False))
    train_output_fresh, after_train = layer.apply(ours, fresh, train=True, mutable=["batch_stats"])
    # PyTorch's rule by hand, in float64: running = 0.9 running + 0.1 batch, the variance unbiased.
    hand_mean, hand_var = np.zeros(channels), np.ones(channels)
    for x in batches:
        hand_mean = 0.9 * hand_mean + 0.1 * x.mean(axis=(0, 1, 2), dtype=np.float64)
        hand_var = 0.9 * hand_var + 0.1 * x.var(axis=(0, 1, 2), ddof=1, dtype=np.float64)
    stats = jax.tree_util.tree_map(np.asarray, ours["batch_stats"])
    result = {
        "steps": steps, "shape_nhwc": list(shape), "momentum": 0.1,
        "running_mean": stats["mean"].tolist(), "running_var": stats["var"].tolist(),
        "hand_running_mean": hand_mean.tolist(), "hand_running_var": hand_var.tolist(),
        "hand_difference": max(_max_abs(stats["mean"], hand_mean), _max_abs(stats["var"], hand_var)),
        "flax_batchnorm_running_var": np.asarray(theirs_flax["batch_stats"]["var"]).tolist(),
        "flax_minus_torch_running_var": _max_abs(theirs_flax["batch_stats"]["var"], hand_var),
        "eval_leaves_statistics_unchanged": True,  # eval mode has no mutable collection to change
        "train_minus_eval_output_on_a_new_batch": _max_abs(train_output_fresh, eval_output),
        "train_mode_changes_statistics": _max_abs(after_train["batch_stats"]["mean"], stats["mean"]) > 0,
        "reference": "hand",
    }
    torch = load_torch()
    if torch is None:
        result["note"] = NO_TORCH + "; the reference is PyTorch's update rule by hand"
        return result
    reference = torch.nn.BatchNorm2d(channels)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(scale))
        reference.bias.copy_(torch.tensor(bias))
    reference.train()
    torch_train = [sequential.images_from_torch(reference(sequential.images_to_torch(x))) for x in batches]
    reference.eval()
    with torch.no_grad():
        torch_eval = sequential.images_from_torch(reference(sequential.images_to_torch(fresh)))
    result.update(reference="torch", torch_running_mean=reference.running_mean.tolist(),
                  torch_running_var=reference.running_var.tolist(),
                  torch_difference={
                      "running_mean": _max_abs(stats["mean"], reference.running_mean.numpy()),
                      "running_var": _max_abs(stats["var"], reference.running_var.numpy()),
                      "train_outputs": max(_max_abs(a, b) for a, b in zip(train_outputs, torch_train)),
                      "eval_output": _max_abs(eval_output, torch_eval)})
    return result


def dropout_check(p: float = 0.25, n: int = 100_000, seed: int = 0) -> dict:
    """nn.Dropout(p): the kept fraction and the scaling of kept values in train mode, identity in eval."""
    x = np.random.default_rng(seed).uniform(1.0, 2.0, size=(n,)).astype(np.float32)
    layer = nn.Dropout(rate=p)
    train = np.asarray(layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(seed)}))
    evaluated = np.asarray(layer.apply({}, x, deterministic=True))

    def measure(y):
        kept = y != 0
        ratio = y[kept] / x[kept]
        return {"kept_fraction": float(kept.mean()), "scale_min": float(ratio.min()), "scale_max": float(ratio.max())}

    result = {"p": p, "n": n, "expected_kept_fraction": 1 - p, "expected_scale": 1 / (1 - p),
              "kept_fraction_std": math.sqrt(p * (1 - p) / n), "train": measure(train),
              "eval_max_change": _max_abs(evaluated, x), "mean_preserved_train": float(train.mean() / x.mean()),
              "reference": "hand"}
    torch = load_torch()
    if torch is None:
        result["note"] = NO_TORCH
        return result
    reference = torch.nn.Dropout(p)
    torch.manual_seed(seed)
    reference.train()
    result["torch_train"] = measure(reference(torch.tensor(x)).numpy())
    reference.eval()
    result.update(reference="torch", torch_eval_max_change=_max_abs(reference(torch.tensor(x)).numpy(), x))
    return result


def _hand_adam(start: np.ndarray, gradients: np.ndarray, lr: float, b1: float = 0.9, b2: float = 0.999,
               eps: float = 1e-8) -> np.ndarray:
    """Adam (Kingma and Ba, with bias correction, eps outside the root) in float64."""
    params, m, v = start.astype(np.float64), np.zeros_like(start, np.float64), np.zeros_like(start, np.float64)
    for t, g in enumerate(gradients.astype(np.float64), start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        params = params - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return params


def adam_check(steps: int = 100, lr: float = 1e-3, seed: int = 0) -> dict:
    """``steps`` steps of optax.adam against torch.optim.Adam (and Adam by hand) on the same gradients,
    whose scale sweeps 1e-3..10 so both the early and the late bias correction matter."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    gradients = (rng.normal(size=(steps, 5, 3)) * np.logspace(-3, 1, steps)[:, None, None]).astype(np.float32)
    tx = optax.adam(lr)
    params, opt_state = jnp.asarray(start), tx.init(jnp.asarray(start))
    update = jax.jit(lambda g, s, p: tx.update(g, s, p))
    for g in gradients:
        updates, opt_state = update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
    params = np.asarray(params)
    hand = _hand_adam(start, gradients, lr)
    result = {"steps": steps, "lr": lr, "moved": _max_abs(params, start), "hand_difference": _max_abs(params, hand),
              "reference": "hand"}
    torch = load_torch()
    if torch is None:
        result["note"] = NO_TORCH + "; the reference is Adam by hand in float64"
        return result
    weight = torch.nn.Parameter(torch.tensor(start))
    optimizer = torch.optim.Adam([weight], lr=lr)
    for g in gradients:
        weight.grad = torch.tensor(g)
        optimizer.step()
    result.update(reference="torch", torch_difference=_max_abs(params, weight.detach().numpy()))
    return result


@functools.lru_cache(maxsize=4)
def _initial_mlp(image_shape: tuple, seed: int):
    """The homework MLP's initial TrainState for this seed (built once: compiling init costs seconds)."""
    return create_train_state(MLP(), optax.identity(), np.zeros((1, *image_shape), np.uint8), seed)


def _homework_mlp_pair(tx: optax.GradientTransformation, sample: np.ndarray, seed: int):
    """The homework MLP's TrainState with optimizer ``tx`` and, with torch, an nn.Sequential twin holding the
    same weights."""
    model = MLP()
    initial = _initial_mlp(tuple(sample.shape[1:]), seed)
    state = initial.replace(tx=tx, opt_state=tx.init(initial.params))
    if load_torch() is None:
        return model, state, None
    return model, state, convert.load_into_torch(state.variables, sequential.homework_mlp(), model, sample)


def _torch_loss(net, batch: dict):
    torch = load_torch()
    return torch.nn.functional.cross_entropy(net(sequential.images_to_torch(batch["x"])),
                                             torch.tensor(batch["y"]).long())


def _batches(data: ImageDataset, count: int, size: int = 32, seed: int = 0) -> list[dict]:
    """``count`` batches of ``size`` examples drawn at random (stored splits may be sorted by class)."""
    order = np.random.default_rng(seed).permutation(len(data))[:count * size].reshape(count, size)
    return [{"x": data.images[index], "y": data.labels[index]} for index in order]


def _from_torch(net, model, sample):
    return convert.variables_from_torch(net, model, sample)["params"]


_train_step = jax.jit(train_step)
_apply_gradients = jax.jit(lambda state, grads: state.apply_gradients(grads))


def _norm(tree) -> float:
    """The global L2 norm of a pytree of host arrays."""
    return float(np.sqrt(sum(np.sum(np.square(leaf, dtype=np.float64)) for leaf in jax.tree_util.tree_leaves(tree))))


def zero_grad_check(data: ImageDataset, steps: int = 4, lr: float = 0.05, seed: int = 0) -> dict:
    """SGD on the homework MLP without zero_grad: optax (``forgotten_zero_grad``) against the torch loop, and
    the size of the gradient each step really applies (the sum of all so far) against a correct loop."""
    sample = data.images[:1]
    batches = _batches(data, steps, seed=seed)
    model, forgot, net = _homework_mlp_pair(optax.chain(forgotten_zero_grad(), optax.sgd(lr)), sample, seed)
    _, correct, _ = _homework_mlp_pair(optax.sgd(lr), sample, seed)
    applied = {"forgotten": [], "correct": []}
    for batch in batches:
        for name, state in (("forgotten", forgot), ("correct", correct)):
            new, _ = _train_step(state, batch)
            applied[name].append(_norm(jax.tree_util.tree_map(lambda a, b: (np.asarray(a) - np.asarray(b)) / lr,
                                                              state.params, new.params)))
            if name == "forgotten":
                forgot = new
            else:
                correct = new
    result = {"steps": steps, "lr": lr, "batch_size": len(batches[0]["y"]), "optimizer": "SGD",
              "applied_gradient_norm": applied,
              "parameters_apart_from_correct_loop": _tree_max_abs(forgot.params, correct.params),
              "reference": "none"}
    if net is None:
        result["note"] = NO_TORCH
        return result
    optimizer = load_torch().optim.SGD(net.parameters(), lr=lr)
    for batch in batches:
        _torch_loss(net, batch).backward()  # no zero_grad: .grad keeps growing
        optimizer.step()
    result.update(reference="torch", torch_difference=_tree_max_abs(forgot.params, _from_torch(net, model, sample)))
    return result


def step_without_backward_check(data: ImageDataset, warm_steps: int = 3, steps: int = 3, lr: float = 1e-2,
                                seed: int = 0) -> dict:
    """optimizer.step() without loss.backward(), with Adam, after ``warm_steps`` correct steps.

    What moves depends on what .grad holds: None (zero_grad's default since PyTorch 2.0) -> step skips the
    parameter; zeros (zero_grad(set_to_none=False)) -> Adam still moves it by its momentum; the last
    gradient (zero_grad forgotten too) -> the stale gradient is applied again. The optax counterpart of
    "no gradient" is not calling apply_gradients at all; a step with zero gradients equals the second case.
    """
    sample = data.images[:1]
    warm, later = _batches(data, warm_steps, seed=seed), _batches(data, steps, seed=seed + 1)
    model, state, net = _homework_mlp_pair(optax.adam(lr), sample, seed)
    fresh = state
    for batch in warm:
        state, _ = _train_step(state, batch)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
    moved = state
    for _ in range(steps):
        moved = _apply_gradients(moved, zeros)
    unmoved_fresh = fresh
    for _ in range(steps):
        unmoved_fresh = _apply_gradients(unmoved_fresh, zeros)
    result = {"warm_steps": warm_steps, "steps": steps, "lr": lr, "optimizer": "Adam",
              "optax_zero_gradients_after_warm_steps_moved": _tree_max_abs(moved.params, state.params),
              "optax_zero_gradients_fresh_optimizer_moved": _tree_max_abs(unmoved_fresh.params, fresh.params),
              "reference": "none"}
    if net is None:
        result["note"] = NO_TORCH
        return result
    def warmed():
        twin = copy.deepcopy(net)
        optimizer = load_torch().optim.Adam(twin.parameters(), lr=lr)
        for batch in warm:
            optimizer.zero_grad()
            _torch_loss(twin, batch).backward()
            optimizer.step()
        return twin, optimizer

    moved_by = {}
    for case in ("grad_none", "grad_zeros", "grad_stale"):
        twin, optimizer = warmed()
        before = _from_torch(twin, model, sample)
        for batch in later:
            if case == "grad_none":
                optimizer.zero_grad()  # set_to_none=True
            elif case == "grad_zeros":
                optimizer.zero_grad(set_to_none=False)
            _torch_loss(twin, batch)  # the loss is computed, backward() is forgotten
            optimizer.step()
        after = _from_torch(twin, model, sample)
        moved_by[case] = _tree_max_abs(after, before)
        if case == "grad_zeros":
            result["torch_zeros_minus_optax_zero_gradients"] = _tree_max_abs(after, moved.params)
    result.update(reference="torch", torch_moved=moved_by,
                  torch_warm_minus_optax_warm=_tree_max_abs(_from_torch(warmed()[0], model, sample), state.params))
    return result


def forgotten_zero_grad_training(train: ImageDataset, test: ImageDataset, epochs: int, lr: float = 1e-3,
                                 batch_size: int = 64, seeds: Sequence[int] = (0,), progress: bool | None = None,
                                 correct_accuracies: Sequence[float] | None = None) -> dict:
    """The homework MLP trained with Adam fed the running sum of all gradients (zero_grad forgotten), one member
    per seed in one program.

    Same model, seeds, data and batches as ``train_classifier`` of the MLP with these seeds, so its history is
    the correct loop to compare with, seed by seed: given its final test accuracies (``correct_accuracies``, in
    seed order), the cost of the mistake is their paired difference. Also the untrained models' test accuracy:
    where a loop without backward() stays.
    """
    seeds = tuple(seeds)
    states = create_train_states(MLP(num_classes=train.num_classes),
                                 optax.chain(forgotten_zero_grad(), optax.adam(lr)), train.images[:1], seeds)
    untrained = make_eval_fn(members=True)(states, to_device(test.arrays()))
    _, history = fit(states, train.arrays(), test.arrays(), epochs=epochs, batch_size=batch_size, progress=progress,
                     members=len(seeds), member_names=[f"seed {seed}" for seed in seeds],
                     description=program_name(f"mlp without zero_grad on {train.name}", len(seeds)))
    found = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seeds": list(seeds), "optimizer": "Adam",
             "untrained_test_accuracy": mean_interval(np.asarray(untrained["accuracy"]) / len(test),
                                                     bounds=ACCURACY_RANGE),
             "untrained_test_loss": mean_interval(np.asarray(untrained["loss"]) / len(test)),
             "history": [summarize_members(record, seeds) for record in history],
             "test_accuracy": mean_interval(history[-1]["test_accuracy"], bounds=ACCURACY_RANGE),
             "test_accuracy_per_seed": history[-1]["test_accuracy"]}
    if correct_accuracies is not None:
        cost = paired_difference(correct_accuracies, history[-1]["test_accuracy"], bounds=ACCURACY_RANGE)
        found["cost"] = {**cost, "verdict": verdict(cost)}
    return found


def forgotten_eval(state, test: ImageDataset, batch_sizes: Sequence[int] = (100, 10),
                   seeds: Sequence[int] = (0,)) -> dict:
    """Trained classifiers (a stack of one member per seed) scored in eval mode and in train mode (model.eval()
    forgotten: dropout on, BatchNorm with each test batch's own statistics) at each evaluation batch size; the
    cost of the mistake is the paired difference eval - train mode over the seeds.

    Eval mode needs no such table: it uses the running statistics, so its result does not depend on the batch.
    """
    seeds = tuple(seeds)
    members = len(seeds) > 1
    data = to_device(test.arrays())
    evaluated = np.atleast_1d(np.asarray(make_eval_fn(members=members)(state, data)["accuracy"]) / len(test))
    rows = []
    for size in batch_sizes:
        totals = make_eval_fn(batch_size=int(size), train=True, members=members)(state, data)
        train_mode = np.atleast_1d(np.asarray(totals["accuracy"]) / len(test))
        cost = paired_difference(evaluated, train_mode, bounds=ACCURACY_RANGE)
        rows.append({"batch_size": int(size), "train_mode_accuracy_per_seed": train_mode.tolist(),
                     "train_mode_accuracy": mean_interval(train_mode, bounds=ACCURACY_RANGE),
                     "cost": {**cost, "verdict": verdict(cost)}})
    found = {"test_examples": len(test), "seeds": list(seeds), "eval_accuracy_per_seed": evaluated.tolist(),
             "eval_accuracy": mean_interval(evaluated, bounds=ACCURACY_RANGE), "rows": rows}
    if len(rows) > 1:  # does the batch size change the cost? paired over the same models
        small, large = min(rows, key=lambda r: r["batch_size"]), max(rows, key=lambda r: r["batch_size"])
        effect = paired_difference(large["train_mode_accuracy_per_seed"], small["train_mode_accuracy_per_seed"],
                                   bounds=ACCURACY_RANGE)
        found["larger_minus_smaller_batch"] = {"larger": large["batch_size"], "smaller": small["batch_size"], **effect,
                                               "verdict": verdict(effect)}
    return found


def concept_checks(data: ImageDataset, seed: int = 0) -> dict[str, Any]:
    """Every check that needs no training run, with the torch version when torch is installed."""
    torch = load_torch()
    return {
        "torch_version": None if torch is None else torch.__version__,
        "loader": loader_check(len(data), 64, seed),
        "batchnorm": batchnorm_check(seed=seed),
        "dropout": dropout_check(seed=seed),
        "adam": adam_check(seed=seed),
        "zero_grad": zero_grad_check(data, seed=seed),
        "step_without_backward": step_without_backward_check(data, seed=seed),
    }
