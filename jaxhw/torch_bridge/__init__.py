"""The only place in jaxhw that imports torch: PyTorch weights <-> Flax variables (``convert``) and the PyTorch
twins of jaxhw's models with the NHWC <-> NCHW layout conversion (``twins``).

Nothing is imported here, so ``jaxhw.torch_bridge.twins`` loads torch without jax (the benchmarks' PyTorch
workers rely on it): import from the submodules, e.g. ``from jaxhw.torch_bridge.convert import
variables_from_torch``.
"""
