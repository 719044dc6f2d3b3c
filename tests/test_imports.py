"""The modules of her/ import each other one way only: no import circle, through any import a module makes
(at the top, inside a function, or for type checking only).

A module's ``if __name__ == "__main__":`` block is left out: it runs only as the program (``python -m
her.experts``), in a module named ``__main__``, never when the module is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "her"


def module_names() -> dict[str, Path]:
    """``her``, ``her.ddpg``, ... -> their files."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of the package that ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    imported_as_module = [statement for statement in tree.body if not as_program(statement)]
    for node in (node for statement in imported_as_module for node in ast.walk(statement)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y, from . import x
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # from her import ddpg names the module her.ddpg; from her import version, a name of the package
            found.update(
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
            )
    return {module for module in found if module in modules and module != name}


def as_program(statement: ast.stmt) -> bool:
    """Whether ``statement`` is ``if __name__ == "__main__":``."""
    test = getattr(statement, "test", None)
    return (
        isinstance(statement, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per back edge of a depth-first search, each as the path that closes it."""
    found, done, path = [], set(), []

    def visit(module: str) -> None:
        path.append(module)
        for target in sorted(graph[module]):
            if target in path:
                found.append(path[path.index(target) :] + [target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return found


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert "her.learner" in graph["her.ddpg"]  # from her.learner import Batch
    assert "her.config" in graph["her.api"]  # from her import config as cfg
    assert "her.minari_demos" in graph["her.demo"]  # inside a function
    assert "her.api" in graph["her"]  # for type checking only


def test_no_module_of_her_imports_itself_through_others():
    found = cycles(import_graph())
    assert not found, "import circles in her/:\n" + "\n".join(" -> ".join(c) for c in found)


def test_a_circle_is_named():
    graph = {"her.a": {"her.b"}, "her.b": {"her.c"}, "her.c": {"her.a"}, "her.d": {"her.a"}}
    assert cycles(graph) == [["her.a", "her.b", "her.c", "her.a"]]


def drawing() -> list[list[str]]:
    """The modules of docs/design.md's drawing, line by line from the top (a line's text after two spaces is
    what its modules do)."""
    page = (PACKAGE.parent / "docs" / "design.md").read_text()
    block = page.split("### The modules, top to bottom", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    names = [[name.strip() for name in line.split("  ")[0].split(",")] for line in block.splitlines() if line.strip()]
    return [["her" if name == "her" else f"her.{name}" for name in line] for line in names]


def test_the_design_drawing_has_every_module_once_and_each_imports_only_lower_lines():
    graph, lines = import_graph(), drawing()
    drawn = [module for line in lines for module in line]
    assert sorted(drawn) == sorted(graph), (
        "docs/design.md's drawing and her/ differ: "
        f"missing {sorted(set(graph) - set(drawn))}, not modules {sorted(set(drawn) - set(graph))}"
    )
    line_of = {module: i for i, line in enumerate(lines) for module in line}
    upward = [
        f"{module} -> {target}"
        for module in graph
        for target in sorted(graph[module])
        if line_of[target] <= line_of[module]
    ]
    assert not upward, "imports that do not point to a lower line of docs/design.md's drawing: " + ", ".join(upward)
