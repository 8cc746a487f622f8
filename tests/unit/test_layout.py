"""The package's shape: no import cycles, the core never reaching up into commands, and
the README's module map naming every module there is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "media_pipeline"
README = PACKAGE.parents[1] / "README.md"
# Packages of commands and of what only commands use; everything at the top level of the
# package is the core they share.
UPPER = (
    "media_pipeline.cli",
    "media_pipeline.reports",
    "media_pipeline.setup",
    "media_pipeline.approve",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules this one imports, anywhere in it (a function's lazy import
    too), except under `if TYPE_CHECKING:`, which never runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in known)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known)
    edges = {}
    for name, path in known.items():
        # A package's __init__ is imported with any of its modules; not an edge of theirs.
        edges[name] = {
            m for m in imports_of(path, names) if m != name and not name.startswith(m + ".")
        }
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            connect(node)
    return found


def test_no_module_imports_itself_through_others():
    assert cycles(graph()) == []


def test_cycles_are_found_when_there_are_some():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_does_not_reach_into_commands_reports_or_setup():
    for name, targets in graph().items():
        if name.startswith(UPPER) or name in ("media_pipeline.__main__",):
            continue
        upward = sorted(t for t in targets if t.startswith(UPPER))
        assert not upward, f"{name} imports {upward}"


def test_reports_only_read():
    """A report opens the database read-only: no report imports a writing command or
    the controller's writable database."""
    for name, path in modules().items():
        if name.startswith("media_pipeline.reports"):
            text = path.read_text()
            assert "controller_database" not in text, name
            assert "change_state" not in text, name


MAP_LINE = re.compile(r"^\s*- `(?P<path>[\w/]+\.py)`")


def module_map() -> list[str]:
    text = README.read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return [m["path"] for line in section.splitlines() if (m := MAP_LINE.match(line))]


def test_the_readme_module_map_names_every_module_once():
    in_tree = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
    ]
    listed = module_map()
    assert sorted(listed) == sorted(in_tree), (
        f"missing from the map: {sorted(set(in_tree) - set(listed))}; "
        f"in the map but not the tree: {sorted(set(listed) - set(in_tree))}"
    )
    assert len(listed) == len(set(listed))
