"""Whole LSTM and GRU layers over a sequence, with backward passes written out rather than left to autodiff.

Autodiff of a step-by-step scan stores every intermediate of every step (14 arrays per LSTM step) and runs a
reverse loop of about 25 small kernels per step. On a CPU each kernel costs a dispatch, and at hidden 48 and
batch 64 those dispatches rival the matmuls. Here each step of the forward loop stores one buffer laid out for
the backward: the factors its gradients are multiplied by, then the matmul's input row ``[x_t, h_prev, 1]``.
The reverse loop then carries only the hidden-state recurrence (one ``dgates @ W_hh^T`` per step) plus one
accumulating matmul for all weight gradients, ``[x_t, h_prev, 1]^T @ dgates``, off that critical path.

Measured on 2 CPU cores (benchmarks/NOTES.md): doing the weight gradients after the loop as single matmuls over
all steps, as cuDNN does, was slower here, because the (T, B, 4H) buffers and their transposes fall out of cache,
while the per-step matmuls run on the second core beside the recurrence.

Arrays are time-major: inputs ``(T, B, F)``, outputs ``(T, B, H)``. Equations, gate order and weight layout are
PyTorch's (jaxhw.models.recurrent); ``reverse`` runs from the last step to the first.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array


def _with_ones(x: Array) -> Array:
    """``[x, 1]``: a matmul by ``[W; b]`` adds the bias, and its transpose gathers the bias gradient."""
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def _with_bias_row(*weights: Array, bias: Array) -> Array:
    """``[W_1; ...; b]``: the matrix that multiplies a row ``[x_1, ..., 1]``."""
    return jnp.concatenate([*weights, bias[None]], axis=0)


# ------------------------------------------------------------------------------------------------------ LSTM
def _lstm_loop(x: Array, weights: Array, h0: Array, c0: Array, reverse: bool, keep: bool):
    """The forward loop with ``weights = [W_ih; W_hh; b]``; with ``keep`` also each step's saved buffer."""
    hidden = h0.shape[-1]
    ones = jnp.ones(x.shape[1:-1] + (1,), x.dtype)

    def step(carry, x_t):
        c, h = carry
        row = jnp.concatenate([x_t, h, ones], axis=-1)
        gates = row @ weights
        i, f, o = (jax.nn.sigmoid(gates[:, k * hidden:(k + 1) * hidden]) for k in (0, 1, 3))
        g = jnp.tanh(gates[:, 2 * hidden:3 * hidden])
        c_new = f * c + i * g
        tanh_c = jnp.tanh(c_new)
        h_new = o * tanh_c
        if not keep:
            return (c_new, h_new), h_new
        # d gates = [dc, dc, dc, dh] * factors; dc gains dh * o (1 - tanh^2 c); dc_prev = dc * f.
        factors = jnp.concatenate([g * i * (1 - i), c * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o),
                                   o * (1 - tanh_c * tanh_c), f], axis=-1)
        return (c_new, h_new), (h_new, factors, row)

    (c, h), outputs = jax.lax.scan(step, (c0, h0), x, reverse=reverse)
    return outputs, c, h


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def lstm_layer(x: Array, w_ih: Array, w_hh: Array, bias: Array, h0: Array, c0: Array, reverse: bool = False):
    """torch.nn.LSTM's layer: ``(hs (T, B, H), c_last, h_last)`` from time-major x; ``bias`` is b_ih + b_hh."""
    hs, c, h = _lstm_loop(x, _with_bias_row(w_ih, w_hh, bias=bias), h0, c0, reverse, keep=False)
    return hs, c, h


def _lstm_fwd(x, w_ih, w_hh, bias, h0, c0, reverse):
    (hs, factors, rows), c, h = _lstm_loop(x, _with_bias_row(w_ih, w_hh, bias=bias), h0, c0, reverse, keep=True)
    return (hs, c, h), (w_ih, w_hh, factors, rows)


def _lstm_bwd(reverse, residuals, cotangents):
    w_ih, w_hh, factors, rows = residuals
    d_hs, d_c_last, d_h_last = cotangents
    hidden, features = w_hh.shape[0], w_ih.shape[0]
    w_hh_t, w_ih_t = w_hh.T, w_ih.T

    def step(carry, inputs):
        d_h, d_c, d_weights = carry
        kept, d_out, row = inputs
        d_h = d_h + d_out
        d_c = d_c + d_h * kept[:, 4 * hidden:5 * hidden]
        d_gates = jnp.concatenate([d_c, d_c, d_c, d_h], axis=-1) * kept[:, :4 * hidden]
        carry = (d_gates @ w_hh_t, d_c * kept[:, 5 * hidden:], d_weights + row.T @ d_gates)
        return carry, d_gates @ w_ih_t  # the inputs' gradient (dropped by XLA where nothing uses it)

    start = (d_h_last, d_c_last, jnp.zeros((features + hidden + 1, 4 * hidden), w_hh.dtype))
    (d_h0, d_c0, d_weights), d_x = jax.lax.scan(step, start, (factors, d_hs, rows), reverse=not reverse)
    return (d_x, d_weights[:features], d_weights[features:-1], d_weights[-1], d_h0, d_c0)


