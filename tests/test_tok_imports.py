"""tokenizer/'s layout: the reading order in tokenizer/__init__.py is the dependency order.

Walks every module's imports with `ast` (no import runs): each module imports only modules
listed before it in the reading order (so there is no cycle), imports of our own modules sit at
the top of the file, and the package imports nothing from later stages.
"""
import ast
import re
from pathlib import Path

import tokenizer

PACKAGE = Path(tokenizer.__file__).parent
OURS = {"tokenizer", "data", "model", "studies", "train_gpt", "sample", "train_tokenizer"}


def reading_order():
    """Module names in the order tokenizer/__init__.py's docstring lists them."""
    return list(dict.fromkeys(re.findall(r"\b(\w+)\.py\b", tokenizer.__doc__)))


def imports(path):
    """[(module imported, top_level)] for our own modules imported by the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y  /  from . import x, y
                names = [node.module] if node.module else [a.name for a in node.names]
                found += [("tokenizer." + n, id(node) in top) for n in names]
            elif node.module and node.module.split(".")[0] in OURS:
                found.append((node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.split(".")[0] in OURS]
    return found


def test_every_module_is_in_the_reading_order():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert set(reading_order()) == modules


def test_modules_import_only_what_comes_before_them():
    order = reading_order()
    for k, name in enumerate(order):
        for module, top_level in imports(PACKAGE / f"{name}.py"):
            assert top_level, f"{name}.py imports {module} inside a function"
            assert module.split(".")[0] == "tokenizer", f"{name}.py imports {module}: a later stage"
            dep = module.split(".")[1] if "." in module else None
            assert dep in order[:k], f"{name}.py imports {dep}.py, which the reading order puts later"
