"""What every test shares: the same numbers on any backend, one compilation cache, and the --quick homework report,
produced once per test session for the report tests; under pytest-xdist its workers share both.

On any backend: the parity tests compare with PyTorch on the CPU or with finite differences at float32
tolerances, but NVIDIA GPUs since Ampere compute float32 matmuls and convolutions in TF32 by default (and TPUs
in bfloat16 passes), so the session and every process it starts (CLIs, several processes, notebook kernels:
they inherit this environment) compute them at "highest" precision; and each JAX process takes GPU memory as
it needs it instead of 75% of the GPU at start, so the tests that run two or more JAX processes at once fit on
one GPU. The library itself keeps XLA's fast default (docs/devices-and-checkpoints.md).
"""
import fcntl
import os
import pathlib
import shutil
import tempfile

import pytest

os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
# One compilation cache for the session, shared by everything the tests compile: this process (programs that take
# half a second or more to compile, so that the same CNN or members program built again by another test, or by
# another seed in the same test, is loaded instead of compiled: 12% of the model tests' time), the commands run in
# it or started from it (jaxhw.cli reads JAXHW_CACHE_DIR on import), and, through the environment, the notebook
# kernels (the homework notebook loads the --quick report's programs: half its time).
# Under pytest-xdist the workers inherit the folder the controller made, and the controller removes it.
OWNS_SESSION_CACHE = "JAXHW_TESTS_SESSION_CACHE" not in os.environ
SESSION_CACHE = pathlib.Path(os.environ.get("JAXHW_TESTS_SESSION_CACHE")
                             or tempfile.mkdtemp(prefix="jaxhw-tests-compile-cache-"))
os.environ["JAXHW_TESTS_SESSION_CACHE"] = os.environ["JAXHW_CACHE_DIR"] = str(SESSION_CACHE)

import jax  # noqa: E402  (after the environment it reads)

jax.config.update("jax_default_matmul_precision", "highest")  # also when a plugin imported jax first


def pytest_sessionfinish(session, exitstatus):
    if OWNS_SESSION_CACHE:
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


SESSION_CACHE_MIN_COMPILE_SECONDS = 0.5  # writing every small program would cost more than it saves


def use_the_session_cache() -> None:
    """This process's compilations read and write the session's cache (JAX decides once per process unless reset)."""
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(SESSION_CACHE / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", SESSION_CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


use_the_session_cache()


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which a machine without it never calls
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per core, at most 4 (each JAX process already spreads its work over every core, so more
    workers add memory and contention, not speed)."""
    return max(1, min(os.cpu_count() or 1, 4))


@pytest.fixture(autouse=True)
def the_session_cache_after_each_test():
    """A command run in this process (main(argv)) sets the cache its arguments name; the next test starts again
    from the session's."""
    yield
    if (not jax.config.jax_enable_compilation_cache
            or jax.config.jax_compilation_cache_dir != str(SESSION_CACHE / "jax")
            or jax.config.jax_persistent_cache_min_compile_time_secs != SESSION_CACHE_MIN_COMPILE_SECONDS):
        use_the_session_cache()


@pytest.fixture(scope="session")
def session_cache_environment() -> dict[str, str]:
    """The environment that makes a JAX process (a notebook kernel) read and write the session's cache."""
    return {"JAX_COMPILATION_CACHE_DIR": str(SESSION_CACHE / "jax"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@pytest.fixture(scope="session")
def quick_report() -> pathlib.Path:
    """The directory of ``python -m jaxhw --quick`` on the embedded digits, built once for the session (about a
    minute) by the first worker that asks; another that asks meanwhile waits for it."""
    from jaxhw.__main__ import main

    out = SESSION_CACHE / "quick-report"
    with open(SESSION_CACHE / "quick-report.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "index.html").exists():  # the output is moved into place whole, once written
            assert main(["--quick", "--source", "embedded", "--out", str(out)]) == 0  # the session's cache
    return out
