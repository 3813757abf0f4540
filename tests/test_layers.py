"""PatchConv and max_pool_2x2 (the CPU-fast forms) against Flax's nn.Conv and nn.max_pool, values and gradients."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from jaxhw.models.layers import PatchConv, max_pool_2x2


@pytest.mark.parametrize("shape, window, dilation", [((2, 9, 7, 3), (3, 3), 1), ((2, 9, 7, 3), (2, 3), (2, 1)),
                                                     ((3, 20, 4), (5,), 2), ((3, 20, 4), (4,), 3)])
def test_patch_conv_equals_nn_conv(shape, window, dilation):
    x = jax.random.normal(jax.random.key(0), shape)
    reference = nn.Conv(5, window, padding="SAME", kernel_dilation=dilation)
    variables = reference.init(jax.random.key(1), x)
    variables = jax.tree_util.tree_map(lambda a: a + 0.1, variables)  # non-zero bias too
    ours = PatchConv(5, window, kernel_dilation=dilation)
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=1e-5)
    grad = lambda m: jax.grad(lambda v, x: (m.apply(v, x) ** 2).sum(), argnums=(0, 1))(variables, x)  # noqa: E731
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), grad(ours),
                           grad(reference))


def test_max_pool_2x2_equals_nn_max_pool():
    x = jax.random.normal(jax.random.key(2), (2, 8, 6, 3))
    pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(max_pool_2x2(x), pool(x))
    np.testing.assert_array_equal(jax.grad(lambda x: (max_pool_2x2(x) ** 2).sum())(x),
                                  jax.grad(lambda x: (pool(x) ** 2).sum())(x))
