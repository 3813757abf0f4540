"""The autoencoder of homework problem 2 against PyTorch: forward pass, loss, gradients and Adam steps of the
homework loop; encode/decode shapes; the denoising option; the CLI end to end on the embedded digits."""
from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

torch = pytest.importorskip("torch")
from parity import images_from_torch, images_to_torch, torch_grads_as_flax  # noqa: E402
from torch import nn as tnn  # noqa: E402

from jaxhw.autoencode import main as autoencode_main  # noqa: E402
from jaxhw.configs import AutoencodeConfig  # noqa: E402
from jaxhw.data.images import load_images  # noqa: E402
from jaxhw.errors import InputError  # noqa: E402
from jaxhw.experiments.autoencoding import objective_for, reconstruction  # noqa: E402
from jaxhw.models.autoencoder import (  # noqa: E402
    ConvAutoencoder,
    DenseAutoencoder,
    build_autoencoder,
)
from jaxhw.torch_bridge import twins  # noqa: E402
from jaxhw.torch_bridge.convert import variables_from_torch  # noqa: E402
from jaxhw.training import TrainState, make_eval_fn, train_step  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """16 real MNIST test digits, uint8 NHWC."""
    return load_images("mnist", "test", source="embedded").images[:16]


def torch_images(images: np.ndarray, flatten: bool) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1] (ToTensor), flattened to (N, 784) for the dense model (x.view(N, -1))."""
    x = images_to_torch(images)
    return x.reshape(len(images), -1) if flatten else x.contiguous()


def torch_output_as_jax_layout(y: torch.Tensor) -> np.ndarray:
    return images_from_torch(y)


def state_from_torch(torch_model: tnn.Module, model, sample, lr: float = 1e-3) -> TrainState:
    """A fresh TrainState (Adam) holding the torch model's weights; no random init needed."""
    params = variables_from_torch(torch_model, model, sample)["params"]
    tx = optax.adam(lr)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={}, opt_state=tx.init(params),
                      rng=jax.random.key(0), apply_fn=model.apply, tx=tx)


def assert_trees_close(ours, reference, **tol):
    flat_ours = jax.tree_util.tree_leaves_with_path(ours)
    flat_ref = dict(jax.tree_util.tree_leaves_with_path(reference))
    assert len(flat_ours) == len(flat_ref)
    for path, value in flat_ours:
        np.testing.assert_allclose(np.asarray(value), np.asarray(flat_ref[path]), err_msg=jax.tree_util.keystr(path),
                                   **tol)


PAIRS = [
    pytest.param(DenseAutoencoder, twins.DenseAutoencoder, 2, id="dense"),
    pytest.param(ConvAutoencoder, twins.ConvAutoencoder, 3, id="conv"),
]


@pytest.mark.parametrize("flax_cls, torch_cls, latent", PAIRS)
def test_reconstructions_loss_and_gradients_match_pytorch(flax_cls, torch_cls, latent, digits):
    torch.manual_seed(0)
    torch_model = torch_cls(latent)
    model = flax_cls(latent=latent)
    objective = objective_for(model)
    inputs, targets = objective.prepare({"x": jnp.asarray(digits)}, None, False)
    variables = variables_from_torch(torch_model, model, inputs)

    x = torch_images(digits, flatten=model.takes_flat_images)
    x_hat = torch_model(x)
    loss = tnn.MSELoss()(x_hat, x)
    loss.backward()

    def loss_of(params):
        outputs = model.apply({"params": params}, inputs, train=True)
        return objective.loss(outputs, targets), outputs

    (jax_loss, outputs), grads = jax.jit(jax.value_and_grad(loss_of, has_aux=True))(variables["params"])
    assert outputs.shape == inputs.shape  # (N, 784) dense, (N, 28, 28, 1) conv
    np.testing.assert_allclose(np.asarray(outputs), torch_output_as_jax_layout(x_hat), **TOL)
    np.testing.assert_allclose(float(jax_loss), loss.item(), rtol=1e-6)
    codes = jax.jit(functools.partial(model.apply, method="encode"))(variables, inputs)
    assert codes.shape == (len(digits), latent)
    np.testing.assert_allclose(np.asarray(codes), torch_model.encoder(x).detach().numpy(), **TOL)
    assert_trees_close(grads, torch_grads_as_flax(torch_model, model, inputs), **TOL)


