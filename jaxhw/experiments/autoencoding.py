"""Train an MNIST autoencoder (homework problem 2): the run behind ``python -m jaxhw.autoencode``.

There is no second training loop here: ``train_supervised`` runs the spine's jitted epochs with the
``reconstruction`` objective defined below. ``HOMEWORK_BLANKS`` says where each line (and blank) of the
homework's loop lives in jaxhw; the report shows it as a table.

What it learns (part B): a compression. The encoder must squeeze 784 pixels through ``latent`` numbers
(2 by default) and the decoder must rebuild the image from them alone; MSE against the input itself
needs no labels and rewards every pixel being right, so the code keeps what varies most between images
(which digit, its slant and thickness).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.common import apply_in_batches, check_non_negative_float, summarize_timing
from jaxhw.configs import AutoencodeConfig
from jaxhw.data.images import ImageDataset
from jaxhw.data.transforms import scale_images
from jaxhw.errors import InputError
from jaxhw.experiments.classification import predict_probabilities
from jaxhw.experiments.supervised import TrainedModel, train_supervised
from jaxhw.intervals import ACCURACY_RANGE, interval
from jaxhw.losses import mse
from jaxhw.models.autoencoder import build_autoencoder
from jaxhw.training import Objective, TrainState
from jaxhw.training.state import member

MANIFOLD_POINTS = 15  # decoded codes per side of manifold.png
EXAMPLES_SHOWN = 10  # test images in reconstructions.png

# The homework's loop, line by line: (blank, the PyTorch line, its jaxhw counterpart, why).
HOMEWORK_BLANKS = (
    ("(a)", "`optimizer.zero_grad()`", "nothing",
     "PyTorch's `backward()` *adds* into each parameter's `.grad`, so old gradients must be cleared; "
     "`jax.value_and_grad` returns fresh gradients as a value on every call and stores nothing, so there is "
     "nothing to zero"),
    ("(b)", "`model.train()`", "`train=True`, passed explicitly by `train_step` (evaluation passes `False`)",
     "a value, not hidden module state; the dense autoencoder has no dropout or batchnorm, so train mode changes "
     "nothing unless denoising noise is asked for (`--noise`)"),
    ("(c)", "`x = images.view(images.size(0), -1)`",
     "the objective's `prepare`: uint8 -> [0, 1] floats, flattened to (N, 784) (the conv model keeps "
     "N x 28 x 28 x 1)", "inside the jitted step, so the data stays uint8 on the device"),
    ("(d)", "`loss = loss_fn(x_hat, x)`", "`jaxhw.losses.mse(x_hat, x)` (= `nn.MSELoss`, mean over every pixel)",
     "the target is the input itself, the clean image even when the input is noisy"),
    ("(e)", "`loss.backward()`", "`jax.value_and_grad(loss_of)(params)` in `train_step`",
     "gradients are a returned pytree"),
    ("(f)", "`optimizer.step()`", "`state.apply_gradients(grads)`: `tx.update` + `optax.apply_updates`",
     "Adam's moments live in `state.opt_state`"),
    ("(g)", "(no blank (g) in the code shown)", "-", "-"),
)


def _per_example_squared_error(outputs: jax.Array, targets: jax.Array) -> dict:
    """Each example's mean squared error, summed over the batch: divided by the data size it is the MSE.

    Reported as ``loss`` (the name fit watches for divergence): here the loss *is* the MSE.
    """
    errors = mse(outputs, targets, reduction="none").reshape((outputs.shape[0], -1))
    return {"loss": errors.mean(axis=1).sum()}


def as_mse(record: dict) -> dict:
    """A history record with the reconstruction loss named for what it is: train_loss -> train_mse,
    test_loss_ci95 -> test_mse_ci95, etc."""
    return {key.replace("_loss", "_mse") if key.startswith(("train_loss", "test_loss")) else key: value
            for key, value in record.items()}


def reconstruction(noise: float = 0.0, flatten: bool = True) -> Objective:
    """The autoencoder's Objective: inputs and targets are the same images, the loss is nn.MSELoss.

    ``prepare`` scales the uint8 images to [0, 1] and flattens them (homework blank (c)) unless the model
    takes NHWC images. With ``noise`` > 0 (a denoising autoencoder) the *inputs* get Gaussian noise of that
    standard deviation, clipped back to [0, 1], in train mode only; the targets stay the clean images.
    """
    check_non_negative_float("noise", noise)

    def prepare(batch, key, train: bool):
        clean = scale_images(batch["x"])
        if flatten:
            clean = clean.reshape((clean.shape[0], -1))
        if train and noise > 0:
            noisy = clean + noise * jax.random.normal(key, clean.shape, clean.dtype)
            return jnp.clip(noisy, 0.0, 1.0), clean
        return clean, clean

    return Objective(loss=mse, metrics=_per_example_squared_error, prepare=prepare)


def objective_for(model: nn.Module, noise: float = 0.0) -> Objective:
    """The reconstruction objective shaped for this model (flat images for dense, NHWC for conv)."""
    return reconstruction(noise, flatten=getattr(model, "takes_flat_images", True))


def model_functions(model: nn.Module, state: TrainState, objective: Objective) -> dict[str, Callable]:
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


@dataclasses.dataclass(frozen=True)
class AutoencoderPictures:
    """The arrays the autoencoder's figures show: test images beside their reconstructions, and for a 2-D code
    every test image's code and the decoded grid over the code plane."""

    originals: np.ndarray  # (N, H, W) in [0, 1]
    reconstructions: np.ndarray  # (N, H, W)
    captions: list[str]
    title: str
    codes: np.ndarray | None = None  # (test examples, 2)
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    manifold: np.ndarray | None = None  # (rows, cols, H, W)
    manifold_extent: tuple[float, float, float, float] | None = None

    @property
    def figures(self) -> list[str]:
        """The names of the figures these arrays make, learning curves included."""
        return ["reconstructions.png"] + (["latent.png", "manifold.png"] if self.codes is not None else []) \
            + ["learning_curves.png"]


