"""The project's own modules (edge_infer/, train/, export/): no import circle, no import of another's private name.

Read from the source with ``ast``: nothing is imported, so this runs without TensorFlow or any extra.
Every import counts, also one inside a function (a lazy import only hides a circle until both modules load).
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

from conftest import REPO

PACKAGES = ("edge_infer", "train", "export")

KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()
"""(importing module pattern, imported module): import edges of known circles, left out of the search.
Each must still exist: remove an entry once its circle is gone."""


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def scan(modules: dict[str, Path], root: Path = REPO) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> project modules it imports, the private-name imports as 'file:line: ...' below ``root``)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_only(tree)
        where = path.relative_to(root)
        bound: dict[str, str] = {}  # local name -> the project module it is bound to
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        edges[module].add(alias.name)
                        bound[alias.asname or alias.name] = alias.name
                        if _is_private(alias.name.rsplit(".", 1)[-1]):
                            private.append(f"{where}:{node.lineno}: import {alias.name}")
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, path.name == "__init__.py", node)
                if source not in modules:
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in modules:  # `from package import module`: an import of that module
                        edges[module].add(submodule)
                        bound[alias.asname or alias.name] = submodule
                    else:
                        edges[module].add(source)
                    if _is_private(alias.name) and source != module:
                        private.append(f"{where}:{node.lineno}: from {source} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = ast.unparse(node.value)
                target = bound.get(owner.split(".")[0])
                dotted = target and ".".join([target, *owner.split(".")[1:]])
                if dotted in modules and dotted != module:
                    private.append(f"{where}:{node.lineno}: {owner}.{node.attr} ({dotted})")
    for module in edges:
        edges[module].discard(module)
    return edges, private


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _known(source: str, target: str) -> bool:
    return any(fnmatch.fnmatchcase(source, pattern) and target == known for pattern, known in KNOWN_CIRCLE_EDGES)


def test_no_module_imports_a_private_name_of_another():
    _, private = scan(project_modules())
    assert not private, "private names imported across modules (make them public in a shared module):\n" + \
        "\n".join(private)


def test_no_import_circle():
    edges, _ = scan(project_modules())
    kept = {m: {t for t in targets if not _known(m, t)} for m, targets in edges.items()}
    found = circles(kept)
    assert not found, "import circles (every import counts, also inside functions):\n" + \
        "\n".join(" <-> ".join(c) for c in found)


def test_every_known_circle_edge_still_exists():
    edges, _ = scan(project_modules())
    gone = [(pattern, target) for pattern, target in KNOWN_CIRCLE_EDGES
            if not any(fnmatch.fnmatchcase(m, pattern) and target in targets for m, targets in edges.items())]
    assert not gone, f"remove from KNOWN_CIRCLE_EDGES, that circle is gone: {gone}"


def test_the_circle_search_finds_a_lazy_circle(tmp_path: Path):
    # The scanner on two small modules: a circle closed by an import inside a function, and a private name.
    (tmp_path / "a.py").write_text("from b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import _g\n")
    edges, private = scan({"a": tmp_path / "a.py", "b": tmp_path / "b.py"}, tmp_path)
    assert circles(edges) == [["a", "b"]]
    assert private == ["b.py:2: from a import _g"]
