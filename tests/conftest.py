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
import shutil
import tempfile

import pytest

os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
# One compilation cache for the session, so the --quick report and the homework notebook (the same programs)
# compile them once, and the commands the tests run share the programs they have in common: it is the commands'
# default cache (jaxhw.cli reads JAXHW_CACHE_DIR on import, in this process and in the processes it starts), and,
# through the environment, JAX's own in the notebook kernels. This process turns it off after each test: on for
# every small compilation of the unit tests, writing each to disk would cost more than it saves.
SESSION_CACHE = pathlib.Path(tempfile.mkdtemp(prefix="jaxhw-tests-compile-cache-"))
os.environ["JAXHW_CACHE_DIR"] = str(SESSION_CACHE)

import jax  # noqa: E402  (after the environment it reads)

jax.config.update("jax_default_matmul_precision", "highest")  # also when a plugin imported jax first


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def compilation_cache_off_after_each_test():
    """A command run in this process (main(argv)) uses the session's cache; the tests after it compile without."""
    yield
    if jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir:
        from jaxhw.cli import enable_compilation_cache

        enable_compilation_cache(None)


@pytest.fixture(scope="session")
def session_cache_environment() -> dict[str, str]:
    """The environment that makes a JAX process (a notebook kernel) read and write the session's cache."""
    return {"JAX_COMPILATION_CACHE_DIR": str(SESSION_CACHE / "jax"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory) -> pathlib.Path:
    """The directory of ``python -m jaxhw --quick`` on the embedded digits (built once, about a minute)."""
    from jaxhw.__main__ import main

    out = tmp_path_factory.mktemp("report")
    assert main(["--quick", "--source", "embedded", "--out", str(out)]) == 0  # the session's cache
    return out
