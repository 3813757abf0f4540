"""The autoencoders of homework problem 2: a dense one (the homework's) and a convolutional one.

Both map an image to a small code (``encode``, default 2 numbers) and the code back to an image
(``decode``, sigmoid output so pixels lie in [0, 1] like the ToTensor-scaled targets). ``__call__(x, train)``
is ``decode(encode(x))``. Their PyTorch twins, which ``jaxhw.torch_bridge`` maps one to one:

    dense: encoder nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                 nn.Linear(64, latent))
           decoder nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                                 nn.Linear(128, 784), nn.Sigmoid())
    conv:  encoder nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(32 * 7 * 7, latent))
           decoder nn.Sequential(nn.Linear(latent, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                 nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(),
                                 nn.Upsample(scale_factor=2), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid())

The conv decoder upsamples (nearest) and convolves instead of using ConvTranspose2d, which avoids the
checkerboard artefacts of strided transposed convolutions and needs no extra torch_bridge converter.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError
from jaxhw.models.layers import INITS, conv, dense, max_pool_2x2


def check_latent(latent: int) -> None:
    """Raise InputError unless the code size is a positive integer."""
    if not isinstance(latent, (int, np.integer)) or isinstance(latent, bool) or latent < 1:
        raise InputError(f"latent size must be a positive integer, got {latent!r}")


class DenseAutoencoder(nn.Module):
    """784 -> 128 -> 64 -> latent -> 64 -> 128 -> 784, ReLU between layers, sigmoid output.

    Takes flattened images (N, 784) (anything of N x 784 values is flattened) and returns (N, 784).
    """

    latent: int = 2
    hidden: Sequence[int] = (128, 64)
    num_pixels: int = 28 * 28
    weight_init: str = "flax"  # "flax" or "torch" (PyTorch's default initialisation)
    takes_flat_images: ClassVar[bool] = True  # the training objective flattens images for this model

    def setup(self):
        check_latent(self.latent)
        widths = (self.num_pixels, *self.hidden, self.latent)
        self.encoder = [dense(n_out, n_in, self.weight_init) for n_in, n_out in zip(widths[:-1], widths[1:])]
        back = widths[::-1]
        self.decoder = [dense(n_out, n_in, self.weight_init) for n_in, n_out in zip(back[:-1], back[1:])]

    def encode(self, x: jax.Array) -> jax.Array:
        """Images (N, 784) or (N, 28, 28, 1) in [0, 1] -> codes (N, latent)."""
        x = x.reshape((x.shape[0], -1))  # nn.Flatten()
        if x.shape[-1] != self.num_pixels:
            raise InputError(f"DenseAutoencoder expects {self.num_pixels} pixels per image, got {x.shape[-1]}")
        for layer in self.encoder[:-1]:
            x = nn.relu(layer(x))
        return self.encoder[-1](x)  # the code is linear: no activation on the bottleneck

    def decode(self, z: jax.Array) -> jax.Array:
        """Codes (N, latent) -> flattened images (N, 784) in (0, 1)."""
        for layer in self.decoder[:-1]:
            z = nn.relu(layer(z))
        return nn.sigmoid(self.decoder[-1](z))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batchnorm: train and eval behave the same
        return self.decode(self.encode(x))


class ConvAutoencoder(nn.Module):
    """Conv(16)-ReLU-MaxPool, Conv(32)-ReLU-MaxPool, Linear to the code; mirrored with nearest upsampling.

    Takes NHWC images (N, 28, 28, 1) and returns the same shape.
    """

    latent: int = 2
    channels: Sequence[int] = (16, 32)
    image_size: int = 28
    image_channels: int = 1
    weight_init: str = "flax"
    conv_implementation: str = "auto"  # see jaxhw.models.layers.Conv; the parameters do not depend on it
    takes_flat_images: ClassVar[bool] = False

    def setup(self):
        check_latent(self.latent)
        downsample = 2 ** len(self.channels)
        if self.image_size % downsample:
            raise InputError(f"ConvAutoencoder: image size {self.image_size} must be divisible by {downsample}")
        inputs = (self.image_channels, *self.channels)
        self.encoder_convs = [conv(out, (3, 3), inp, self.weight_init, implementation=self.conv_implementation)
                              for inp, out in zip(inputs[:-1], inputs[1:])]
        self.bottom = (self.channels[-1], self.image_size // downsample, self.image_size // downsample)  # C, H, W
        flat = int(np.prod(self.bottom))
        self.to_code = dense(self.latent, flat, self.weight_init)
        self.from_code = dense(flat, self.latent, self.weight_init)
        outputs = inputs[::-1]
        self.decoder_convs = [conv(out, (3, 3), inp, self.weight_init, implementation=self.conv_implementation)
                              for inp, out in zip(outputs[:-1], outputs[1:])]

    def encode(self, x: jax.Array) -> jax.Array:
        """Images (N, 28, 28, 1) in [0, 1] -> codes (N, latent)."""
        expected = (self.image_size, self.image_size, self.image_channels)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise InputError(f"ConvAutoencoder expects NHWC images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        for layer in self.encoder_convs:
            x = max_pool_2x2(nn.relu(layer(x)))
        # Flatten in PyTorch's channel-first order so a torch Linear's weights map without permutation.
        x = x.transpose(0, 3, 1, 2).reshape((x.shape[0], -1))
        return self.to_code(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """Codes (N, latent) -> images (N, 28, 28, 1) in (0, 1)."""
        x = nn.relu(self.from_code(z))
        x = x.reshape((z.shape[0], *self.bottom)).transpose(0, 2, 3, 1)  # nn.Unflatten to C,H,W, then NHWC
        for i, layer in enumerate(self.decoder_convs):
            x = layer(upsample_nearest(x, 2))
            x = nn.relu(x) if i < len(self.decoder_convs) - 1 else nn.sigmoid(x)
        return x

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train
        return self.decode(self.encode(x))


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
    """nn.Upsample(scale_factor=factor, mode="nearest") on NHWC images: each pixel becomes a factor x factor block."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


AUTOENCODERS = {"dense": DenseAutoencoder, "conv": ConvAutoencoder}


def build_autoencoder(name: str = "dense", latent: int = 2, weight_init: str = "flax") -> nn.Module:
    """An autoencoder by name (see AUTOENCODERS), checking its arguments."""
    if name not in AUTOENCODERS:
        raise InputError(f"unknown model {name!r}: expected one of {', '.join(AUTOENCODERS)}")
    check_latent(latent)
    if weight_init not in INITS:
        raise InputError(f"weight init must be one of {INITS}, got {weight_init!r}")
    return AUTOENCODERS[name](latent=int(latent), weight_init=weight_init)
