"""Layer constructors shared by the models: Flax's default initialisation or PyTorch's.

PyTorch initialises Linear and Conv weights with kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
1/sqrt(fan_in)), and biases with the same bound. Flax uses lecun_normal weights and zero biases.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError
from jaxhw.models.convolution import patches_conv

INITS = ("flax", "torch")

# kaiming_uniform(a=sqrt(5)): gain^2 = 2 / (1 + 5) = 1/3, bound = sqrt(3 * (1/3) / fan_in) = 1/sqrt(fan_in).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
    """PyTorch's bias initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jax.numpy.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")


def dense(features: int, fan_in: int, init: str = "flax", name: str | None = None) -> nn.Dense:
    """nn.Dense with Flax's or PyTorch's default initialisation (the counterpart of nn.Linear)."""
    check_init(init)
    if init == "torch":
        return nn.Dense(features, kernel_init=torch_kernel_init, bias_init=torch_bias_init(fan_in), name=name)
    return nn.Dense(features, name=name)


CONV_IMPLEMENTATIONS = ("auto", "patches", "xla")


def resolve_conv_implementation(implementation: str) -> str:
    """"patches" or "xla" for a requested implementation; "auto" is "patches" on the CPU, "xla" elsewhere."""
    if implementation not in CONV_IMPLEMENTATIONS:
        raise InputError(f"conv implementation must be one of {', '.join(CONV_IMPLEMENTATIONS)}, "
                         f"got {implementation!r}")
    if implementation == "auto":
        return "patches" if jax.default_backend() == "cpu" else "xla"
    return implementation


