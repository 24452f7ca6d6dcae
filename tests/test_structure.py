"""The shape of the code: imports flow one way (``custom_layers`` ← ``zoo`` ←
``tuning``), no module imports itself back through others — counting imports
inside functions, and the package ``__init__`` an import runs first — and
private upstream modules are imported only in a package's ``_compat.py``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("custom_layers", "zoo", "tuning")
LAYER = {"custom_layers": 0, "zoo": 1, "tuning": 2}  # a package may import only lower ones
PRIVATE_UPSTREAM = ("keras.src", "keras_tuner.src", "tensorflow.python")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> list[str]:
    """Every module name an import statement anywhere in ``path`` names
    (``from a import b`` counts as ``a.b`` when that is a module)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.append(submodule if submodule in MODULES else node.module)
    return names


def _initialised(importer: str, imported: str) -> list[str]:
    """What importing ``imported`` from ``importer`` runs: the module and
    each package above it (their ``__init__``), except the importer's own
    packages, which ran before the importer did."""
    parts = imported.split(".")
    own = {".".join(importer.split(".")[:end]) for end in range(1, importer.count(".") + 2)}
    packages = [".".join(parts[:end]) for end in range(1, len(parts))]
    return [name for name in [*packages, imported] if name in MODULES and name not in own]


GRAPH = {name: sorted({run for imported in _imports(path) for run in _initialised(name, imported)}
                      - {name})
         for name, path in MODULES.items()}


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_the_checker_finds_a_cycle_and_the_packages_are_found():
    assert {"zoo.training", "tuning.search", "custom_layers.ops.conv"} <= set(MODULES)
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    # an import of a submodule runs its package's __init__ first
    assert _initialised("zoo.commands", "zoo.training.precision") == ["zoo.training",
                                                                      "zoo.training.precision"]
    assert _initialised("zoo.training.run", "zoo.training.engine") == ["zoo.training.engine"]


def test_no_import_cycle_in_the_three_packages():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_from_custom_layers_to_zoo_to_tuning(module):
    own = LAYER[module.split(".")[0]]
    upward = [imported for imported in GRAPH[module] if LAYER[imported.split(".")[0]] > own]
    assert upward == [], f"{module} imports a package built on it: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_private_upstream_modules_only_in_compat(module):
    private = [name for name in _imports(MODULES[module])
               if name.startswith(PRIVATE_UPSTREAM)]
    if MODULES[module].name != "_compat.py":
        assert private == [], f"{module} imports private upstream modules: {private}"


def _private_attributes(path: Path) -> list[str]:
    """Private attributes (``x._name``, or ``getattr(x, "_name")``) reached on
    anything but ``self`` and ``cls``: the internals of another library."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        name = None
        if isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            name = node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            name = node.args[1].value
        if name and name.startswith("_") and not name.startswith("__"):
            found.append((node.lineno, name))
    return [f"line {line}: {name}" for line, name in sorted(found)]


def test_the_private_attribute_checker_finds_them(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("x._tracker.lock()\nself._own = 1\ngetattr(y, '_keras_logits')\nz.__name__\n")
    assert _private_attributes(source) == ["line 1: _tracker", "line 3: _keras_logits"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_private_upstream_attributes_only_in_compat(module):
    if MODULES[module].name != "_compat.py":
        assert _private_attributes(MODULES[module]) == [], (
            f"{module} reaches into another library's internals outside _compat.py")


def test_locks_records_and_figures_import_no_framework():
    import subprocess
    import sys

    probe = ("import sys, zoo.runs, zoo.files; "
             "print(sorted({'keras', 'tensorflow', 'jax', 'custom_layers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
