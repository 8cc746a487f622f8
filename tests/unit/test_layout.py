"""The package's shape: no import cycles, the core never reaching up into commands, a
worker that decides nothing, a short top level, and the module map (docs/development.md)
naming every module there is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "media_pipeline"
MODULE_MAP = PACKAGE.parents[1] / "docs" / "development.md"
# Packages of commands and of what only commands use; everything at the top level of the
# package is the core they share.
UPPER = (
    "media_pipeline.cli",
    "media_pipeline.idle.entry",
    "media_pipeline.reports",
    "media_pipeline.setup",
    # approve/ also holds the gates' records (gates.py, signing.py), which are core.
    "media_pipeline.approve.session",
    "media_pipeline.approve.terminal",
    "media_pipeline.approve.refile",
)
# What decides what an item needs next: a worker runs what it is given, and never
# imports any of it (so a worker host cannot be made to decide, whatever it is sent).
DECIDERS = (
    "media_pipeline.control",
    "media_pipeline.reconcile",
    "media_pipeline.approve",
)
# The top of the package: the command line and what every command shares. A new module
# goes into the package of the part it belongs to.
TOP_LEVEL = {
    "media_pipeline", "media_pipeline.__main__", "media_pipeline.cli",
    "media_pipeline.errors", "media_pipeline.faults", "media_pipeline.logs",
    "media_pipeline.pipeline", "media_pipeline.said", "media_pipeline.service_user",
    "media_pipeline.store",
    "media_pipeline.text",
}  # fmt: skip


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _only_for_type_checkers(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (or typing.TYPE_CHECKING), whose body never runs."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str], root: Path = PACKAGE) -> set[str]:
    """The package's modules this one imports, anywhere in it (a function's lazy import
    and a relative import too), except in the body of `if TYPE_CHECKING:`, which never
    runs (its else branch does)."""
    package = module_name(path if path.name == "__init__.py" else path.parent, root)
    found: set[str] = set()

    def absolute(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def visit(node: ast.AST) -> None:
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            module = absolute(node)
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in known)
        if _only_for_type_checkers(node):
            children = list(node.orelse)  # type: ignore[attr-defined]
        else:
            children = list(ast.iter_child_nodes(node))
        for child in children:
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


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module start imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_a_worker_decides_nothing():
    """Nothing under worker/ reaches the controller's side, even through other modules."""
    edges = graph()
    for name in edges:
        if name.startswith("media_pipeline.worker."):
            deciding = sorted(m for m in reaches(edges, name) if m.startswith(DECIDERS))
            assert not deciding, f"{name} reaches {deciding}"


def test_the_top_level_holds_only_what_every_command_shares():
    top = {
        name
        for name in modules()
        if name.count(".") <= 1 and not (PACKAGE / name.split(".")[-1]).is_dir()
    }
    assert top == TOP_LEVEL, f"new at the top: {sorted(top - TOP_LEVEL)}"


def test_reaching_follows_imports_through_others():
    assert reaches({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}, "a") == {"b", "c"}


# What writes: the writable database, state changes, the item's files, jobs, markers.
WRITERS = {
    "controller_database", "open_database", "migrate", "change_state", "create_item",
    "write_item_files", "submit_job", "write_decision", "write_controller_files",
    "write_json", "write_atomic",
}  # fmt: skip
SQL_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.I)


def writes_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found += [a.name for a in node.names if a.name in WRITERS]
        elif isinstance(node, ast.Attribute) and node.attr in WRITERS:
            found.append(node.attr)
        elif isinstance(node, ast.Name) and node.id in WRITERS:
            found.append(node.id)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_WRITE.match(node.value)
        ):
            found.append(node.value.split()[0])
    return found


def test_reports_only_read():
    """A report opens the database read-only and writes nothing: no report names a
    writing function or holds SQL that writes."""
    for name, path in modules().items():
        if name.startswith("media_pipeline.reports"):
            assert writes_in(path) == [], name


def test_the_rules_catch_what_they_are_for(tmp_path):
    """Each rule above, shown to fail on a module that breaks it."""
    package = tmp_path / "media_pipeline"
    (package / "reports").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "text.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from .reports import status\n"  # relative, upward
        "if not TYPE_CHECKING:\n    from . import cli\n"  # runs
        "if TYPE_CHECKING:\n    from . import items\nelse:\n    from . import store\n"
    )
    names = {"media_pipeline.reports.status", "media_pipeline.cli", "media_pipeline.items.names",
             "media_pipeline.store", "media_pipeline.reports"}  # fmt: skip
    assert imports_of(package / "text.py", names, package) == {
        "media_pipeline.reports",
        "media_pipeline.reports.status",
        "media_pipeline.cli",
        "media_pipeline.store",
    }
    report = package / "reports" / "status.py"
    report.write_text(
        "from media_pipeline.store import open_database\n"
        "def run(db):\n    db.execute('DELETE FROM media_items')\n"
    )
    assert writes_in(report) == ["open_database", "DELETE"]


MAP_LINE = re.compile(r"^\s*- `(?P<path>[\w/]+\.py)`")


def module_map() -> list[str]:
    text = MODULE_MAP.read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return [m["path"] for line in section.splitlines() if (m := MAP_LINE.match(line))]


def test_the_module_map_names_every_module_once():
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


def run_functions_returning_text(path: Path) -> list[str]:
    """The module-level `run_*` functions of a module that say they return a bare str."""
    return [
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("run_")
        and isinstance(node.returns, ast.Name | ast.Constant)
        and getattr(node.returns, "id", getattr(node.returns, "value", None)) == "str"
    ]


def test_every_command_returns_data_that_the_cli_prints(tmp_path):
    """One return style: a `run_*` gives data (said.Said, or a report's own), never a str."""
    for name, path in modules().items():
        assert run_functions_returning_text(path) == [], name
    module = tmp_path / "old.py"
    module.write_text("def run_it() -> str:\n    return 'done'\ndef run_ok() -> Said: ...\n")
    assert run_functions_returning_text(module) == ["run_it"]
