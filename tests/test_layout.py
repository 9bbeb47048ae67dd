"""The import graph of the libraries, read with `ast` (nothing is imported): data flows one way.

Stage order, earliest first: tokenizer -> data -> model -> training -> studies. A module may import
its own package and earlier stages only (model needs nothing but itself: it takes a vocab size, not
a tokenizer), no library imports a script, and no import cycle exists, whether the import sits at
the top of the file or inside a function (a function-level import only hides a cycle).
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tokenizer", "data", "model", "training", "studies")
SCRIPTS = ("train_gpt", "sample", "train_tokenizer")
MAY_IMPORT = {
    "tokenizer": {"tokenizer"},
    "data": {"tokenizer", "data"},
    "model": {"model"},
    "training": {"tokenizer", "data", "model", "training"},
    "studies": {"tokenizer", "data", "model", "training", "studies"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours (and scripts) that `name` imports anywhere in its file.

    `from pkg import x` counts as importing pkg.x when that is a module, else pkg itself;
    relative imports are resolved against the module's package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            top = target.split(".")[0]
            if top in SCRIPTS:
                found.add(top)
            elif top in PACKAGES:
                while target not in known and "." in target:  # `import a.b.func`-like forms: nearest module
                    target = target.rpartition(".")[0]
                if target in known and target != name:
                    found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as "a -> b -> a"."""
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_walk_sees_every_package_and_resolves_imports(graph):
    assert {name.split(".")[0] for name in graph} == set(PACKAGES)
    assert "model.gpt" in graph["training.loop"]  # `from model.gpt import GPT, GPTConfig`
    assert "training.config" in graph["training.runtime"]


def test_no_library_imports_a_script(graph):
    offenders = sorted(f"{name} imports {dep}" for name, deps in graph.items() for dep in deps if dep in SCRIPTS)
    assert not offenders, "scripts are the end of the import graph:\n" + "\n".join(offenders)


def test_stage_order(graph):
    offenders = sorted(f"{name} imports {dep}" for name, deps in graph.items() for dep in deps
                       if dep not in SCRIPTS and dep.split(".")[0] not in MAY_IMPORT[name.split(".")[0]])
    assert not offenders, "an earlier stage imports a later one:\n" + "\n".join(offenders)


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A planted cycle through a function-level import, a relative import and a script import."""
    pkg = tmp_path / "model"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from model.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    import train_gpt\n    return a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    mods = {module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    deps = {n: imports_of(n, p, set(mods)) for n, p in mods.items()}
    assert deps["model.a"] == {"model.b"} and deps["model.b"] == {"model.a", "train_gpt"}
    assert find_cycles(deps) == ["model.a -> model.b -> model.a"]
