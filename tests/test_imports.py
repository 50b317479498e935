"""Imports flow one way (docs/architecture.md): a static walk of tfopt/ with `ast`.

Every `import tfopt...` statement -- at module level or inside a function, both are
dependencies -- must point to the same package or to a lower layer of `LAYERS`, and the
module-level import graph must have no cycle. A second check imports tfopt.core (and the
TF-free driver modules) in a fresh interpreter and asserts TensorFlow stayed unloaded.
"""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PKG = REPO / "tfopt"

# Lowest first. A module may import its own package and anything listed before it.
LAYERS = (
    "tfopt.core",  # TF-free typed core: allowed values, recipes, results, environment
    "tfopt",  # the package root (tfopt/__init__.py: env defaults, lazy names)
    "tfopt._keras",  # the one Keras import
    "tfopt.blocks",
    "tfopt.metrics",
    "tfopt.models",
    "tfopt.data",
    "tfopt.train",
    "tfopt.compress",
    "tfopt.tflite",
    "tfopt.experiments",  # the ablation driver, trial runner, report, recommender
)


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The LAYERS entry a module belongs to (the longest matching prefix)."""
    best = None
    for unit in LAYERS:
        if module == unit or module.startswith(unit + "."):
            if best is None or len(unit) > len(best):
                best = unit
    assert best is not None, f"{module} is in no layer of LAYERS; add its package"
    return best


def _imports(module: str, path: pathlib.Path):
    """(target module, line, at module level) for every tfopt import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                pkg = module.split(".")
                if not path.name == "__init__.py":
                    pkg = pkg[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        for name in names:
            if name == "tfopt" or name.startswith("tfopt."):
                while name not in MODULES:  # 'tfopt.models.build_model' -> 'tfopt.models'
                    name = name.rsplit(".", 1)[0]
                yield name, node.lineno, id(node) in top_level


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _unit(module)


def test_no_upward_import():
    rank = {unit: i for i, unit in enumerate(LAYERS)}
    bad = []
    for module, path in MODULES.items():
        for target, line, _ in _imports(module, path):
            src, dst = _unit(module), _unit(target)
            if rank[dst] > rank[src]:
                bad.append(f"{path.relative_to(REPO)}:{line}: {src} imports {target} (higher)")
    assert not bad, "upward imports (see docs/architecture.md):\n" + "\n".join(bad)


def test_no_import_cycle():
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _, top in _imports(module, path):
            if top and target != module:
                graph[module].add(target)
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)


def _run(code: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, timeout=60)


def test_core_imports_neither_tensorflow_nor_numpy():
    _run(
        "import sys\n"
        "import tfopt.core, tfopt.core.choices, tfopt.core.recipe, tfopt.core.results\n"
        "import tfopt.core.env, tfopt.core.train_config\n"
        "tfopt.core.TrainConfig(epochs=1)\n"
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )


def test_driver_report_and_recommender_do_not_import_tensorflow():
    _run(
        "import sys\n"
        "from tfopt.experiments import config, flags, grid, store, executors, report, recommend\n"
        "from tfopt import report as r\n"
        "assert r is report\n"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules\n"
    )


def test_the_walk_sees_imports_and_would_catch_an_upward_one(tmp_path):
    found = list(_imports("tfopt.experiments.runner", MODULES["tfopt.experiments.runner"]))
    assert any(t == "tfopt.experiments.grid" and top for t, _, top in found)
    assert any(t == "tfopt.experiments.steps" and not top for t, _, top in found)
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from tfopt.experiments import runner\n")
    (target, _, top), = _imports("tfopt.core.fake", fake)
    assert target == "tfopt.experiments.runner" and not top
    assert LAYERS.index(_unit(target)) > LAYERS.index(_unit("tfopt.core.fake"))
