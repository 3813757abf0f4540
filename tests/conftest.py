"""What every test shares: the same numbers on any backend, and the --quick homework report, produced once per
test session for the report tests.

On any backend: the parity tests compare with PyTorch on the CPU or with finite differences at float32
tolerances, but NVIDIA GPUs since Ampere compute float32 matmuls and convolutions in TF32 by default (and TPUs
in bfloat16 passes), so the session and every process it starts (CLIs, several processes, notebook kernels:
they inherit this environment) compute them at "highest" precision; and each JAX process takes GPU memory as
it needs it instead of 75% of the GPU at start, so the tests that run two or more JAX processes at once fit on
one GPU. The library itself keeps XLA's fast default (docs/devices-and-checkpoints.md).
"""
import os
import pathlib

import pytest

os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"

import jax  # noqa: E402  (after the environment it reads)

jax.config.update("jax_default_matmul_precision", "highest")  # also when a plugin imported jax first


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory) -> pathlib.Path:
    """The directory of ``python -m jaxhw --quick`` on the embedded digits (built once, about a minute)."""
    from jaxhw.__main__ import main

    out = tmp_path_factory.mktemp("report")
    assert main(["--quick", "--source", "embedded", "--out", str(out), "--no-compile-cache"]) == 0
    return out
