"""PyTorch training-loop mistakes from homework problem 3, reproduced on purpose in optax so they can be measured.

In JAX these mistakes cannot happen by accident: ``jax.value_and_grad`` returns fresh gradients as values
(there is no ``.grad`` to zero) and the gradient is the only input of the update (there is no ``step()``
that could run without ``backward()``). To show what PyTorch does when they happen, build them explicitly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def forgotten_zero_grad() -> optax.GradientTransformation:
    """What a loop without ``optimizer.zero_grad()`` feeds the optimizer: the sum of every gradient so far.

    PyTorch's ``backward()`` adds into ``.grad``; chain this before the optimizer to get the same updates:
    ``optax.chain(forgotten_zero_grad(), optax.sgd(lr))``.
    """

    def init(params):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def update(updates, total, params=None):
        total = jax.tree_util.tree_map(jnp.add, total, updates)
        return total, total

    return optax.GradientTransformation(init, update)


def accumulate_gradients(optimizer: optax.GradientTransformation, every: int) -> optax.GradientTransformation:
    """Deliberate accumulation: apply the optimizer once per ``every`` micro-batches, on their mean gradient.

    The PyTorch idiom is ``(loss / every).backward()`` on each micro-batch and ``step(); zero_grad()``
    every ``every`` of them; optax.MultiSteps is its counterpart.
    """
    return optax.MultiSteps(optimizer, every_k_schedule=every)