class Conv(nn.Module):
    """A stride-1, "SAME"-padded, optionally dilated N-d convolution: nn.Conv1d/2d(padding="same", dilation=d).

    Parameters ``kernel`` (*window, in, out) and ``bias`` (out,), the layout of ``flax.linen.Conv``, whatever
    the implementation, so a checkpoint or a torch_bridge mapping made with one restores under the other:
    - "patches": one matmul over shifted copies of the input (im2col, jaxhw.models.convolution, with its own
      backward pass). XLA:CPU runs ``lax.conv`` inside a loop body (the ``lax.scan`` of a jitted epoch)
      several times slower than at top level (jax-ml/jax#12868); slices, a concatenation and a matmul have no
      such penalty (measured for the CNN at batch 64: 36 ms per step in a scan against 225 ms with ``lax.conv``).
    - "xla": ``lax.conv_general_dilated`` (cuDNN on a GPU, the MXU on a TPU).
    - "auto" (default): "patches" on the CPU, "xla" elsewhere, decided when the model is traced.
    """

    features: int
    kernel_size: Sequence[int]
    kernel_dilation: int | Sequence[int] = 1
    implementation: str = "auto"
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
    bias_init: Callable[..., Any] = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        window = tuple(self.kernel_size)
        dilation = ((self.kernel_dilation,) * len(window) if isinstance(self.kernel_dilation, int)
                    else tuple(self.kernel_dilation))
        if x.ndim != len(window) + 2:
            raise InputError(f"a {len(window)}-d convolution expects inputs of {len(window) + 2} dimensions "
                             f"(N, ..., C), got shape {tuple(x.shape)}")
        kernel = self.param("kernel", self.kernel_init, (*window, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        totals = [(k - 1) * d for k, d in zip(window, dilation)]
        padding = [(t // 2, t - t // 2) for t in totals]
        if resolve_conv_implementation(self.implementation) == "xla":
            spatial = tuple(range(1, x.ndim - 1))  # NHWC inputs and outputs, HWIO kernels (as nn.Conv)
            images = (0, x.ndim - 1, *spatial)
            numbers = jax.lax.ConvDimensionNumbers(images, (x.ndim - 1, x.ndim - 2, *range(len(window))), images)
            y = jax.lax.conv_general_dilated(x, kernel, (1,) * len(window), padding, rhs_dilation=dilation,
                                             dimension_numbers=numbers)
            return y + bias
        return patches_conv(x, kernel, bias, dilation, tuple(padding))


def conv(features: int, kernel_size: Sequence[int], in_features: int, init: str = "flax",
         dilation: int | Sequence[int] = 1, implementation: str = "auto", name: str | None = None) -> Conv:
    """A "SAME" convolution (nn.Conv1d/2d with padding="same") with Flax's or PyTorch's default initialisation."""
    check_init(init)
    kernel_size = tuple(kernel_size)
    inits = {}
    if init == "torch":
        fan_in = int(np.prod(kernel_size)) * in_features
        inits = {"kernel_init": torch_kernel_init, "bias_init": torch_bias_init(fan_in)}
    return Conv(features, kernel_size, kernel_dilation=dilation, implementation=implementation, name=name, **inits)


def _first_max_of_windows(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The max of every 2x2 window of NHWC ``x`` and the row-major position (0..3) of its first maximum.

    The max is taken from the position, so the two always agree, however XLA fuses or recomputes ``x``.
    """
    n, h, w, c = x.shape
    windows = x.reshape(n, h // 2, 2, w // 2, 2, c)
    top_left, top_right = windows[:, :, 0, :, 0], windows[:, :, 0, :, 1]
    bottom_left, bottom_right = windows[:, :, 1, :, 0], windows[:, :, 1, :, 1]
    top_second = top_right > top_left  # strict: a tie goes to the earlier position, as PyTorch's does
    bottom_second = bottom_right > bottom_left
    top, bottom = jnp.where(top_second, top_right, top_left), jnp.where(bottom_second, bottom_right, bottom_left)
    from_bottom = bottom > top
    position = jnp.where(from_bottom, 2 + bottom_second, top_second.astype(jnp.int32)).astype(jnp.int8)
    return jnp.where(from_bottom, bottom, top), position


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """nn.MaxPool2d(2) on NHWC input (H and W even).

    Its gradient goes, as PyTorch's does, to the first maximum of each window in row-major order, in one
    elementwise pass: ``nn.max_pool``'s select-and-scatter costs 10x more on the CPU (12 ms against 1.2 ms at
    batch 64 x 28 x 28 x 16), and autodiff of the max, which shares the gradient among ties, takes four passes.
    The backward pass uses the position found in the forward pass, not a comparison with the pooled value: XLA may
    recompute ``x`` in another fusion with other rounding, and an equality test would then find no maximum.
    """
    return _first_max_of_windows(x)[0]


def _max_pool_bwd(position, d_y):
    n, h2, w2, c = d_y.shape
    slots = [jnp.where(position == k, d_y, jnp.zeros((), d_y.dtype)) for k in range(4)]
    top, bottom = jnp.stack(slots[:2], axis=3), jnp.stack(slots[2:], axis=3)  # (n, h2, w2, 2, c)
    return (jnp.stack([top, bottom], axis=2).reshape(n, 2 * h2, 2 * w2, c),)


max_pool_2x2.defvjp(_first_max_of_windows, _max_pool_bwd)  # forward: (pooled, position to keep)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalize_by_batch(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float):
    """Train-mode batch normalisation over every axis but the last: ``(y, batch mean, biased batch variance)``.

    Its backward pass is the textbook one, two sums per channel and one pass over x:
    dx = scale / sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat)), where autodiff of the forward made about
    twice as many passes over the activations (measured in benchmarks/NOTES.md).
    """
    return _normalize_forward(x, scale, bias, epsilon)[0]


def _normalize_forward(x, scale, bias, epsilon):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).mean(axis=axes)
    inverse = jax.lax.rsqrt(var + epsilon)
    return ((x - mean) * inverse * scale + bias, mean, var), (x, mean, inverse, scale)


def _normalize_backward(epsilon, residuals, cotangents):
    x, mean, inverse, scale = residuals
    d_y, d_mean, d_var = cotangents
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    centred = x - mean
    x_hat = centred * inverse
    d_bias = d_y.sum(axis=axes)
    d_scale = (d_y * x_hat).sum(axis=axes)
    d_x = (scale * inverse) * (d_y - (d_bias + x_hat * d_scale) / count)
    d_x = d_x + (d_mean + 2.0 * d_var * centred) / count  # the statistics' own cotangents (zero in training)
    return d_x, d_scale, d_bias


normalize_by_batch.defvjp(_normalize_forward, _normalize_backward)


class TorchBatchNorm(nn.Module):
    """BatchNorm with PyTorch's exact semantics (nn.BatchNorm1d/2d): normalises over every axis but the last.

    Train mode normalises with the batch's mean and biased variance and updates the running statistics
    with PyTorch's momentum (0.1 here equals Flax's 0.9) using the *unbiased* batch variance, as PyTorch
    does; Flax's nn.BatchNorm stores the biased one. Eval mode uses the running statistics and changes
    nothing. Under jit with the batch sharded over devices the batch statistics are those of the global
    batch (as torch.nn.SyncBatchNorm computes them).
    """

    momentum: float = 0.1  # PyTorch's convention: running = (1 - momentum) * running + momentum * batch
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_mean = self.variable("batch_stats", "mean", lambda: jax.numpy.zeros((features,), jax.numpy.float32))
        running_var = self.variable("batch_stats", "var", lambda: jax.numpy.ones((features,), jax.numpy.float32))
        if not train:
            return (x - running_mean.value) * jax.lax.rsqrt(running_var.value + self.epsilon) * scale + bias
        y, mean, var = normalize_by_batch(x, scale, bias, self.epsilon)
        if not self.is_initializing():
            count = x.size // features
            unbiased = var * (count / max(count - 1, 1))
            running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
            running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
        return y


def batch_norm(kind: str = "torch", name: str | None = None) -> nn.Module:
    """A BatchNorm layer: "torch" (PyTorch-exact, the default) or "flax" (nn.BatchNorm, biased running var).

    Both take ``(x, train)`` through ``apply_batch_norm``.
    """
    if kind == "torch":
        return TorchBatchNorm(name=name)
    if kind == "flax":
        return nn.BatchNorm(momentum=0.9, epsilon=1e-5, name=name)
    raise ValueError(f"batchnorm must be 'torch' or 'flax', got {kind!r}")


def apply_batch_norm(layer: nn.Module, x: jax.Array, train: bool) -> jax.Array:
    """Call either BatchNorm kind in train or eval mode."""
    if isinstance(layer, nn.BatchNorm):
        return layer(x, use_running_average=not train)
    return layer(x, train=train)
