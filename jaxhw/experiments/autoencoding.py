"""Train an MNIST autoencoder (homework problem 2): the function behind ``python -m jaxhw.autoencode``.

The homework's loop and where each of its lines (and blanks) lives in jaxhw. There is no second loop
here: ``fit`` runs the spine's jitted epochs with the ``reconstruction`` objective defined below.

    optimizer = optim.Adam(model.parameters(), lr=0.001)  ->  create_train_state(model, optax.adam(1e-3), ...)
    loss_fn = nn.MSELoss()                                ->  jaxhw.losses.mse (mean over every element)
    for epoch in range(10):                               ->  fit(..., epochs=10): one jitted lax.scan per epoch
        model.train()                             # (b)   ->  the explicit ``train=True`` that train_step passes to
                                                              the model and to ``prepare`` (eval passes False);
                                                              this model has no dropout/batchnorm, so the flag
                                                              only switches the denoising noise on
        for images, _ in train_loader:                    ->  epoch_indices: a fresh on-device permutation per
                                                              epoch, batches of 64 (labels unused)
            x = images.view(images.size(0), -1)   # (c)   ->  reconstruction(...).prepare: uint8 -> [0, 1] floats,
                                                              flattened to (N, 784) for the dense model
            x_hat = model(x)                              ->  state.apply_fn(variables, x, train=True)
            loss = loss_fn(x_hat, x)              # (d)   ->  mse(x_hat, x): the target is the input itself (the
                                                              clean image, also when the input is noisy)
            loss.backward()                       # (e)   ->  jax.value_and_grad(loss_of)(params) in train_step
            optimizer.step()                      # (f)   ->  state.apply_gradients(grads): tx.update (Adam's
                                                              moments live in state.opt_state) + optax.apply_updates
            optimizer.zero_grad()                 # (a)   ->  nothing. PyTorch's backward() *adds* into each
                                                              parameter's .grad buffer, so the old gradient must
                                                              be cleared before the next backward. jax.grad
                                                              returns a brand-new gradient pytree as a value each
                                                              call; nothing is stored between steps, so there is
                                                              nothing to accumulate and nothing to zero.

What it learns (part B): a compression. The encoder must squeeze 784 pixels through ``latent`` numbers
(2 by default) and the decoder must rebuild the image from them alone; MSE against the input itself
needs no labels and rewards every pixel being right, so the code keeps what varies most between images
(which digit, its slant and thickness).
"""
from __future__ import annotations

import pathlib
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxhw.data.images import ImageDataset, load_train_test
from jaxhw.errors import InputError
from jaxhw.experiments.classification import parameter_count, summarize_timing
from jaxhw.losses import mse
from jaxhw.models.autoencoder import build_autoencoder
from jaxhw.training import Objective, create_train_state, fit
from jaxhw.training.checkpoint import open_checkpoints
from jaxhw.training.steps import scale_images

MANIFOLD_POINTS = 15  # decoded codes per side of manifold.png
EXAMPLES_SHOWN = 10  # test images in reconstructions.png


def _per_example_squared_error(outputs: jax.Array, targets: jax.Array) -> dict:
    """Each example's mean squared error, summed over the batch: divided by the data size it is the MSE.

    Reported as ``loss`` (the name fit watches for divergence): here the loss *is* the MSE.
    """
    errors = mse(outputs, targets, reduction="none").reshape((outputs.shape[0], -1))
    return {"loss": errors.mean(axis=1).sum()}


def as_mse(record: dict) -> dict:
    """A history record with the reconstruction loss named for what it is: train_loss -> train_mse, etc."""
    return {key.replace("_loss", "_mse") if key.endswith("_loss") else key: value for key, value in record.items()}


def reconstruction(noise: float = 0.0, flatten: bool = True) -> Objective:
    """The autoencoder's Objective: inputs and targets are the same images, the loss is nn.MSELoss.

    ``prepare`` scales the uint8 images to [0, 1] and flattens them (homework blank (c)) unless the model
    takes NHWC images. With ``noise`` > 0 (a denoising autoencoder) the *inputs* get Gaussian noise of that
    standard deviation, clipped back to [0, 1], in train mode only; the targets stay the clean images.
    """
    check_noise(noise)

    def prepare(batch, key, train: bool):
        clean = scale_images(batch["x"])
        if flatten:
            clean = clean.reshape((clean.shape[0], -1))
        if train and noise > 0:
            noisy = clean + noise * jax.random.normal(key, clean.shape, clean.dtype)
            return jnp.clip(noisy, 0.0, 1.0), clean
        return clean, clean

    return Objective(loss=mse, metrics=_per_example_squared_error, prepare=prepare)


def check_noise(noise: float) -> None:
    """Raise InputError unless the denoising noise level is a finite number >= 0."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating)) or not 0 <= noise < float("inf"):
        raise InputError(f"noise must be a finite number >= 0 (the standard deviation added to [0, 1] pixels), "
                         f"got {noise!r}")


def objective_for(model: nn.Module, noise: float = 0.0) -> Objective:
    """The reconstruction objective shaped for this model (flat images for dense, NHWC for conv)."""
    return reconstruction(noise, flatten=getattr(model, "takes_flat_images", True))


def apply_in_batches(fn: Callable[[jax.Array], jax.Array], inputs: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Run a jitted function over a large array in fixed-size chunks and gather the results on the host."""
    return np.concatenate([np.asarray(fn(inputs[i:i + batch_size])) for i in range(0, len(inputs), batch_size)])


