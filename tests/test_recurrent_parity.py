"""jaxhw.models.recurrent LSTM/GRU against torch.nn.LSTM/GRU: outputs, final states, gradients, weight round trip."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxhw.errors import InputError
from jaxhw.models.recurrent import GRU, LSTM
from jaxhw.torch_bridge.convert import load_into_torch, variables_from_torch

BATCH, TIME, FEATURES, HIDDEN = 3, 9, 4, 5
CONFIGS = [(1, False, False), (2, False, False), (1, True, False), (2, True, True)]  # layers, bidirectional, h_0
TOL = 1e-5


def _torch_module(kind: str, num_layers: int, bidirectional: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    module = cls(FEATURES, HIDDEN, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    with torch.no_grad():  # wider than the default U(-1/sqrt(H), 1/sqrt(H)), so the gates saturate unevenly
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


def _flax_model(kind: str, num_layers: int, bidirectional: bool):
    cls = LSTM if kind == "lstm" else GRU
    return cls(HIDDEN, num_layers=num_layers, bidirectional=bidirectional)


def _inputs(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, FEATURES)).astype(np.float32)


def _random_variables(model, x: np.ndarray, seed: int = 0) -> dict:
    """Variables of the model's shapes filled with N(0, 0.5^2) draws (no init compiled: init is slow to compile)."""
    like = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.asarray(x)))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: (0.5 * rng.normal(size=s.shape)).astype(np.float32), like)


def _final_states(kind, state):
    """h_n (and c_n for the LSTM) as a list of arrays, for torch and Flax alike."""
    return list(state) if kind == "lstm" else [state]


def _initial_state(kind: str, num_states: int):
    """Random (h_0, c_0) for the LSTM or h_0 for the GRU, as numpy arrays."""
    rng = np.random.default_rng(2)
    h0, c0 = (rng.normal(size=(num_states, BATCH, HIDDEN)).astype(np.float32) for _ in range(2))
    return (h0, c0) if kind == "lstm" else h0


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional,with_initial_state", CONFIGS)
def test_outputs_final_states_and_gradients_match_torch(kind, num_layers, bidirectional, with_initial_state):
    """Forward values, then d/d(inputs, weights) of a random linear functional of outputs and final states:
    torch's backward against jax.vjp, all in one jitted call per configuration."""
    module = _torch_module(kind, num_layers, bidirectional)
    model = _flax_model(kind, num_layers, bidirectional)
    x = _inputs()
    directions = 2 if bidirectional else 1
    num_states = num_layers * directions
    initial = _initial_state(kind, num_states) if with_initial_state else None
    variables = variables_from_torch(module, model, x)
    rng = np.random.default_rng(3)
    out_weights = rng.normal(size=(BATCH, TIME, directions * HIDDEN)).astype(np.float32)
    state_weights = [rng.normal(size=(num_states, BATCH, HIDDEN)).astype(np.float32)
                     for _ in range(2 if kind == "lstm" else 1)]

    @jax.jit
    def forward_and_backward(params, inputs):
        (outputs, state), pullback = jax.vjp(lambda p, i: model.apply({"params": p}, i, initial), params, inputs)
        cotangent = (out_weights, tuple(state_weights) if kind == "lstm" else state_weights[0])
        return outputs, state, pullback(cotangent)

    outputs, state, (param_grads, input_grads) = forward_and_backward(variables["params"], jnp.asarray(x))

    x_torch = torch.from_numpy(x).requires_grad_(True)
    if initial is None:
        expected_outputs, expected_state = module(x_torch)
    else:
        torch_initial = tuple(map(torch.from_numpy, initial)) if kind == "lstm" else torch.from_numpy(initial)
        expected_outputs, expected_state = module(x_torch, torch_initial)
    total = (expected_outputs * torch.from_numpy(out_weights)).sum()
    for s, w in zip(_final_states(kind, expected_state), state_weights, strict=True):
        total = total + (s * torch.from_numpy(w)).sum()
    total.backward()

    assert outputs.shape == (BATCH, TIME, directions * HIDDEN)
    np.testing.assert_allclose(outputs, expected_outputs.detach().numpy(), atol=TOL, rtol=0)
    for ours, theirs in zip(_final_states(kind, state), _final_states(kind, expected_state), strict=True):
        assert ours.shape == (num_states, BATCH, HIDDEN)
        np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(input_grads, x_torch.grad.numpy(), atol=TOL, rtol=0)
    # Put jax's parameter gradients into a torch module of the same shape, then compare name by name.
    holder = load_into_torch({"params": param_grads}, _torch_module(kind, num_layers, bidirectional, seed=9),
                             model, x)
    ours = dict(holder.named_parameters())
    for name, parameter in module.named_parameters():
        np.testing.assert_allclose(ours[name].detach().numpy(), parameter.grad.numpy(), atol=TOL, rtol=0,
                                   err_msg=name)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_round_trip_through_torch_is_exact(kind):
    model = _flax_model(kind, 2, True)
    x = _inputs()
    variables = _random_variables(model, x)
    module = load_into_torch(variables, _torch_module(kind, 2, True, seed=5), model, x)
    back = variables_from_torch(module, model, x)
    flat_in = jax.tree_util.tree_leaves_with_path(variables)
    flat_back = dict(jax.tree_util.tree_leaves_with_path(back))
    assert len(flat_in) == len(flat_back) == 16  # 4 layer-directions x (w_ih, w_hh, b_ih, b_hh)
    for path, value in flat_in:
        np.testing.assert_array_equal(np.asarray(value), flat_back[path])
    # torch's own names got the values: l1_reverse is the fourth Flax layer
    np.testing.assert_array_equal(module.weight_hh_l1_reverse.detach().numpy(),
                                  np.asarray(variables["params"]["l1_reverse"]["w_hh"]).T)


def test_torch_init_draws_within_pytorch_bound():
    """weight_init='torch' is PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    model = LSTM(16, weight_init="torch")
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, 3)))["params"]["l0"]
    bound = 1 / np.sqrt(16)
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        values = np.asarray(params[name])
        assert values.min() >= -bound and values.max() <= bound, name
        assert values.max() - values.min() > 1.5 * bound, name  # spread over the interval, not a constant


def test_dropout_between_layers_only_in_training():
    model = LSTM(HIDDEN, num_layers=2, dropout=0.5)
    x = jnp.asarray(_inputs())

    variables = _random_variables(model, x)

    @jax.jit
    def outputs(variables):
        apply = lambda train, k: model.apply(variables, x, train=train, rngs={"dropout": k})[0]  # noqa: E731
        return apply(False, jax.random.key(1)), apply(False, jax.random.key(2)), apply(True, jax.random.key(1))

    eval_a, eval_b, trained = outputs(variables)
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(trained, eval_a)


@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.float32), np.zeros((2, 3, 4, 5), np.float32)])
def test_wrong_input_rank_is_an_input_error(bad):
    with pytest.raises(InputError, match="batch, time, features"):
        GRU(HIDDEN).init(jax.random.key(0), jnp.asarray(bad))


def test_wrong_initial_state_shape_is_an_input_error():
    model = GRU(HIDDEN, num_layers=2)
    x = jnp.asarray(_inputs())
    with pytest.raises(InputError, match="h_0"):
        model.init(jax.random.key(0), x, jnp.zeros((1, BATCH, HIDDEN)))


def test_bridge_rejects_projected_lstm():
    module = torch.nn.LSTM(FEATURES, HIDDEN, proj_size=2, batch_first=True)
    with pytest.raises(ValueError, match="proj_size"):
        variables_from_torch(module, LSTM(HIDDEN), _inputs())