def pictures(model: nn.Module, state: TrainState, objective: Objective, test: ImageDataset,
             title: str) -> AutoencoderPictures:
    """The reconstructions of one test image per class and, for a 2-D code, the codes and the decoded grid."""
    functions = model_functions(model, state, objective)
    shown = [int(np.flatnonzero(test.labels == c)[0]) for c in range(test.num_classes) if (test.labels == c).any()]
    shown = shown[:EXAMPLES_SHOWN]
    side = test.images.shape[1]
    originals = test.images[shown].reshape(len(shown), side, side) / 255.0
    rebuilt = np.asarray(functions["reconstruct"](test.images[shown])).reshape(len(shown), side, side)
    captions = [test.class_names[test.labels[i]] for i in shown]
    if model.latent != 2:
        return AutoencoderPictures(originals, rebuilt, captions, title)
    codes = apply_in_batches(functions["encode"], test.images)
    grid, extent = manifold_grid(codes, functions["decode"])
    return AutoencoderPictures(originals, rebuilt, captions, title, codes, test.labels, test.class_names, grid,
                               extent)


@dataclasses.dataclass(frozen=True)
class AutoencoderRun(TrainedModel):
    """A trained autoencoder: ``metrics`` (what metrics.json holds), the trained state and model, the arrays
    its figures show."""

    pictures: AutoencoderPictures


def train_autoencoder(config: AutoencodeConfig, progress: bool | None = None) -> AutoencoderRun:
    """Train the configured autoencoder with MSE and Adam, as homework problem 2 does."""
    run = train_supervised(config, "autoencode",
                           lambda train: build_autoencoder(config.model, config.latent, config.weight_init),
                           lambda model: objective_for(model, config.noise), progress,
                           model_name=f"{config.model} autoencoder")
    history = [as_mse(record) for record in run.history_record()]
    final = run.history[-1]
    title = (f"{config.model} autoencoder, latent {config.latent}{f', noise {config.noise:g}' if config.noise else ''}"
             f", {config.dataset}")
    shown = pictures(run.model, run.first, run.objective, run.test, title)
    metrics = {
        "model": config.model, **run.data_record(),
        "latent": config.latent, "noise": config.noise, "weight_init": config.weight_init,
        "epochs_run": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed,
        "seeds": list(run.seeds), "parameters": run.parameters, "devices": run.devices,
        "processes": run.processes,
        **run.summary({"train_mse": final["train_loss"], "test_mse": final["test_loss"]}),
        **summarize_timing(history),
        "epochs": history,
        "figures": shown.figures,
        "total_seconds": time.perf_counter() - run.started,
        "config": config.record(),
    }
    return AutoencoderRun(config, metrics, run.state, run.model, shown)


