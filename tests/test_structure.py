"""The shape of the package: rooms with one job, and the doors between them.

The CLI is a client of the library like any other Python caller, so it may use only what
`resumable_import.__all__` offers; no module imports one that imports it back (not even
for a type: a cycle is one room, whatever it is split into); and no module grows past
what a reader can hold in mind.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import resumable_import

PACKAGE = Path(resumable_import.__file__).resolve().parent
CLI = PACKAGE / "cli"
MAX_LINES = 500  # a module longer than this holds more than one job


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[tuple[str, str]]:
    """(module imported from, name) for each name an import statement takes: for `import
    a.b`, ("a.b", ""); for `from a import b`, ("a", "b"), relative ones made absolute."""
    if isinstance(node, ast.Import):
        return [(alias.name, "") for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [(base, alias.name) for alias in node.names]


def _imports(path: Path) -> list[tuple[str, str]]:
    """Every import in a module: at the top, under `if TYPE_CHECKING:`, inside functions."""
    module = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        target
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in _targets(node, module, path)
    ]


def _graph() -> dict[str, set[str]]:
    """Which module of the package imports which: `from . import x` is an edge to module
    x, `from .m import name` one to m. A package's `__getattr__` importing its modules
    lazily makes no edge: only import statements do."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for base, name in _imports(path):
            full = f"{base}.{name}" if name else base
            target = full if full in modules else base if base in modules else None
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cli_is_a_package() -> None:
    assert (CLI / "__init__.py").is_file()
    assert not (PACKAGE / "cli.py").exists()


def test_the_cli_imports_only_what_the_package_offers() -> None:
    """Within the cli package anything; from the library only `__all__`'s names."""
    offered = set(resumable_import.__all__)
    wrong = []
    for path in sorted(CLI.glob("*.py")):
        for base, name in _imports(path):
            full = f"{base}.{name}" if name else base
            if base == "resumable_import.cli" or base.startswith("resumable_import.cli."):
                continue
            if full == "resumable_import.cli":  # `from resumable_import import cli`
                continue
            if base == "resumable_import" and name in offered:
                continue
            if base == "resumable_import" or base.startswith("resumable_import."):
                wrong.append(f"{path.name}: {full}")
    assert list(CLI.glob("*.py"))
    assert wrong == []


def test_all_is_what_the_package_offers() -> None:
    """`__all__` and the lazy homes name the same things: nothing offered goes unlisted."""
    assert sorted(resumable_import.__all__) == sorted(resumable_import._HOME)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The cycle test below is only as good as the graph: imports for type checking,
    inside functions and relative ones to a module all count."""
    graph = _graph()
    assert "resumable_import.errors" in graph["resumable_import"]  # under TYPE_CHECKING
    assert "resumable_import.endpoint" in graph["resumable_import.records"]  # from .endpoint
    assert "resumable_import.ledger" in graph["resumable_import.forget"]  # from . import ledger
    assert "resumable_import.s3" in graph["resumable_import.sources"]  # inside a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_errors_imports_nothing_from_the_package() -> None:
    """The exception tree is the leaf every module may import: it imports none of them."""
    assert _graph()["resumable_import.errors"] == set()


def test_no_module_is_too_long() -> None:
    lines = {
        path: len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.rglob("*.py")
    }
    long = {str(p.relative_to(PACKAGE)): n for p, n in lines.items() if n > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
COMMAND = re.compile(
    r"\brimport (?:start|resume|status|retry-failed|dead-letters|validate|forget|ledger)\b"
)


def _spelled_for_the_cli(path: Path) -> list[str]:
    """Each string of `path` (docstrings aside) that spells a flag or a `rimport` command."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and (FLAG.search(node.value) or COMMAND.search(node.value))
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    return found


def test_the_library_says_remedies_as_data_and_only_the_cli_spells_them() -> None:
    """A flag or a `rimport ...` line in the library would be wrong for a Python caller
    and could drift from the commands the CLI has: the library says `Arg("format",
    "jsonl")` or `Command("resume", (run_id,))`, and `cli.hints.spelled` says it here."""
    found = [line for path in sorted(PACKAGE.glob("*.py")) for line in _spelled_for_the_cli(path)]
    assert not found, "\n".join(found)
