"""jaxhw's Conv (both implementations) and max_pool_2x2 against Flax's nn.Conv and nn.max_pool, values and
gradients; and parameters that do not depend on the convolution's implementation (portable checkpoints)."""
import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from jaxhw.errors import InputError
from jaxhw.models.autoencoder import ConvAutoencoder
from jaxhw.models.cnn import CNN
from jaxhw.models.layers import Conv, max_pool_2x2, normalize_by_batch
from jaxhw.models.sequence import SequenceCNN
from jaxhw.training import create_train_state
from jaxhw.training.checkpoint import CheckpointStore


@pytest.mark.parametrize("implementation", ["patches", "xla"])
@pytest.mark.parametrize("shape, window, dilation", [((2, 9, 7, 3), (3, 3), 1), ((2, 9, 7, 3), (2, 3), (2, 1)),
                                                     ((3, 20, 4), (5,), 2), ((3, 20, 4), (4,), 3),
                                                     # window x channels <= 5 outputs: the weight gradient from
                                                     # transposed patches (jaxhw.models.convolution)
                                                     ((2, 9, 7, 1), (2, 2), 1), ((3, 20, 1), (4,), 3)])
def test_conv_equals_nn_conv(shape, window, dilation, implementation):
    x = jax.random.normal(jax.random.key(0), shape)
    reference = nn.Conv(5, window, padding="SAME", kernel_dilation=dilation)
    variables = reference.init(jax.random.key(1), x)
    variables = jax.tree_util.tree_map(lambda a: a + 0.1, variables)  # non-zero bias too
    ours = Conv(5, window, kernel_dilation=dilation, implementation=implementation)
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=1e-5)
    grad = lambda m: jax.grad(lambda v, x: (m.apply(v, x) ** 2).sum(), argnums=(0, 1))(variables, x)  # noqa: E731
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), grad(ours),
                           grad(reference))


def test_unknown_conv_implementation_is_refused():
    with pytest.raises(InputError, match="conv implementation must be one of auto, patches, xla, got 'cudnn'"):
        Conv(2, (3,), implementation="cudnn").init(jax.random.key(0), np.zeros((1, 5, 1), np.float32))


def test_max_pool_2x2_equals_nn_max_pool():
    x = jax.random.normal(jax.random.key(2), (2, 8, 6, 3))
    pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(max_pool_2x2(x), pool(x))
    np.testing.assert_array_equal(jax.grad(lambda x: (max_pool_2x2(x) ** 2).sum())(x),
                                  jax.grad(lambda x: (pool(x) ** 2).sum())(x))


PORTABLE_MODELS = {
    "cnn": (lambda impl: CNN(conv_implementation=impl), (2, 28, 28, 1)),
    "conv_autoencoder": (lambda impl: ConvAutoencoder(conv_implementation=impl), (2, 28, 28, 1)),
    "sequence_cnn": (lambda impl: SequenceCNN(28, 5, (1, 2, 4, 8), conv_implementation=impl), (2, 50, 8)),
    "sequence_cnn_local": (lambda impl: SequenceCNN(40, 3, (1, 1, 1), conv_implementation=impl), (2, 50, 8)),
}


def _paths(tree) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)]


@pytest.mark.parametrize("name", list(PORTABLE_MODELS))
def test_both_conv_implementations_give_the_same_parameter_tree_and_outputs(name):
    build, shape = PORTABLE_MODELS[name]
    x = jax.random.uniform(jax.random.key(3), shape)
    patches, xla = build("patches"), build("xla")
    variables = patches.init(jax.random.key(4), x)
    assert _paths(variables) == _paths(xla.init(jax.random.key(4), x))
    # The same initial values too: Flax derives each layer's key from its name, not from its class.
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables, xla.init(jax.random.key(4), x))
    assert any("conv" in p for p in _paths(variables))
    np.testing.assert_allclose(patches.apply(variables, x), xla.apply(variables, x), atol=2e-5, rtol=1e-5)


def test_checkpoint_written_with_patches_restores_under_xla(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    written = create_train_state(CNN(conv_implementation="patches"), optax.adam(1e-3), x[:1], seed=1)
    store = CheckpointStore(tmp_path / "ck", description={"model": "cnn"})
    store.save(1, written, [{"epoch": 1}])
    store.close()
    other = create_train_state(CNN(conv_implementation="xla"), optax.adam(1e-3), x[:1], seed=2)
    store = CheckpointStore(tmp_path / "ck", description={"model": "cnn"}, resume=True)
    restored, epoch, history = store.restore(other)
    store.close()
    assert epoch == 1 and history == [{"epoch": 1}]
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored.params, written.params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored.batch_stats, written.batch_stats)
    logits = lambda state: state.apply_fn(state.variables, x.astype(np.float32) / 255, train=False)  # noqa: E731
    np.testing.assert_allclose(logits(restored), logits(written), atol=2e-5, rtol=1e-5)


def test_batch_normalisation_backward_equals_autodiff_of_its_formula():
    """normalize_by_batch's hand-written backward against jax.vjp of the textbook forward, with cotangents on the
    output and on both statistics (which training leaves at zero)."""
    rng = np.random.default_rng(5)
    x, d_y = (rng.normal(size=(4, 5, 3, 6)).astype(np.float32) * 2 + 1 for _ in range(2))
    scale, bias, d_mean, d_var = (rng.normal(size=6).astype(np.float32) for _ in range(4))

    def textbook(x, scale, bias):
        mean = x.mean(axis=(0, 1, 2))
        var = ((x - mean) ** 2).mean(axis=(0, 1, 2))
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias, mean, var

    outputs, pull = jax.vjp(lambda *a: normalize_by_batch(*a, 1e-5), x, scale, bias)
    expected_outputs, expected_pull = jax.vjp(textbook, x, scale, bias)
    for got, want in zip(outputs, expected_outputs, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for got, want in zip(pull((d_y, d_mean, d_var)), expected_pull((d_y, d_mean, d_var)), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
