"""Sequence classifiers for (batch, time, features) inputs, one per model family of homework problem 5.

Every model is called as ``model.apply(variables, x, train=bool, rngs={"dropout": key})`` and returns class
logits; dropout sits before the classifier head (and between recurrent layers, and inside the Transformer's
blocks), active only when ``train`` is True.

- ``SequenceMLP``: flattens time and features, so every (step, feature) pair has its own weights.
- ``SequenceCNN``: 1-D convolutions over time with shared weights, then global average pooling over time;
  its receptive field, ``1 + (kernel_size - 1) * sum(dilations)`` steps, bounds which time steps it can relate.
- ``RecurrentClassifier``: a PyTorch-exact LSTM or GRU (jaxhw.models.recurrent); the final hidden state
  (both directions when bidirectional) feeds the head.
- ``TransformerClassifier``: a linear embedding plus sinusoidal positional encoding, pre-LayerNorm
  self-attention blocks, mean pooling over time.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError
from jaxhw.models.layers import conv
from jaxhw.models.recurrent import GRU, LSTM


def _check_sequences(x: jax.Array, model: str) -> None:
    if x.ndim != 3:
        raise InputError(f"{model} expects (batch, time, features) inputs, got shape {tuple(x.shape)}")


def _head(x: jax.Array, num_classes: int, dropout: float, train: bool) -> jax.Array:
    x = nn.Dropout(dropout, deterministic=not train)(x)
    return nn.Dense(num_classes, name="head")(x)


class SequenceMLP(nn.Module):
    """Flatten (time x features), then Dense+ReLU per hidden width with dropout, then the class logits."""

    hidden: Sequence[int] = (32, 32)
    num_classes: int = 2
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        _check_sequences(x, "SequenceMLP")
        x = x.reshape((x.shape[0], -1))
        for index, width in enumerate(self.hidden):
            if index:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = nn.relu(nn.Dense(width, name=f"hidden{index}")(x))
        return _head(x, self.num_classes, self.dropout, train)


class SequenceCNN(nn.Module):
    """Conv1d+ReLU layers over time ('same' padding, optional dilations), global average pooling, the head."""

    channels: int = 32
    kernel_size: int = 5
    dilations: Sequence[int] = (1, 2, 4, 8)
    num_classes: int = 2
    dropout: float = 0.1
    conv_implementation: str = "auto"  # see jaxhw.models.layers.Conv; the parameters do not depend on it

    @property
    def receptive_field(self) -> int:
        """How many consecutive time steps one output of the last convolution sees."""
        return 1 + (self.kernel_size - 1) * int(sum(self.dilations))

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        _check_sequences(x, "SequenceCNN")
        for index, dilation in enumerate(self.dilations):
            x = nn.relu(conv(self.channels, (self.kernel_size,), x.shape[-1], dilation=dilation,
                             implementation=self.conv_implementation, name=f"conv{index}")(x))
        return _head(x.mean(axis=1), self.num_classes, self.dropout, train)


class RecurrentClassifier(nn.Module):
    """An LSTM or GRU (``cell``) over time; the last layer's final hidden state(s) feed the head."""

    cell: str = "lstm"  # "lstm" or "gru"
    hidden_size: int = 48
    num_layers: int = 1
    bidirectional: bool = False
    num_classes: int = 2
    dropout: float = 0.1
    implementation: str = "fused"  # see jaxhw.models.recurrent; the parameters do not depend on it

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        _check_sequences(x, "RecurrentClassifier")
        layers = {"lstm": LSTM, "gru": GRU}
        if self.cell not in layers:
            raise InputError(f"cell must be one of {', '.join(layers)}, got {self.cell!r}")
        rnn = layers[self.cell](self.hidden_size, self.num_layers, self.bidirectional, dropout=self.dropout,
                                implementation=self.implementation, name="rnn")
        _, state = rnn(x, train=train)
        h_n = state[0] if self.cell == "lstm" else state
        directions = 2 if self.bidirectional else 1
        last = jnp.concatenate(list(h_n[-directions:]), axis=-1)  # the last layer's directions, as torch orders h_n
        return _head(last, self.num_classes, self.dropout, train)


def sinusoidal_positions(length: int, width: int) -> np.ndarray:
    """The fixed positional encoding of "Attention is all you need": sin on even, cos on odd channels."""
    positions = np.arange(length)[:, None]
    rates = np.exp(-np.log(10000.0) * (np.arange(0, width, 2) / width))
    table = np.zeros((length, width), np.float32)
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: width // 2])
    return table


class TransformerBlock(nn.Module):
    """Pre-LayerNorm encoder block: x + Attention(LN(x)), then x + MLP(LN(x)), dropout on both branches."""

    num_heads: int = 4
    mlp_dim: int = 64
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        width = x.shape[-1]
        y = nn.MultiHeadDotProductAttention(self.num_heads, dropout_rate=self.dropout, name="attention")(
            nn.LayerNorm(name="attention_norm")(x), deterministic=not train)
        x = x + nn.Dropout(self.dropout, deterministic=not train)(y)
        hidden = nn.Dense(self.mlp_dim, name="mlp_in")(nn.LayerNorm(name="mlp_norm")(x))
        y = nn.Dense(width, name="mlp_out")(nn.gelu(hidden))
        return x + nn.Dropout(self.dropout, deterministic=not train)(y)


class TransformerClassifier(nn.Module):
    """Embedding + sinusoidal positions, ``num_layers`` self-attention blocks, LayerNorm, mean over time, head."""

    width: int = 32
    num_heads: int = 4
    num_layers: int = 2
    mlp_dim: int = 64
    num_classes: int = 2
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        _check_sequences(x, "TransformerClassifier")
        if self.width % self.num_heads or self.width % 2:
            raise InputError(f"width {self.width} must be even and divisible by num_heads {self.num_heads}")
        x = nn.Dense(self.width, name="embed")(x) + sinusoidal_positions(x.shape[1], self.width)
        for index in range(self.num_layers):
            x = TransformerBlock(self.num_heads, self.mlp_dim, self.dropout, name=f"block{index}")(x, train=train)
        return _head(nn.LayerNorm(name="norm")(x).mean(axis=1), self.num_classes, self.dropout, train)


# The models compared in jaxhw.experiments.timeseries, sized to comparable parameter counts (11-14k on 8 features).
SEQUENCE_MODELS = {
    "mlp": lambda num_classes: SequenceMLP((32, 32), num_classes),
    "cnn": lambda num_classes: SequenceCNN(28, 5, (1, 2, 4, 8), num_classes),  # receptive field 61 steps
    "cnn_local": lambda num_classes: SequenceCNN(40, 3, (1, 1, 1), num_classes),  # receptive field 7 steps
    "lstm": lambda num_classes: RecurrentClassifier("lstm", 48, num_classes=num_classes),
    "gru": lambda num_classes: RecurrentClassifier("gru", 56, num_classes=num_classes),
    "transformer": lambda num_classes: TransformerClassifier(32, 4, 1, 96, num_classes),
}


def build_sequence_model(name: str, num_classes: int = 2) -> nn.Module:
    """A sequence classifier by name (see SEQUENCE_MODELS)."""
    if name not in SEQUENCE_MODELS:
        raise InputError(f"unknown sequence model {name!r}: expected one of {', '.join(SEQUENCE_MODELS)}")
    return SEQUENCE_MODELS[name](num_classes)
