"""The PyTorch twins of jaxhw's models, as a PyTorch student writes them, and the image layout conversion.

Each twin has the layers of its jaxhw model in the same order, so ``jaxhw.torch_bridge.convert`` maps one to the
other. The parity tests, problem 3's concept checks and the benchmarks all use these; this module imports
torch and numpy only (never jax), so a PyTorch benchmark process stays free of JAX. The twins that are one
nn.Sequential (``homework_mlp``, ``cnn``) and the image layout conversion live in
``jaxhw.torch_bridge.sequential``, which loads torch on first use, and are offered here too.
"""
from __future__ import annotations

import torch
from torch import nn

from jaxhw.torch_bridge.sequential import cnn, homework_mlp, images_from_torch, images_to_torch  # noqa: F401


class DenseAutoencoder(nn.Module):
    """The twin of ``jaxhw.models.autoencoder.DenseAutoencoder``: 784-128-64-latent and back, sigmoid output."""

    def __init__(self, latent: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                     nn.Linear(64, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                                     nn.Linear(128, 784), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ConvAutoencoder(nn.Module):
    """The twin of ``jaxhw.models.autoencoder.ConvAutoencoder``: conv encoder with max-pooling, decoder with
    nearest upsampling and Conv2d (NCHW)."""

    def __init__(self, latent: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class LSTMClassifier(nn.Module):
    """The twin of ``jaxhw.models.sequence.RecurrentClassifier("lstm", hidden)``: the final hidden state feeds
    the head."""

    def __init__(self, features: int = 8, hidden: int = 48, num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.head(self.dropout(h_n[-1]))
