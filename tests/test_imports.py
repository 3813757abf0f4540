"""A command imports only what its run uses: in a fresh interpreter, each command's module and every jaxhw
module it imports to run (in its main() and in jaxhw.cli) load no torch, scipy, orbax, matplotlib or
TensorFlow, and the single commands not the whole homework; orbax loads when a checkpoint directory is
opened, matplotlib when a figure is drawn. The probe itself is shown to catch a planted import."""
from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SINGLE_COMMANDS = ("jaxhw.classify", "jaxhw.autoencode", "jaxhw.gradients", "jaxhw.timeseries")
# Loaded only where a run needs them: torch for problem 3's comparisons, orbax for a checkpoint directory,
# matplotlib for a figure, scipy never, TensorFlow for --source tfds.
NOT_BEFORE_TRAINING = ("torch", "scipy", "orbax", "matplotlib", "tensorflow", "tensorflow_datasets")

# Imports each command's modules in turn and prints {command: modules that its imports added}.
PROBE = """
import importlib, json, sys
added = {}
for command, modules in json.loads(sys.argv[1]).items():
    before = set(sys.modules)
    for name in modules:
        importlib.import_module(name)
    added[command] = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""

# After the main job's imports (PROBE): what opening checkpoints and drawing a figure load, each in turn.
AT_RUN_TIME = """
import pathlib, tempfile
from jaxhw.training.checkpoint import open_checkpoints
from jaxhw.report import figures
seen = {}
assert open_checkpoints(None) is None
seen["no checkpoint directory"] = "orbax" in sys.modules
with tempfile.TemporaryDirectory() as folder:
    open_checkpoints(pathlib.Path(folder) / "checkpoints").close()
    seen["a checkpoint directory"] = "orbax" in sys.modules
    seen["before a figure"] = "matplotlib" in sys.modules
    figures.learning_curves([{"epoch": 1, "train_loss": 1.0}], pathlib.Path(folder) / "curves.png")
    seen["after a figure"] = "matplotlib" in sys.modules
import os, jax
seen["child precision"] = jax.config.jax_default_matmul_precision  # tests/conftest.py, passed on to children
seen["child preallocation"] = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")
print(json.dumps(seen))
"""


def imports_to_run(command: str) -> list[str]:
    """The command's module, then every jaxhw module imported inside its functions (main() imports the library
    after parsing) and inside jaxhw.cli's (run_cli and start load the training modules)."""
    found = [command]
    for module in (command, "jaxhw.cli"):
        path = ROOT / (module.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("jaxhw"):
                        found += [f"{inner.module}.{alias.name}" if (ROOT / inner.module.replace(".", "/") /
                                                                     f"{alias.name}.py").exists() else inner.module
                                  for alias in inner.names]
    return list(dict.fromkeys(found))


def start(code: str, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def results_of(process: subprocess.Popen) -> list[dict]:
    """The JSON lines the process printed."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def unneeded(added: list[str], also: tuple[str, ...] = ()) -> list[str]:
    """The modules among ``added`` that a command must not load before it trains."""
    return sorted(name for name in added if name.split(".")[0] in NOT_BEFORE_TRAINING or name in also)


@pytest.fixture(scope="module")
def probes() -> dict:
    """Two interpreters at once: the single commands in turn (a module the first loads is not counted against
    the next, but every module any of them loads is checked), then a planted import; python -m jaxhw, then
    opening checkpoints and drawing a figure."""
    single = {command: imports_to_run(command) for command in SINGLE_COMMANDS}
    single["planted"] = ["jaxhw.report.outputs", "matplotlib.pyplot"]
    running = [start(PROBE, json.dumps(single)),
               start(PROBE + AT_RUN_TIME, json.dumps({"jaxhw": imports_to_run("jaxhw.__main__")}))]
    (single_added,), (homework_added, at_run_time) = (results_of(process) for process in running)
    return {"single": single_added, "homework": homework_added, "at_run_time": at_run_time}


def test_the_probe_imports_what_the_commands_import_in_main():
    assert {"jaxhw.experiments.classification", "jaxhw.report.outputs", "jaxhw.training.fit"} <= set(
        imports_to_run("jaxhw.classify"))
    assert {"jaxhw.homework", "jaxhw.report.homework_report"} <= set(imports_to_run("jaxhw.__main__"))


def test_single_commands_load_neither_heavy_libraries_nor_the_homework(probes):
    every = [name for command in SINGLE_COMMANDS for name in probes["single"][command]]
    assert "jax" in every and "jaxhw.training.fit" in every  # the probe did load the library
    for command in SINGLE_COMMANDS:
        assert unneeded(probes["single"][command], also=("jaxhw.homework",)) == [], command


def test_the_main_job_loads_torch_only_when_problem_3_compares(probes):
    added = probes["homework"]["jaxhw"]
    assert "jaxhw.homework" in added and "jaxhw.experiments.concepts" in added
    assert unneeded(added) == []


def test_the_probe_catches_a_planted_import(probes):
    assert "matplotlib" in unneeded(probes["single"]["planted"])


def test_orbax_loads_with_a_checkpoint_directory_and_matplotlib_with_a_figure(probes):
    seen = {key: value for key, value in probes["at_run_time"].items() if not key.startswith("child")}
    assert seen == {"no checkpoint directory": False, "a checkpoint directory": True, "before a figure": False,
                    "after a figure": True}


def test_processes_started_by_the_suite_compute_at_highest_precision_and_take_gpu_memory_as_needed(probes):
    """The other half of tests/test_backend.py: what the suite's children inherit (a process of their own)."""
    assert probes["at_run_time"]["child precision"] == "highest"
    assert probes["at_run_time"]["child preallocation"] == "false"
