"""The hand-written backward passes of jaxhw.models.recurrence against autodiff of the step-by-step cell (the
"scan" implementation), alone and under vmap (stacked members); the implementation never changes the parameters.
PyTorch's own gradients are checked in test_recurrent_parity.py, where "fused" is the default implementation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhw.errors import InputError
from jaxhw.models.recurrent import GRU, LSTM

BATCH, TIME, FEATURES, HIDDEN = 3, 7, 4, 5
TOL = 2e-5


def _inputs(seed: int = 0, batch: int = BATCH) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, TIME, FEATURES)).astype(np.float32)


def _model(kind: str, implementation: str, **options):
    return (LSTM if kind == "lstm" else GRU)(HIDDEN, implementation=implementation, **options)


def _random_params(model, x, seed: int) -> dict:
    """Parameters of the model's shapes drawn from N(0, 0.5^2), without compiling its initialisers."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x)["params"])
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), jnp.float32), shapes)


def _weighted_sum(kind: str, seed: int):
    """A random linear functional of every output (the sequence and each final state), so every cotangent counts."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=shape).astype(np.float32) for shape in
               [(BATCH, TIME, 2 * HIDDEN)] + [(2, BATCH, HIDDEN)] * (2 if kind == "lstm" else 1)]

    def total(outputs, state):
        states = list(state) if kind == "lstm" else [state]
        return (outputs * weights[0]).sum() + sum((s * w).sum() for s, w in zip(states, weights[1:], strict=True))

    return total


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_hand_written_gradients_equal_autodiff_of_the_cell(kind, use_bias):
    """Bidirectional (so both loop directions), a given initial state, every output weighted: d/d(params, inputs,
    initial state) of the fused layers against jax.grad through the scanned cell, on the same parameters."""
    x = jnp.asarray(_inputs())
    rng = np.random.default_rng(1)
    h0, c0 = (jnp.asarray(rng.normal(size=(2, BATCH, HIDDEN)).astype(np.float32)) for _ in range(2))
    initial = (h0, c0) if kind == "lstm" else h0
    fused, scan = (_model(kind, impl, bidirectional=True, use_bias=use_bias) for impl in ("fused", "scan"))
    params = _random_params(scan, x, 0)
    total = _weighted_sum(kind, 2)

    @jax.jit
    def values_and_grads(params, x, initial):
        def loss(model):
            return lambda p, x, s: total(*model.apply({"params": p}, x, s))
        return [jax.value_and_grad(loss(model), argnums=(0, 1, 2))(params, x, initial) for model in (fused, scan)]

    (value, grads), (expected_value, expected_grads) = values_and_grads(params, x, initial)
    np.testing.assert_allclose(value, expected_value, atol=TOL, rtol=1e-5)  # float32 sums in another order
    flat, expected_flat = jax.tree_util.tree_leaves_with_path(grads), jax.tree_util.tree_leaves(expected_grads)
    assert len(flat) == len(expected_flat) == (8 if use_bias else 4) + 1 + (2 if kind == "lstm" else 1)
    for (path, got), want in zip(flat, expected_flat, strict=True):
        assert np.abs(want).max() > 1e-3, jax.tree_util.keystr(path)  # every gradient is really exercised
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_vmapped_members_get_the_gradients_each_would_get_alone(kind):
    """custom_vjp under vmap: three stacked parameter sets, each with its own data, against one at a time."""
    model = _model(kind, "fused")
    xs = jnp.asarray(np.stack([_inputs(seed) for seed in range(3)]))
    members = [_random_params(model, xs[0], seed) for seed in range(3)]
    stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *members)

    def loss(params, x):
        _, state = model.apply({"params": params}, x)
        h = state[0] if kind == "lstm" else state
        return (jnp.sin(h) * jnp.arange(h.size).reshape(h.shape)).sum()

    together = jax.jit(jax.vmap(jax.grad(loss)))(stacked, xs)
    alone = jax.jit(jax.grad(loss))
    for k in range(3):
        one = alone(members[k], xs[k])
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a[k], b, atol=1e-5, rtol=1e-5), together, one)


def test_implementation_never_changes_the_parameters():
    x = jnp.asarray(_inputs())
    trees = [jax.jit(_model("gru", impl, bidirectional=True, weight_init="torch").init)(
        jax.random.key(4), x) for impl in ("fused", "scan")]
    assert jax.tree_util.tree_structure(trees[0]) == jax.tree_util.tree_structure(trees[1])
    jax.tree_util.tree_map(np.testing.assert_array_equal, trees[0], trees[1])  # same names, shapes and values


def test_unknown_recurrent_implementation_is_refused():
    with pytest.raises(InputError, match="recurrent implementation must be one of fused, scan, got 'cudnn'"):
        _model("lstm", "cudnn").init(jax.random.key(0), jnp.asarray(_inputs()))
