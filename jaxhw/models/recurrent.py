"""PyTorch-exact recurrent layers: the counterparts of torch.nn.LSTM and torch.nn.GRU (batch_first=True).

Flax's own cells differ from PyTorch's: its LSTMCell keeps one bias per gate and its GRUCell puts the
hidden bias outside the reset product. These cells follow PyTorch's equations exactly and store their
weights in PyTorch's layout, only transposed to Flax's (in, out) convention, so jaxhw.torch_bridge
converts them one to one:

- LSTM, gates stacked i, f, g, o:  gates = x W_ih + b_ih + h W_hh + b_hh  (w_ih (F, 4H), w_hh (H, 4H))
  c' = f * c + i * g,  h' = o * tanh(c')
- GRU, gates stacked r, z, n:  r, z = sigmoid(x W_i{r,z} + b_i{r,z} + h W_h{r,z} + b_h{r,z})
  n = tanh(x W_in + b_in + r * (h W_hn + b_hn)),  h' = (1 - z) * n + z * h   (w_ih (F, 3H), w_hh (H, 3H))

``LSTM`` and ``GRU`` stack ``num_layers`` layers, one per direction (forward, then backward when
bidirectional), with dropout between layers in training as PyTorch does. ``implementation`` chooses how a layer
runs, never its parameters: "fused" (default) runs each layer with a hand-written backward pass
(jaxhw.models.recurrence); "scan" steps the cell with ``flax.linen.RNN`` and differentiates it by autodiff, the
reference the fused layers are tested against.
Parameters are created layer by layer, direction by direction, the order in which torch registers
``weight_ih_l{k}[_reverse]``: a torch module with L layers and D directions maps to L*D Flax layers.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError
from jaxhw.models.layers import check_init
from jaxhw.models.recurrence import gru_layer, lstm_layer

Array = jax.Array
RECURRENT_IMPLEMENTATIONS = ("fused", "scan")


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _stacked(init, gates: int):
    """Apply a (fan_in, H) initialiser gate by gate, as Flax initialises each gate's kernel apart."""

    def stacked(key, shape, dtype=jnp.float32):
        fan_in, width = shape
        keys = jax.random.split(key, gates)
        return jnp.concatenate([init(k, (fan_in, width // gates), dtype) for k in keys], axis=1)

    return stacked


class _TorchCell(nn.RNNCellBase):
    """Shared parameters of PyTorch's recurrent cells: w_ih (F, G*H), w_hh (H, G*H), b_ih, b_hh (G*H,)."""

    hidden_size: int
    use_bias: bool = True
    weight_init: str = "flax"  # "torch": U(-1/sqrt(H), 1/sqrt(H)) everywhere; "flax": lecun / orthogonal / 0
    gates = 1

    def _weights(self, in_features: int) -> tuple[Array, Array, Any, Any]:
        check_init(self.weight_init)
        width = self.gates * self.hidden_size
        if self.weight_init == "torch":
            input_init = recurrent_init = bias_init = _uniform(1.0 / np.sqrt(self.hidden_size))
        else:
            input_init = _stacked(nn.initializers.lecun_normal(), self.gates)
            recurrent_init = _stacked(nn.initializers.orthogonal(), self.gates)
            bias_init = nn.initializers.zeros_init()
        w_ih = self.param("w_ih", input_init, (in_features, width))
        w_hh = self.param("w_hh", recurrent_init, (self.hidden_size, width))
        if not self.use_bias:
            return w_ih, w_hh, 0.0, 0.0
        return w_ih, w_hh, self.param("b_ih", bias_init, (width,)), self.param("b_hh", bias_init, (width,))

    @property
    def num_feature_axes(self) -> int:
        return 1


class LSTMCell(_TorchCell):
    """One step of torch.nn.LSTM; the carry is (c, h) as in Flax, the output is h."""

    gates = 4

    @nn.compact
    def __call__(self, carry: tuple[Array, Array], x: Array) -> tuple[tuple[Array, Array], Array]:
        c, h = carry
        w_ih, w_hh, b_ih, b_hh = self._weights(x.shape[-1])
        gates = x @ w_ih + b_ih + h @ w_hh + b_hh
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    @nn.nowrap
    def initialize_carry(self, rng: Array, input_shape: tuple[int, ...]) -> tuple[Array, Array]:
        zeros = jnp.zeros((*input_shape[:-1], self.hidden_size), jnp.float32)
        return zeros, zeros


class GRUCell(_TorchCell):
    """One step of torch.nn.GRU (b_hn inside the reset product); the carry and the output are h."""

    gates = 3

    @nn.compact
    def __call__(self, h: Array, x: Array) -> tuple[Array, Array]:
        w_ih, w_hh, b_ih, b_hh = self._weights(x.shape[-1])
        x_r, x_z, x_n = jnp.split(x @ w_ih + b_ih, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ w_hh + b_hh, 3, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        h = (1.0 - z) * n + z * h
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng: Array, input_shape: tuple[int, ...]) -> Array:
        return jnp.zeros((*input_shape[:-1], self.hidden_size), jnp.float32)


class LSTMLayer(LSTMCell):
    """A whole (batch, time, features) sequence through one LSTM layer-direction: ``((c, h), outputs)``.

    The parameters of LSTMCell (the same names, shapes and initial values), run by ``lstm_layer`` with its own
    backward pass.
    """

    reverse: bool = False

    @nn.compact
    def __call__(self, x: Array, initial: tuple[Array, Array] | None = None) -> tuple[tuple[Array, Array], Array]:
        w_ih, w_hh, b_ih, b_hh = self._weights(x.shape[-1])
        bias = jnp.broadcast_to(jnp.asarray(b_ih + b_hh, w_hh.dtype), w_hh.shape[-1:])  # zeros without biases
        c0, h0 = initial if initial is not None else self.initialize_carry(None, x[:, 0].shape)
        outputs, c, h = lstm_layer(x.transpose(1, 0, 2), w_ih, w_hh, bias, h0, c0, self.reverse)
        return (c, h), outputs.transpose(1, 0, 2)


class GRULayer(GRUCell):
    """A whole (batch, time, features) sequence through one GRU layer-direction: ``(h, outputs)``, with the
    parameters of GRUCell, run by ``gru_layer`` with its own backward pass."""

    reverse: bool = False

    @nn.compact
    def __call__(self, x: Array, initial: Array | None = None) -> tuple[Array, Array]:
        w_ih, w_hh, b_ih, b_hh = self._weights(x.shape[-1])
        b_ih, b_hh = (jnp.broadcast_to(jnp.asarray(b, w_hh.dtype), w_hh.shape[-1:]) for b in (b_ih, b_hh))
        h0 = initial if initial is not None else self.initialize_carry(None, x[:, 0].shape)
        outputs, h = gru_layer(x.transpose(1, 0, 2), w_ih, w_hh, b_ih, b_hh, h0, self.reverse)
        return h, outputs.transpose(1, 0, 2)


class _Recurrent(nn.Module):
    """Stacked, optionally bidirectional recurrent layers over (batch, time, features) inputs."""

    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between layers in training, as torch's ``dropout`` argument
    use_bias: bool = True
    weight_init: str = "flax"
    implementation: str = "fused"  # "fused" or "scan": how the layers run; the parameters do not depend on it
    cell_type = LSTMCell
    layer_type = LSTMLayer

    def _check(self, x: Array) -> None:
        if x.ndim != 3:
            raise InputError(f"{type(self).__name__} expects (batch, time, features) inputs, got shape {x.shape}")
        if self.num_layers < 1 or self.hidden_size < 1:
            raise InputError(f"{type(self).__name__} needs num_layers >= 1 and hidden_size >= 1, "
                             f"got {self.num_layers} and {self.hidden_size}")
        if self.implementation not in RECURRENT_IMPLEMENTATIONS:
            raise InputError(f"recurrent implementation must be one of {', '.join(RECURRENT_IMPLEMENTATIONS)}, "
                             f"got {self.implementation!r}")

    def _run(self, x: Array, initial: list | None, train: bool) -> tuple[Array, list]:
        """Outputs of the last layer and the final carry of every layer-direction, in torch's order."""
        self._check(x)
        directions = ("", "_reverse") if self.bidirectional else ("",)  # torch's parameter name suffixes
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            outputs = []
            for d, suffix in enumerate(directions):
                index = layer * len(directions) + d
                name, reverse = f"l{layer}{suffix}", suffix == "_reverse"
                start = None if initial is None else initial[index]
                if self.implementation == "fused":
                    layer_run = self.layer_type(self.hidden_size, self.use_bias, self.weight_init, reverse, name=name)
                    carry, y = layer_run(x, start)
                else:
                    cell = self.cell_type(self.hidden_size, self.use_bias, self.weight_init, name=name)
                    rnn = nn.RNN(cell, return_carry=True, reverse=reverse, keep_order=True)
                    carry, y = rnn(x, initial_carry=start)
                finals.append(carry)
                outputs.append(y)
            x = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
        return x, finals

    def _num_states(self) -> int:
        return self.num_layers * (2 if self.bidirectional else 1)

    def _check_state(self, state: Array, x: Array, what: str) -> None:
        expected = (self._num_states(), x.shape[0], self.hidden_size)
        if tuple(state.shape) != expected:
            raise InputError(f"{what} must have shape (num_layers * directions, batch, hidden) = {expected}, "
                             f"got {tuple(state.shape)}")


class LSTM(_Recurrent):
    """torch.nn.LSTM(batch_first=True): ``(outputs (B, T, D*H), (h_n, c_n) each (L*D, B, H))``."""

    cell_type = LSTMCell
    layer_type = LSTMLayer

    @nn.compact
    def __call__(self, x: Array, initial_state: tuple[Array, Array] | None = None,
                 train: bool = False) -> tuple[Array, tuple[Array, Array]]:
        initial = None
        if initial_state is not None:
            h0, c0 = initial_state
            self._check_state(h0, x, "h_0")
            self._check_state(c0, x, "c_0")
            initial = [(c0[k], h0[k]) for k in range(self._num_states())]
        outputs, finals = self._run(x, initial, train)
        h_n = jnp.stack([h for _, h in finals])
        c_n = jnp.stack([c for c, _ in finals])
        return outputs, (h_n, c_n)


class GRU(_Recurrent):
    """torch.nn.GRU(batch_first=True): ``(outputs (B, T, D*H), h_n (L*D, B, H))``."""

    cell_type = GRUCell
    layer_type = GRULayer

    @nn.compact
    def __call__(self, x: Array, initial_state: Array | None = None, train: bool = False) -> tuple[Array, Array]:
        initial = None
        if initial_state is not None:
            self._check_state(initial_state, x, "h_0")
            initial = [initial_state[k] for k in range(self._num_states())]
        outputs, finals = self._run(x, initial, train)
        return outputs, jnp.stack(finals)
