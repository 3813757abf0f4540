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


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per core, at most 4 (each JAX process already spreads its work over every core, so more
    workers add memory and contention, not speed)."""
    return max(1, min(os.cpu_count() or 1, 4))


def shared_fixtures(item) -> list[str]:
    """The fixtures of this suite that ``item`` uses and that are built once per module or session."""
    return [f"{definition.baseid}::{definition.argname}"
            for definitions in item._fixtureinfo.name2fixturedefs.values() for definition in definitions
            if definition.scope in ("module", "session") and definition.baseid.startswith("tests")
            and definition.argname != "session_cache_environment"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n auto --dist loadgroup`, as pyproject sets), the tests that share a fixture built once
    per module or session (a run of several processes, the --quick report), directly or through another test's
    fixtures, go to one worker, so that it is built once."""
    parent: dict[str, str] = {}

    def root(fixture: str) -> str:
        while parent.setdefault(fixture, fixture) != fixture:
            fixture = parent[fixture]
        return fixture

    uses = {item.nodeid: shared_fixtures(item) for item in items}
    for fixtures in uses.values():
        for other in fixtures[1:]:
            parent[root(other)] = root(fixtures[0])
    for item in items:
        if uses[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(root(uses[item.nodeid][0])))


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
def quick_report(tmp_path_factory) -> pathlib.Path:
    """The directory of ``python -m jaxhw --quick`` on the embedded digits (built once, about a minute)."""
    from jaxhw.__main__ import main

    out = tmp_path_factory.mktemp("report")
    assert main(["--quick", "--source", "embedded", "--out", str(out)]) == 0  # the session's cache
    return out
