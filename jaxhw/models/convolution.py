"""Stride-1 convolutions as one matmul over the input's patches (im2col), with the backward pass written out.

Forward: the shifted copies of the padded input side by side, times the kernel as a matrix, plus the bias;
where the patches would be narrower than the output (a first layer on 1-channel images: 9 columns against 16
channels) a sum of shifted inputs times kernel rows instead, one elementwise pass with the bias in it. (Folding
the bias into the matmul through a column of ones was measured slower: the wider patches cost more than the
bias's own pass.) Backward, measured on 2 CPU cores (benchmarks/NOTES.md):

- the weight gradient is ``patches^T @ dy``. XLA:CPU has no kernel for a matmul whose operands are both
  contracted over their leading axis: it copies one of them transposed, and it chose the output gradient (the
  larger array for the first layer, whose patches have 9 columns against 16 output channels), then ran Eigen's
  matmul. Where the transposed patches are the smaller array they are built directly in that layout from the
  input's shifted copies, and the product is an ordinary matmul;
- the input gradient stays what autodiff of im2col gives, ``dy @ kernel^T`` summed back over the shifted
  windows in one fused pass. Writing it instead as a transposed convolution (the patches of ``dy`` times the
  flipped kernel) was measured slower: those patches have ``window x out`` columns, twice as many as the
  gradient of the patches in the second layer of the CNN.
"""
from __future__ import annotations

import functools
import itertools
from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def _shifted(padded: Array, leading: int, window: Sequence[int], dilation: Sequence[int],
             sizes: Sequence[int]) -> list[Array]:
    """The window's shifted views of a padded array whose spatial axes follow ``leading`` other axes."""
    return [padded[(*[slice(None)] * leading, *(slice(o * d, o * d + n) for o, d, n in zip(offset, dilation, sizes)))]
            for offset in itertools.product(*(range(k) for k in window))]


def patches(x: Array, window: Sequence[int], dilation: Sequence[int], padding: Sequence[tuple[int, int]]) -> Array:
    """im2col: (N, *spatial, prod(window) * C), the shifted copies of the padded input side by side, offsets major
    and channels minor (the row order of a (*window, C, O) kernel reshaped to a matrix)."""
    padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    return jnp.concatenate(_shifted(padded, 1, window, dilation, x.shape[1:-1]), axis=-1)


def _transposed_patches(x: Array, window: Sequence[int], dilation: Sequence[int],
                        padding: Sequence[tuple[int, int]]) -> Array:
    """The patches transposed, (prod(window) * C, N * prod(spatial)), built in that layout."""
    channels_first = jnp.moveaxis(x, -1, 0)  # (C, N, *spatial)
    padded = jnp.pad(channels_first, ((0, 0), (0, 0), *padding))
    shifted = _shifted(padded, 2, window, dilation, x.shape[1:-1])
    return jnp.stack(shifted).reshape(len(shifted) * x.shape[-1], -1)


def _matrix(kernel: Array) -> Array:
    """A (*window, C, O) kernel as the (prod(window) * C, O) matrix that multiplies the patches."""
    return kernel.reshape(-1, kernel.shape[-1])


def _sum_of_shifts(x: Array, kernel: Array, bias: Array, dilation: Sequence[int],
                   padding: Sequence[tuple[int, int]]) -> Array:
    """The convolution as a sum over window offsets and input channels of shifted inputs times a kernel row: one
    elementwise pass, for layers whose patches would be narrower than their output (a 1-channel input)."""
    padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    rows = iter(_matrix(kernel))
    y = bias
    for view in _shifted(padded, 1, kernel.shape[:-2], dilation, x.shape[1:-1]):
        for channel in range(x.shape[-1]):
            y = y + view[..., channel:channel + 1] * next(rows)
    return y


def _convolve(x: Array, kernel: Array, bias: Array, dilation: Sequence[int],
              padding: Sequence[tuple[int, int]]) -> tuple[Array, Array | None]:
    """The output, and the patches where they were built (the weight gradient reuses them)."""
    if _transposed_is_smaller(kernel):
        return _sum_of_shifts(x, kernel, bias, dilation, padding), None
    columns = patches(x, kernel.shape[:-2], dilation, padding)
    return columns @ _matrix(kernel) + bias, columns


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def patches_conv(x: Array, kernel: Array, bias: Array, dilation: tuple[int, ...],
                 padding: tuple[tuple[int, int], ...]) -> Array:
    """A stride-1 convolution of NHWC-like ``x`` with a (*window, C, O) kernel, plus bias: one matmul over patches."""
    return _convolve(x, kernel, bias, dilation, padding)[0]


def _transposed_is_smaller(kernel: Array) -> bool:
    """Whether the transposed patches (window x C rows) are no larger than the output gradient (O columns)."""
    return kernel[..., 0].size <= kernel.shape[-1]


def _conv_fwd(x, kernel, bias, dilation, padding):
    # Keep what the weight gradient needs: the input (to build the transposed patches) or the patches themselves.
    y, columns = _convolve(x, kernel, bias, dilation, padding)
    return y, (x, kernel, columns)


def _conv_bwd(dilation, padding, residuals, d_y):
    x, kernel, columns = residuals
    window, outputs = kernel.shape[:-2], kernel.shape[-1]
    d_flat = d_y.reshape(-1, outputs)
    if columns is None:
        d_matrix = _transposed_patches(x, window, dilation, padding) @ d_flat
    else:
        d_matrix = jnp.einsum("nk,no->ko", columns.reshape(-1, columns.shape[-1]), d_flat)
    _, sum_back = jax.vjp(lambda x: patches(x, window, dilation, padding), x)
    d_x = sum_back(d_y @ _matrix(kernel).T)[0]
    return d_x, d_matrix.reshape(kernel.shape), d_y.sum(axis=tuple(range(d_y.ndim - 1)))


patches_conv.defvjp(_conv_fwd, _conv_bwd)
