"""A jitted lax.scan epoch equals the PyTorch homework loop over the same batch order, partial batch included."""
import jax
import numpy as np
import optax
import pytest

from jaxhw.data.loader import epoch_indices
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state, fit, make_epoch_fn, make_eval_fn
from jaxhw.training.steps import SHUFFLE_STREAM

torch = pytest.importorskip("torch")
from jaxhw.torch_bridge import twins  # noqa: E402
from jaxhw.torch_bridge.convert import load_into_torch, variables_from_torch  # noqa: E402

SAMPLE = np.zeros((1, 28, 28, 1), np.uint8)


def small_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), "y": rng.integers(0, 10, n).astype(np.int32)}


def torch_twin():
    torch.manual_seed(1)
    return twins.homework_mlp()


def test_scan_epoch_matches_torch_loop_on_the_same_order():
    data, batch_size = small_data(), 16  # 3 full batches and a partial one of 2
    net = torch_twin()
    state = create_train_state(MLP(), optax.adam(1e-3), SAMPLE, seed=7)
    state = state.replace(params=variables_from_torch(net, MLP(), SAMPLE)["params"])
    state = state.replace(opt_state=state.tx.init(state.params))
    epoch_key = jax.random.fold_in(jax.random.fold_in(state.rng, SHUFFLE_STREAM), 0)
    full, rest = epoch_indices(epoch_key, 50, batch_size)
    order = [np.asarray(b) for b in full] + [np.asarray(rest)]
    assert [len(b) for b in order] == [16, 16, 16, 2]

    state, totals, _ = make_epoch_fn(batch_size=batch_size)(state, jax.device_put(data), 0)

    optimizer, loss_fn, losses = torch.optim.Adam(net.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss(), []
    for index in order:
        loss = loss_fn(net(twins.images_to_torch(data["x"][index])), torch.tensor(data["y"][index]).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item() * len(index))
    ours = load_into_torch({"params": state.params}, torch_twin(), MLP(), SAMPLE)
    for a, b in zip(ours.parameters(), net.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=2e-5)
    np.testing.assert_allclose(float(totals["loss"]), sum(losses), rtol=1e-5)
    assert int(state.step) == 4


def test_evaluation_changes_nothing_and_fit_reports_every_epoch():
    data = small_data(40)
    state = create_train_state(MLP(), optax.adam(1e-3), SAMPLE)
    before = jax.tree_util.tree_map(np.asarray, state.params)
    totals = make_eval_fn(batch_size=16)(state, jax.device_put(data))
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, jax.tree_util.tree_map(np.asarray, state.params))
    logits = MLP().apply({"params": state.params}, data["x"].astype(np.float32) / 255)
    assert int(totals["accuracy"]) == int((np.argmax(logits, -1) == data["y"]).sum())

    state, history = fit(state, data, data, epochs=3, batch_size=16, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(0 <= h["test_accuracy"] <= 1 and h["seconds"] > 0 for h in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # Adam on 40 samples must fit them


def test_init_compiled_at_level_1_is_bitwise_equal_to_the_default_compile():
    from jaxhw.models.cnn import CNN
    from jaxhw.training import state as state_module

    for model in (MLP(), CNN()):
        fast = create_train_state(model, optax.adam(1e-3), SAMPLE, seed=3)
        options = dict(state_module.INIT_COMPILER_OPTIONS)
        try:
            state_module.INIT_COMPILER_OPTIONS.clear()  # XLA's default optimisation level
            default = create_train_state(model, optax.adam(1e-3), SAMPLE, seed=3)
        finally:
            state_module.INIT_COMPILER_OPTIONS.update(options)
        jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get((fast.params, fast.batch_stats)),
                               jax.device_get((default.params, default.batch_stats)))
