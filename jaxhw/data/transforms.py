"""What happens to a batch on the device before the model sees it (torchvision's ToTensor)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def scale_images(x: jax.Array) -> jax.Array:
    """uint8 pixels to float32 in [0, 1] (ToTensor), done per batch inside the jitted step; floats pass through."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x
