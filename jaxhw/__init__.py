"""jaxhw: a PyTorch deep-learning homework in JAX, Flax and optax, every number checked. See docs/layout.md."""
