"""The PyTorch twins of jaxhw's models, as a PyTorch student writes them, and the image layout conversion.

Each twin has the layers of its jaxhw model in the same order, so ``jaxhw.torch_bridge.convert`` maps one to the
other. The parity tests, problem 3's concept checks and the benchmarks all use these; this module imports
torch and numpy only (never jax), so a PyTorch benchmark process stays free of JAX.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def homework_mlp(hidden: int = 64, num_classes: int = 10) -> nn.Module:
    """Homework problem 1's model, verbatim: the twin of ``jaxhw.models.mlp.MLP((hidden,))``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def cnn(dropout: float = 0.25, num_classes: int = 10) -> nn.Module:
    """The twin of ``jaxhw.models.cnn.CNN``: two Conv-BatchNorm-ReLU-MaxPool blocks, Dropout, a dense head."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(128, num_classes))


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


def images_to_torch(images) -> torch.Tensor:
    """NHWC images (numpy or torch) -> float32 NCHW, uint8 pixels scaled to [0, 1] as ToTensor does; arrays of
    other ranks (flat images, sequences, vectors) keep their layout."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    scale = x.dtype == torch.uint8
    x = x.float()
    if x.ndim == 4:
        x = x.permute(0, 3, 1, 2)
    return x / 255.0 if scale else x


def images_from_torch(x: torch.Tensor) -> np.ndarray:
    """A torch tensor as numpy in jaxhw's layout: NCHW -> NHWC; other ranks unchanged."""
    y = x.detach().cpu().numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y
