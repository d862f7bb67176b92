"""The import graph of a package from its source (AST: nothing is imported), and its circles."""

from __future__ import annotations

import ast
from pathlib import Path


def _modules(src: Path, package: str) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of ``package`` under ``src`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _imports(tree: ast.Module, module_level_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module, those under ``if TYPE_CHECKING:`` left out (they never run)."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _type_checking(node):
            todo.extend(node.orelse)
        elif not (module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """Dotted names a statement imports: ``from P import n`` names ``P.n`` (a submodule, if it is one) and ``P``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join([*parts, base] if base else parts)
    return [base, *(f"{base}.{a.name}" for a in node.names)]


def import_graph(src: Path, package: str, *, module_level_only: bool = False) -> dict[str, set[str]]:
    """``{module: modules it imports}`` inside ``package``; an import of ``a.b.c`` also runs ``a.b``'s
    ``__init__``, an edge unless the importer lives in ``a.b`` itself (its own package is set up before it)."""
    modules = _modules(Path(src), package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own = name if is_package else name.rpartition(".")[0]
        edges = set()
        for node in _imports(ast.parse(path.read_text()), module_level_only):
            for target in _targets(node, name, is_package):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                parts = target.split(".")
                ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
                edges |= {m for m in ancestors if m in modules and not (own + ".").startswith(m + ".")}
        graph[name] = edges - {name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan): modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        """Tarjan's depth-first step from ``v``."""
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles
