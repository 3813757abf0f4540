"""The homework MLP against its PyTorch original: weights copied in, logits, loss, gradients and Adam steps."""
import jax
import numpy as np
import optax
import pytest
from parity import torch_grads_as_flax

from jaxhw.losses import cross_entropy
from jaxhw.models.mlp import MLP
from jaxhw.torch_bridge import twins  # noqa: E402
from jaxhw.torch_bridge.convert import load_into_torch, variables_from_torch
from jaxhw.training import create_train_state, train_step

torch = pytest.importorskip("torch")
SAMPLE = np.zeros((1, 28, 28, 1), np.uint8)


def homework_model():
    torch.manual_seed(0)
    return twins.homework_mlp()


def batches(count, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.integers(0, 256, (size, 28, 28, 1), dtype=np.uint8),
             "y": rng.integers(0, 10, size).astype(np.int32)} for _ in range(count)]


def torch_inputs(batch):
    """What torchvision's ToTensor gives: float NCHW in [0, 1]."""
    return twins.images_to_torch(batch["x"]), torch.tensor(batch["y"]).long()


def test_logits_loss_and_gradients_agree():
    net = homework_model()
    variables = variables_from_torch(net, MLP(), SAMPLE)
    batch = batches(1)[0]
    x, y = torch_inputs(batch)
    loss = torch.nn.CrossEntropyLoss()(net(x), y)
    loss.backward()

    def our_loss(params):
        logits = MLP().apply({"params": params}, batch["x"].astype(np.float32) / 255.0)
        return cross_entropy(logits, batch["y"]), logits

    (value, logits), grads = jax.value_and_grad(our_loss, has_aux=True)(variables["params"])
    np.testing.assert_allclose(logits, net(x).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(value, loss.item(), atol=1e-5)
    ours = torch_grads_as_flax(net, MLP(), SAMPLE)
    for layer in ("hidden0", "logits"):
        for name in ("kernel", "bias"):
            np.testing.assert_allclose(grads[layer][name], ours[layer][name], atol=1e-5)


@pytest.mark.parametrize("steps", [1, 10])
def test_adam_steps_agree_with_the_homework_loop(steps):
    net = homework_model()
    state = create_train_state(MLP(), optax.adam(1e-3), SAMPLE)
    state = state.replace(params=variables_from_torch(net, MLP(), SAMPLE)["params"])
    state = state.replace(opt_state=state.tx.init(state.params))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    step = jax.jit(train_step)
    for batch in batches(steps):
        x, y = torch_inputs(batch)
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()
        state, _ = step(state, batch)
    expected = homework_model()
    load_into_torch({"params": state.params}, expected, MLP(), SAMPLE)
    for ours, theirs in zip(expected.parameters(), net.parameters()):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=1e-5)
    assert int(state.step) == steps


def test_torch_initialisation_bounds():
    # 20 initialisations pooled, so even the 10 output biases give 200 draws for the spread check.
    inits = [MLP(weight_init="torch").init(jax.random.key(seed), SAMPLE.astype(np.float32))["params"]
             for seed in range(20)]
    for layer, fan_in in (("hidden0", 784), ("logits", 64)):
        bound = 1 / np.sqrt(fan_in)
        for name in ("kernel", "bias"):
            values = np.concatenate([np.asarray(params[layer][name]).ravel() for params in inits])
            assert np.abs(values).max() <= bound
            # uniform on [-b, b] has standard deviation b / sqrt(3); with n >= 200 draws the sample standard
            # deviation is within 10% of it with probability > 0.99 (its relative sd is about 0.45 / sqrt(n)).
            assert abs(values.std() - bound / np.sqrt(3)) < 0.1 * bound
    flax_bias = MLP().init(jax.random.key(0), SAMPLE.astype(np.float32))["params"]["hidden0"]["bias"]
    assert not np.any(np.asarray(flax_bias))  # Flax's default: zero biases
