"""optim.Adam / AdamW, optimizer.step, zero_grad and a forgotten backward, against PyTorch."""
import jax
import numpy as np
import optax
import pytest

from jaxhw.models.mlp import MLP
from jaxhw.torch_bridge import twins  # noqa: E402
from jaxhw.torch_bridge.convert import load_into_torch, variables_from_torch
from jaxhw.training import create_train_state, train_step
from jaxhw.training.pitfalls import accumulate_gradients, forgotten_zero_grad

torch = pytest.importorskip("torch")
SAMPLE = np.zeros((1, 28, 28, 1), np.uint8)


@pytest.mark.parametrize("ours, theirs", [
    (optax.adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    (optax.adam(1e-3, b1=0.8, b2=0.99, eps=1e-6), lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6)),
    (optax.adamw(1e-2, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
])
def test_hundred_steps_on_the_same_gradients(ours, theirs):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    gradients = rng.normal(size=(100, 5, 3)).astype(np.float32) * np.logspace(-3, 1, 100)[:, None, None]
    weight = torch.nn.Parameter(torch.tensor(start))
    optimizer = theirs([weight])
    params, opt_state = start, ours.init(start)
    for g in gradients.astype(np.float32):
        weight.grad = torch.tensor(g)
        optimizer.step()
        updates, opt_state = ours.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params, weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def homework_pair(tx):
    torch.manual_seed(0)
    net = twins.homework_mlp(hidden=16)
    model = MLP(hidden=(16,))
    state = create_train_state(model, tx, SAMPLE)
    params = variables_from_torch(net, model, SAMPLE)["params"]
    return net, model, state.replace(params=params, opt_state=tx.init(params))


def micro_batches(count, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.integers(0, 256, (8, 28, 28, 1), dtype=np.uint8), "y": rng.integers(0, 10, 8).astype(np.int32)}
            for _ in range(count)]


def torch_loss(net, batch):
    return torch.nn.CrossEntropyLoss()(net(twins.images_to_torch(batch["x"])), torch.tensor(batch["y"]).long())


def assert_same_parameters(state, net, model):
    ours = load_into_torch({"params": state.params}, twins.homework_mlp(hidden=16), model, SAMPLE)
    for a, b in zip(ours.parameters(), net.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-5)


def test_forgotten_zero_grad_accumulates_like_torch():
    net, model, state = homework_pair(optax.chain(forgotten_zero_grad(), optax.sgd(0.05)))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    for batch in micro_batches(3):
        torch_loss(net, batch).backward()  # no zero_grad: .grad keeps growing
        optimizer.step()
        state, _ = train_step(state, batch)
    assert_same_parameters(state, net, model)
    # and it is not what a correct loop does:
    _, _, correct = homework_pair(optax.sgd(0.05))
    for batch in micro_batches(3):
        correct, _ = train_step(correct, batch)
    assert not np.allclose(correct.params["hidden0"]["kernel"], state.params["hidden0"]["kernel"], atol=1e-6)


def test_deliberate_accumulation_matches_torch_micro_batches():
    every = 3
    net, model, state = homework_pair(accumulate_gradients(optax.adam(1e-2), every))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for i, batch in enumerate(micro_batches(2 * every)):
        (torch_loss(net, batch) / every).backward()
        if (i + 1) % every == 0:
            optimizer.step()
            optimizer.zero_grad()
        state, _ = train_step(state, batch)
    assert_same_parameters(state, net, model)


def test_step_without_backward_moves_nothing():
    net, model, state = homework_pair(optax.adam(1e-3))
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for batch in micro_batches(5):
        optimizer.zero_grad()
        torch_loss(net, batch)  # loss computed, backward forgotten
        optimizer.step()
    for a, b in zip(before, net.parameters()):
        assert torch.equal(a, b)
    # JAX: with no gradient there is nothing to apply; a step of zero gradients leaves the parameters as they were.
    start = jax.tree_util.tree_map(np.asarray, state.params)
    zeros = jax.tree_util.tree_map(np.zeros_like, start)
    for _ in range(5):
        state = state.apply_gradients(zeros)
    jax.tree_util.tree_map(np.testing.assert_array_equal, start, jax.tree_util.tree_map(np.asarray, state.params))
    assert_same_parameters(state, net, model)
