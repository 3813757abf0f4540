"""The house rules: imports go down the floors of docs/layout.md and never in a circle, only the command-line
modules import jaxhw inside functions, ruff is clean, no module is over 450 lines; and the checker itself
catches a planted upward import, a planted cycle and a planted function-level import."""
from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 450


def floor_table(layout: pathlib.Path = ROOT / "docs" / "layout.md") -> dict[str, int]:
    """{module prefix: floor} from the table of docs/layout.md (rows "| floor | `a`, `b` | ... |")."""
    table = {}
    for line in layout.read_text().splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if match:
            for name in re.findall(r"`([\w.]+)`", match.group(2)):
                table[name] = int(match.group(1))
    return table


def modules_of(package: pathlib.Path) -> dict[str, pathlib.Path]:
    """{dotted name: file} of every module under a package directory."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def floor_of(module: str, table: dict[str, int]) -> int | None:
    """The floor of the longest table prefix that names the module or a package holding it."""
    owners = [name for name in table if module == name or module.startswith(name + ".")]
    return table[max(owners, key=len)] if owners else None


def imports_in(path: pathlib.Path, module: str, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported jaxhw module, line, inside a function?) for every import statement and every
    importlib.import_module("jaxhw...") call in one file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def resolve(name: str) -> str:
        while name not in known and "." in name:  # an imported attribute: its module
            name = name.rpartition(".")[0]
        return name

    def visit(node: ast.AST, in_function: bool) -> None:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                targets = [node.args[0].value]
        for target in targets:
            if target == "jaxhw" or target.startswith("jaxhw."):
                found.append((resolve(target), node.lineno, in_function))
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member (the cycles)."""
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def package_of(module: str) -> str:
    """jaxhw.data.images -> jaxhw.data; top-level modules are their own node."""
    parts = module.split(".")
    return ".".join(parts[:2])


def layout_problems(package: pathlib.Path, table: dict[str, int]) -> list[str]:
    """Every breach of the layout rules in a package tree, one line each."""
    modules = modules_of(package)
    problems = []
    graph: dict[str, set[str]] = {name: set() for name in modules}
    top = max(table.values())
    for name, path in modules.items():
        floor = floor_of(name, table)
        if name == package.name:  # the root package: a docstring, nothing to import
            if imports_in(path, name, set(modules)):
                problems.append(f"{name}: the root package must import nothing")
            continue
        if floor is None:
            problems.append(f"{name}: no floor in docs/layout.md")
            continue
        for target, line, in_function in imports_in(path, name, set(modules)):
            if target == name or name.startswith(target + "."):  # a package's own __init__, loaded anyway
                continue
            graph[name].add(target)
            target_floor = floor_of(target, table)
            if target_floor is not None and target_floor > floor:
                problems.append(f"{name}:{line} imports {target} (floor {target_floor}) from floor {floor}")
            if in_function and floor != top:
                problems.append(f"{name}:{line} imports {target} inside a function (only floor {top} may)")
    problems += [f"import cycle between modules: {' -> '.join(c)}" for c in strongly_connected(graph)]
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        packages.setdefault(package_of(source), set()).update(package_of(t) for t in targets
                                                               if package_of(t) != package_of(source))
    problems += [f"import cycle between packages: {' -> '.join(c)}" for c in strongly_connected(packages)]
    return problems


def test_every_module_has_a_floor_and_imports_go_down_without_cycles():
    table = floor_table()
    assert {floor_of(name, table) for name in modules_of(ROOT / "jaxhw") if name != "jaxhw"} == set(range(6))
    assert layout_problems(ROOT / "jaxhw", table) == []


@pytest.fixture()
def copied_tree(tmp_path) -> pathlib.Path:
    shutil.copytree(ROOT / "jaxhw", tmp_path / "jaxhw", ignore=shutil.ignore_patterns("*.npz", "__pycache__"))
    return tmp_path / "jaxhw"


def plant(path: pathlib.Path, code: str) -> None:
    path.write_text(path.read_text() + "\n" + code + "\n")


def test_the_checker_catches_a_planted_upward_import(copied_tree):
    plant(copied_tree / "models" / "mlp.py", "from jaxhw.report import figures  # noqa")
    problems = layout_problems(copied_tree, floor_table())
    assert any(p.startswith("jaxhw.models.mlp:") and "imports jaxhw.report.figures (floor 4) from floor 0" in p
               for p in problems), problems


def test_the_checker_catches_a_planted_cycle_and_a_function_level_import(copied_tree):
    plant(copied_tree / "data" / "loader.py", "from jaxhw.models import mlp  # noqa")
    plant(copied_tree / "models" / "mlp.py", "from jaxhw.data import loader  # noqa")
    plant(copied_tree / "experiments" / "timeseries.py",
          "def late():\n    import importlib\n    return importlib.import_module('jaxhw.losses')")
    problems = layout_problems(copied_tree, floor_table())
    assert any("cycle between modules" in p and "jaxhw.data.loader" in p and "jaxhw.models.mlp" in p
               for p in problems), problems
    assert any("cycle between packages" in p and "jaxhw.data" in p and "jaxhw.models" in p for p in problems)
    assert any(p.startswith("jaxhw.experiments.timeseries:") and "inside a function" in p for p in problems)


def test_a_module_missing_from_the_table_is_named(copied_tree):
    (copied_tree / "stray.py").write_text('"""Somewhere new."""\n')
    assert "jaxhw.stray: no floor in docs/layout.md" in layout_problems(copied_tree, floor_table())


def test_no_module_is_over_450_lines():
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "jaxhw").rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_the_configs_name_the_models_the_registries_build():
    from jaxhw import configs
    from jaxhw.experiments.classification import CLASSIFIER_MODULES
    from jaxhw.models.autoencoder import AUTOENCODERS
    from jaxhw.models.layers import INITS
    from jaxhw.models.sequence import SEQUENCE_MODELS

    assert configs.CLASSIFIERS == tuple(CLASSIFIER_MODULES)
    assert configs.AUTOENCODERS == tuple(AUTOENCODERS)
    assert configs.SEQUENCE_MODELS == tuple(SEQUENCE_MODELS)
    assert configs.WEIGHT_INITS == INITS


def test_the_command_line_modules_start_without_jax():
    """--help answers before JAX, Flax or torch are imported (they load inside main())."""
    code = ("import sys, jaxhw.__main__, jaxhw.classify, jaxhw.autoencode, jaxhw.gradients, jaxhw.timeseries; "
            "print(sorted(m for m in ('jax', 'flax', 'torch', 'optax') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
