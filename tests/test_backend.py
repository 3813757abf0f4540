"""The suite holds on any backend: float32 matmuls at full precision in the test session and in the processes
it starts (GPUs compute them in TF32 by default, which no parity tolerance of 1e-5 survives), and no JAX
process of the suite takes most of a GPU's memory at start. What the suite's own child processes inherit is
checked in one of them (tests/test_imports.py), which the suite starts anyway."""
import os

import jax
import jax.numpy as jnp
import numpy as np

# 1 + 2^-12 needs 12 bits of mantissa: float32 has 23, TF32 10 and bfloat16 7, which round it to 1.
JUST_ABOVE_ONE = np.float32(1 + 2 ** -12)


def test_float32_matmuls_run_at_highest_precision_in_the_session():
    assert jax.config.jax_default_matmul_precision == "highest"
    product = jax.jit(jnp.matmul)(np.full((1, 1), JUST_ABOVE_ONE), np.ones((1, 1), np.float32))
    assert float(product[0, 0]) == float(JUST_ABOVE_ONE)  # TF32 or bfloat16 inputs give exactly 1.0



def test_the_session_takes_gpu_memory_as_it_needs_it():
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # read when the backend starts, after conftest
