"""The PyTorch twins that are one ``nn.Sequential`` (the homework's MLP and CNN) and the NHWC <-> NCHW image
conversion, with torch imported on the first call: importing this module costs nothing, so problem 3's checks
(``jaxhw.experiments.concepts``) load torch only when a comparison runs. The twins with a forward of their own
are in ``jaxhw.torch_bridge.twins``, which also offers these. Like twins, never imports jax.
"""
from __future__ import annotations

import numpy as np

from jaxhw.common import ModuleOnFirstUse

torch = ModuleOnFirstUse("torch")


def homework_mlp(hidden: int = 64, num_classes: int = 10) -> torch.nn.Module:
    """Homework problem 1's model, verbatim: the twin of ``jaxhw.models.mlp.MLP((hidden,))``."""
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def cnn(dropout: float = 0.25, num_classes: int = 10) -> torch.nn.Module:
    """The twin of ``jaxhw.models.cnn.CNN``: two Conv-BatchNorm-ReLU-MaxPool blocks, Dropout, a dense head."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(128, num_classes))


def images_to_torch(images) -> torch.Tensor:
    """NHWC images (numpy or torch) -> float32 NCHW, uint8 pixels scaled to [0, 1] as ToTensor does; arrays of
    other ranks (flat images, sequences, vectors) keep their layout."""
    x = torch.as_tensor(images if isinstance(images, torch.Tensor) else np.asarray(images))
    scale = x.dtype == torch.uint8
    x = x.float()
    if x.ndim == 4:
        x = x.permute(0, 3, 1, 2)
    return x / 255.0 if scale else x


def images_from_torch(x: torch.Tensor) -> np.ndarray:
    """A torch tensor as numpy in jaxhw's layout: NCHW -> NHWC; other ranks unchanged."""
    y = x.detach().cpu().numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y