def model_functions(model: nn.Module, state, objective: Objective) -> dict[str, Callable]:
    """Jitted eval-mode functions of a trained autoencoder on uint8 images / codes: encode, reconstruct, decode."""
    variables = state.variables

    def inputs_of(images):
        return objective.prepare({"x": images}, None, False)[0]

    return {
        "encode": jax.jit(lambda images: model.apply(variables, inputs_of(images), method="encode")),
        "reconstruct": jax.jit(lambda images: model.apply(variables, inputs_of(images), train=False)),
        "decode": jax.jit(lambda codes: model.apply(variables, codes, method="decode")),
    }


def manifold_grid(codes: np.ndarray, decode: Callable, points: int = MANIFOLD_POINTS,
                  coverage: tuple[float, float] = (1.0, 99.0)) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Decode a points x points grid spanning the occupied latent region (percentiles of the codes).

    Returns images (rows, cols, H, W), the top row at the largest second coordinate, and the extent
    (z1 min, z1 max, z2 min, z2 max) of the grid.
    """
    (z1_low, z2_low), (z1_high, z2_high) = np.percentile(codes, coverage, axis=0)
    z1 = np.linspace(z1_low, z1_high, points)
    z2 = np.linspace(z2_high, z2_low, points)
    grid = np.stack(np.meshgrid(z1, z2), axis=-1).reshape(-1, 2).astype(np.float32)
    images = np.asarray(decode(jnp.asarray(grid)))
    side = int(round(np.sqrt(images[0].size)))
    return images.reshape(points, points, side, side), (z1_low, z1_high, z2_low, z2_high)


def write_figures(out: pathlib.Path, model: nn.Module, state, objective: Objective, test: ImageDataset,
                  latent: int, title: str) -> list[str]:
    """reconstructions.png, and for a 2-D code latent.png and manifold.png; returns the names written."""
    from jaxhw.report import figures

    functions = model_functions(model, state, objective)
    shown = [int(np.flatnonzero(test.labels == c)[0]) for c in range(test.num_classes) if (test.labels == c).any()]
    shown = shown[:EXAMPLES_SHOWN]
    originals = test.images[shown]
    rebuilt = np.asarray(functions["reconstruct"](originals))
    side = test.images.shape[1]
    figures.reconstruction_pairs(originals.reshape(len(shown), side, side) / 255.0,
                                 rebuilt.reshape(len(shown), side, side), out / "reconstructions.png",
                                 [test.class_names[test.labels[i]] for i in shown], title)
    written = ["reconstructions.png"]
    if latent == 2:
        codes = apply_in_batches(functions["encode"], test.images)
        figures.latent_scatter(codes, test.labels, test.class_names, out / "latent.png", title)
        grid, extent = manifold_grid(codes, functions["decode"])
        figures.latent_manifold(grid, extent, out / "manifold.png", title)
        written += ["latent.png", "manifold.png"]
    return written


def check_training_args(epochs: int, batch_size: int, lr: float) -> None:
    """Raise InputError for a non-positive epoch count, batch size or learning rate."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not 0 < lr < float("inf"):
        raise InputError(f"lr must be a positive finite number, got {lr!r}")


def train_autoencoder(dataset: str = "mnist", source: str = "auto", data_dir=None, model: str = "dense",
                      latent: int = 2, noise: float = 0.0, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                      seed: int = 0, out: pathlib.Path | None = None, progress: bool | None = None,
                      weight_init: str = "flax", devices: int | None = 1, checkpoint_dir=None,
                      resume: bool = False, keep_checkpoints: int = 3) -> dict:
    """Train an autoencoder with MSE and Adam, as homework problem 2 does; return its metrics (and ``state``).

    With ``out`` it writes metrics.json, reconstructions.png, learning_curves.png and, when latent == 2,
    latent.png and manifold.png there. ``devices``, ``checkpoint_dir`` and ``resume`` as for
    ``train_classifier``.
    """
    from jaxhw.cli import write_json
    from jaxhw.report.figures import learning_curves

    check_noise(noise)
    check_training_args(epochs, batch_size, lr)
    module = build_autoencoder(model, latent, weight_init)
    objective = objective_for(module, noise)
    started = time.perf_counter()
    train, test = load_train_test(dataset, source, data_dir, verbose=True)
    state = create_train_state(module, optax.adam(lr), objective.prepare({"x": train.images[:1]}, None, False)[0],
                               seed)
    checkpoints = open_checkpoints(checkpoint_dir, keep_checkpoints, resume=resume, description={
        "task": "autoencode", "model": model, "dataset": dataset, "latent": int(latent), "noise": float(noise),
        "batch_size": batch_size, "lr": lr, "seed": seed, "parameters": parameter_count(state.params)})
    devices_used = jax.device_count() if devices is None else devices
    state, history = fit(state, {"x": train.images}, {"x": test.images}, epochs=epochs, batch_size=batch_size,
                         objective=objective, progress=progress, devices=devices_used, checkpoints=checkpoints,
                         resume=resume)
    history = [as_mse(record) for record in history]
    final = history[-1]
    metrics = {
        "model": model, "dataset": dataset, "data_source": train.source,
        "train_examples": len(train), "test_examples": len(test),
        "latent": int(latent), "noise": float(noise), "weight_init": weight_init,
        "epochs_run": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "parameters": parameter_count(state.params), "devices": devices_used,
        "train_mse": final["train_mse"], "test_mse": final["test_mse"],
        **summarize_timing(history),
        "epochs": history,
    }
    if out is not None:
        title = f"{model} autoencoder, latent {latent}{f', noise {noise:g}' if noise else ''}, {dataset}"
        metrics["figures"] = write_figures(out, module, state, objective, test, int(latent), title)
        learning_curves(history, out / "learning_curves.png", title)
        metrics["figures"].append("learning_curves.png")
    metrics["total_seconds"] = time.perf_counter() - started
    if out is not None:
        write_json(out / "metrics.json", metrics)
    return {**metrics, "state": state, "module": module}