def members_of(state: TrainState, seeds: tuple[int, ...]) -> list[TrainState]:
    """One TrainState per seed: the state itself for one seed, else each member of the stack."""
    return [state] if len(seeds) == 1 else [member(state, k) for k in range(len(seeds))]


def reconstructions(model: nn.Module, state: TrainState, objective: Objective, images: np.ndarray) -> np.ndarray:
    """Eval-mode reconstructions of uint8 images by one trained autoencoder, in [0, 1], shaped as the images."""
    rebuilt = apply_in_batches(model_functions(model, state, objective)["reconstruct"], images)
    return rebuilt.reshape(images.shape)


def errors_by_class(run: AutoencoderRun, train: ImageDataset, test: ImageDataset) -> dict:
    """What the code keeps, digit by digit: each seed's test MSE per class, beside two images that ignore the
    code: the mean training image (knows nothing) and the mean training image of the digit (knows only which
    digit it is)."""
    test_pixels = test.images.astype(np.float64) / 255.0
    train_pixels = train.images.astype(np.float64) / 255.0
    classes = range(test.num_classes)

    def per_class(squared: np.ndarray) -> list[float]:
        per_example = squared.reshape(len(test), -1).mean(axis=1)
        return [float(per_example[test.labels == c].mean()) for c in classes]

    by_seed = [per_class((reconstructions(run.model, state, objective_for(run.model), test.images) - test_pixels) ** 2)
               for state in members_of(run.state, run.config.seed_list)]
    class_means = np.stack([train_pixels[train.labels == c].mean(axis=0) for c in classes])
    return {"class_names": list(test.class_names), "autoencoder_per_seed": by_seed,
            "autoencoder": np.mean(by_seed, axis=0).tolist(),
            "mean_image": per_class((test_pixels - train_pixels.mean(axis=0)) ** 2),
            "digit_mean_image": per_class((test_pixels - class_means[test.labels]) ** 2),
            "digit_mean_image_overall": float(np.mean((test_pixels - class_means[test.labels]) ** 2))}


def recognised_by_classifier(run: AutoencoderRun, classifier: TrainState, classifier_seeds: tuple[int, ...],
                             test: ImageDataset) -> dict:
    """How often a trained classifier names the right digit for each test image's reconstruction, against the
    original images: seed k's autoencoder paired with seed k's classifier; per class, the mean over the seeds."""
    autoencoders = members_of(run.state, run.config.seed_list)
    classifiers = members_of(classifier, classifier_seeds)
    if len(autoencoders) != len(classifiers):
        raise InputError(f"pairing seeds needs as many autoencoders as classifiers, got {len(autoencoders)} and "
                         f"{len(classifiers)}")
    rebuilt, original = [], []
    for autoencoder, model in zip(autoencoders, classifiers):
        images = np.round(reconstructions(run.model, autoencoder, objective_for(run.model), test.images) * 255.0)
        rebuilt.append(predict_probabilities(model, images.astype(np.uint8)).argmax(axis=1) == test.labels)
        original.append(predict_probabilities(model, test.images).argmax(axis=1) == test.labels)
    rebuilt, original = np.asarray(rebuilt), np.asarray(original)
    classes = range(test.num_classes)
    return {"reconstructions_per_seed": rebuilt.mean(axis=1).tolist(),
            "originals_per_seed": original.mean(axis=1).tolist(),
            "reconstructions_per_class": [float(rebuilt[:, test.labels == c].mean()) for c in classes],
            "reconstructions_per_class_ci95": [interval(rebuilt[:, test.labels == c].mean(axis=1), ACCURACY_RANGE)
                                               for c in classes],
            "originals_per_class": [float(original[:, test.labels == c].mean()) for c in classes]}