lstm_layer.defvjp(_lstm_fwd, _lstm_bwd)


# ------------------------------------------------------------------------------------------------------- GRU
def _gru_loop(x: Array, input_weights: Array, hidden_weights: Array, h0: Array, reverse: bool, keep: bool):
    """The forward loop with ``input_weights = [W_ih; b_ih]`` and ``hidden_weights = [W_hh; b_hh]``."""
    hidden = h0.shape[-1]

    def step(h, x_t):
        x_row, h_row = _with_ones(x_t), _with_ones(h)
        gates_x, gates_h = x_row @ input_weights, h_row @ hidden_weights
        r = jax.nn.sigmoid(gates_x[:, :hidden] + gates_h[:, :hidden])
        z = jax.nn.sigmoid(gates_x[:, hidden:2 * hidden] + gates_h[:, hidden:2 * hidden])
        n_h = gates_h[:, 2 * hidden:]
        n = jnp.tanh(gates_x[:, 2 * hidden:] + r * n_h)
        h_new = (1.0 - z) * n + z * h
        if not keep:
            return h_new, h_new
        # With dn = dh (1 - z)(1 - n^2): d gates_x = [dn n_h r (1 - r), dh (h - n) z (1 - z), dn], d gates_h the
        # same but dn r in the n gate, and dh_prev = dh z + d gates_h @ W_hh^T.
        factors = jnp.concatenate([(1.0 - z) * (1.0 - n * n), n_h * r * (1.0 - r), (h - n) * z * (1.0 - z), z, r],
                                  axis=-1)
        return h_new, (h_new, factors, x_row, h_row)

    h, outputs = jax.lax.scan(step, h0, x, reverse=reverse)
    return outputs, h


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def gru_layer(x: Array, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array, h0: Array, reverse: bool = False):
    """torch.nn.GRU's layer: ``(hs (T, B, H), h_last)`` from time-major x."""
    hs, h = _gru_loop(x, _with_bias_row(w_ih, bias=b_ih), _with_bias_row(w_hh, bias=b_hh), h0, reverse, keep=False)
    return hs, h


def _gru_fwd(x, w_ih, w_hh, b_ih, b_hh, h0, reverse):
    input_weights, hidden_weights = _with_bias_row(w_ih, bias=b_ih), _with_bias_row(w_hh, bias=b_hh)
    (hs, factors, x_rows, h_rows), h = _gru_loop(x, input_weights, hidden_weights, h0, reverse, keep=True)
    return (hs, h), (w_ih, w_hh, factors, x_rows, h_rows)


def _gru_bwd(reverse, residuals, cotangents):
    w_ih, w_hh, factors, x_rows, h_rows = residuals
    d_hs, d_h_last = cotangents
    hidden = w_hh.shape[0]
    w_hh_t, w_ih_t = w_hh.T, w_ih.T

    def step(carry, inputs):
        d_h, d_input_weights, d_hidden_weights = carry
        kept, d_out, x_row, h_row = inputs
        d_h = d_h + d_out
        d_n = d_h * kept[:, :hidden]
        d_r = d_n * kept[:, hidden:2 * hidden]
        d_z = d_h * kept[:, 2 * hidden:3 * hidden]
        d_gates_x = jnp.concatenate([d_r, d_z, d_n], axis=-1)
        d_gates_h = jnp.concatenate([d_r, d_z, d_n * kept[:, 4 * hidden:]], axis=-1)
        carry = (d_h * kept[:, 3 * hidden:4 * hidden] + d_gates_h @ w_hh_t, d_input_weights + x_row.T @ d_gates_x,
                 d_hidden_weights + h_row.T @ d_gates_h)
        return carry, d_gates_x @ w_ih_t

    start = (d_h_last, jnp.zeros((w_ih.shape[0] + 1, 3 * hidden), w_ih.dtype),
             jnp.zeros((hidden + 1, 3 * hidden), w_hh.dtype))
    (d_h0, d_input_weights, d_hidden_weights), d_x = jax.lax.scan(step, start, (factors, d_hs, x_rows, h_rows),
                                                                      reverse=not reverse)
    return (d_x, d_input_weights[:-1], d_hidden_weights[:-1], d_input_weights[-1], d_hidden_weights[-1], d_h0)


gru_layer.defvjp(_gru_fwd, _gru_bwd)