def test_train_step_is_the_homework_loop(digits):
    """Three iterations of the homework's loop (forward, MSELoss, backward, Adam step, zero_grad) equal
    three jaxhw train_steps from the same weights."""
    torch.manual_seed(1)
    torch_model = twins.DenseAutoencoder()
    model = DenseAutoencoder()
    objective = reconstruction()
    batch = {"x": jnp.asarray(digits)}
    sample = objective.prepare(batch, None, False)[0]
    state = state_from_torch(torch_model, model, sample)
    step = jax.jit(functools.partial(train_step, objective=objective))

    optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    x = torch_images(digits, flatten=True)
    for _ in range(3):
        torch_model.train()
        loss = tnn.MSELoss()(torch_model(x), x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        state, metrics = step(state, batch)
        # the metric is the summed per-example MSE of the outputs *before* the step: / N gives the batch loss
        np.testing.assert_allclose(float(metrics["loss"]) / len(digits), loss.item(), rtol=1e-5)
    assert_trees_close(state.params, variables_from_torch(torch_model, model, sample)["params"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model, image_shape", [(DenseAutoencoder(latent=5), (784,)),
                                                 (DenseAutoencoder(latent=5), (28, 28, 1)),
                                                 (ConvAutoencoder(latent=5), (28, 28, 1))])
def test_encode_decode_shapes(model, image_shape):
    """Shapes only (traced, nothing computed); the values are checked against PyTorch above."""
    out_shape = (784,) if isinstance(model, DenseAutoencoder) else (28, 28, 1)

    def run(key, x, z):
        variables = model.init(key, x)
        return (model.apply(variables, x, method="encode"), model.apply(variables, z, method="decode"),
                model.apply(variables, x, train=True))

    codes, images, full = jax.eval_shape(run, jax.random.key(0), jnp.zeros((4, *image_shape)), jnp.zeros((7, 5)))
    assert codes.shape == (4, 5)
    assert images.shape == (7, *out_shape)
    assert full.shape == (4, *out_shape)


def test_torch_init_has_pytorch_bounds():
    """weight_init="torch": every Linear weight and bias within PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    model = DenseAutoencoder(latent=2, hidden=(), weight_init="torch")  # 784 -> 2 -> 784: two layers suffice
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 784)))["params"]
    assert len(params) == 2
    for layer in params.values():
        bound = 1 / np.sqrt(layer["kernel"].shape[0])
        for value in (layer["kernel"], layer["bias"]):
            assert float(jnp.abs(value).max()) <= bound
            assert float(jnp.abs(value).min()) > 0  # PyTorch's biases are not zero (Flax's are)
            if value.size >= 100:  # spread over the whole interval (P(max < 0.9 bound) <= 0.9**100)
                assert float(jnp.abs(value).max()) > 0.9 * bound


def test_denoising_noise_only_in_train_mode():
    noise = 0.1
    objective = reconstruction(noise=noise)
    batch = {"x": jnp.full((64, 28, 28, 1), 128, jnp.uint8)}  # 128/255: 5 noise std from both clip edges
    clean = np.full((64, 784), 128 / 255, np.float32)

    inputs, targets = objective.prepare(batch, jax.random.key(0), False)
    np.testing.assert_array_equal(inputs, clean)
    np.testing.assert_array_equal(targets, clean)

    inputs, targets = objective.prepare(batch, jax.random.key(0), True)
    np.testing.assert_array_equal(targets, clean)  # targets stay clean
    residual = np.asarray(inputs) - clean
    assert abs(residual.mean()) < 0.002  # 50,176 draws: standard error 0.00045
    assert abs(residual.std() - noise) < 0.002
    other, _ = objective.prepare(batch, jax.random.key(1), True)
    assert not np.array_equal(other, inputs)  # fresh noise per step key

    # No noise at all without the option, train mode included.
    plain_inputs, _ = reconstruction().prepare(batch, jax.random.key(0), True)
    np.testing.assert_array_equal(plain_inputs, clean)


def test_epoch_metric_is_the_mse(digits):
    """make_eval_fn's summed per-example metric divided by the example count is numpy's MSE of the images."""
    torch.manual_seed(2)
    model = DenseAutoencoder()
    objective = reconstruction()
    state = state_from_torch(twins.DenseAutoencoder(), model, jnp.zeros((1, 784)))
    data = {"x": jnp.asarray(np.concatenate([digits, digits[:5]]))}  # 21 examples: batches of 8 + a partial one
    totals = make_eval_fn(objective, batch_size=8)(state, data)
    x = np.asarray(data["x"], np.float64).reshape(21, -1) / 255.0
    x_hat = np.asarray(jax.jit(model.apply)(state.variables, jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(float(totals["loss"]) / 21, np.mean((x_hat - x) ** 2), rtol=1e-5)


@pytest.mark.slow
def test_cli_end_to_end_on_embedded_digits(tmp_path, capsys):
    out = tmp_path / "run"
    code = autoencode_main(["--source", "embedded", "--epochs", "1", "--out", str(out)])
    assert code == 0
    for name in ("metrics.json", "reconstructions.png", "latent.png", "manifold.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_mse", "data_source", "seconds_per_epoch", "devices", "parameters", "epochs"):
        assert key in metrics, key
    assert metrics["data_source"].startswith("embedded")
    assert metrics["devices"] == 1
    # 784*128+128 + 128*64+64 + 64*2+2 for the encoder, 2*64+64 + 64*128+128 + 128*784+784 for the decoder
    assert metrics["parameters"] == 218514
    assert [set(e) >= {"train_mse", "test_mse"} for e in metrics["epochs"]] == [True]
    assert metrics["test_mse"] == metrics["epochs"][-1]["test_mse"]
    # Better than a constant grey image after one epoch: MSE of predicting 0.5 everywhere, from the data.
    test_images = load_images("mnist", "test", source="embedded").images / 255.0
    assert 0 < metrics["test_mse"] < np.mean((test_images - 0.5) ** 2)
    assert "test MSE" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "mlp"], "unknown model 'mlp'"),
    (["--noise", "-0.5"], "noise must be a finite number >= 0"),
    (["--noise", "nan"], "noise must be a finite number >= 0"),
    (["--weight-init", "xavier"], "unknown weight init 'xavier': expected one of flax, torch"),
])
def test_cli_bad_input_exits_2(argv, message, tmp_path, capsys):
    code = autoencode_main(["--source", "embedded", "--out", str(tmp_path), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_latent_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        autoencode_main(["--latent", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--latent" in capsys.readouterr().err


@pytest.mark.parametrize("latent", [0, -3, 1.5, True])
def test_library_rejects_bad_latent(latent):
    with pytest.raises(InputError, match="latent size must be a positive integer"):
        build_autoencoder("dense", latent)
    with pytest.raises(InputError, match="latent must be a positive integer"):
        AutoencodeConfig(source="embedded", latent=latent)


def test_dense_model_rejects_wrong_pixel_count():
    with pytest.raises(InputError, match="784 pixels"):
        DenseAutoencoder().init(jax.random.key(0), jnp.zeros((2, 30, 30, 1)))
