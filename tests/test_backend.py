"""The suite holds on any backend: float32 matmuls at full precision in the test session and in the processes
it starts (GPUs compute them in TF32 by default, which no parity tolerance of 1e-5 survives), and no JAX
process of the suite takes most of a GPU's memory at start."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

# 1 + 2^-12 needs 12 bits of mantissa: float32 has 23, TF32 10 and bfloat16 7, which round it to 1.
JUST_ABOVE_ONE = np.float32(1 + 2 ** -12)


def test_float32_matmuls_run_at_highest_precision_in_the_session():
    assert jax.config.jax_default_matmul_precision == "highest"
    product = jax.jit(jnp.matmul)(np.full((1, 1), JUST_ABOVE_ONE), np.ones((1, 1), np.float32))
    assert float(product[0, 0]) == float(JUST_ABOVE_ONE)  # TF32 or bfloat16 inputs give exactly 1.0


def test_processes_started_by_the_suite_inherit_the_precision_and_no_preallocation():
    code = ("import os, jax; print(jax.config.jax_default_matmul_precision, "
            "os.environ.get('XLA_PYTHON_CLIENT_PREALLOCATE'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["highest", "false"]
