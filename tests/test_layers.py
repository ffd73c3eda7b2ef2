"""The import rules of the layout (README "Layout"), read from the source with an AST walk, so a change that
breaks them fails here: the answering core imports no adapter, nothing but the composition root reads the
settings, the leaves (`retrieval`, `rerank`, `store`) import nothing above them, and no modules import each
other in a loop."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("admin", "bot", "evaluation", "migrations", "modelhub", "redact", "rerank", "retrieval", "store")

# (package whose modules are checked, imports they must never make, why)
FORBIDDEN = [
    (
        "bot.answering",
        ("bot.slack", "bot.app", "bot.cli", "bot.settings", "admin"),
        "the core is wired, it wires nothing",
    ),
    ("bot.slack", ("admin", "bot.app", "bot.cli", "bot.settings"), "adapters are wired from outside"),
    ("admin", ("bot.slack", "bot.app", "bot.cli", "bot.settings"), "the admin imports from bot only bot.answering"),
    ("evaluation", ("bot", "admin"), "evaluation knows no Slack, pages or wiring"),
    ("rerank", ("bot", "admin", "evaluation", "retrieval", "store"), "the engine knows no pipeline or database"),
    ("retrieval", ("bot", "admin", "evaluation", "rerank", "store"), "search hands candidates on"),
    ("store", ("bot", "admin", "evaluation", "rerank", "retrieval"), "the data layer holds no logic"),
    ("migrations", ("bot", "admin", "evaluation", "rerank", "retrieval"), "the data layer holds no logic"),
    (
        "redact",
        ("admin", "bot", "evaluation", "migrations", "rerank", "retrieval", "store"),
        "masking sits below every layer, so each can use it",
    ),
    (
        "modelhub",
        ("admin", "bot", "evaluation", "migrations", "redact", "rerank", "retrieval", "store"),
        "finding model files sits below the engines, so rerank and retrieval share it",
    ),
]
# Only the composition root turns settings into objects.
SETTINGS_READERS = ("bot.app", "bot.settings")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "versions" not in path.parts:  # Alembic revisions are frozen history
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth (lazy imports count too).
    `from package import module` imports that module (the package is initialised already)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
            if len(submodules) < len(node.names):  # some names are the module's own
                yield base, node.lineno
            for submodule in submodules:
                yield submodule, node.lineno


MODULES = project_modules()


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_walk_sees_the_project() -> None:
    assert {"bot.answering.service", "bot.app.components", "bot.cli", "admin.app", "rerank.server"} <= set(MODULES)
    writers = {m for m, _ in imports_of("bot.answering.writers", MODULES["bot.answering.writers"])}
    assert {"retrieval.documents"} <= writers  # what the answer writers import


@pytest.mark.parametrize(("layer", "never", "why"), FORBIDDEN, ids=[rule[0] for rule in FORBIDDEN])
def test_a_layer_never_imports_what_stands_above_it(layer: str, never: tuple[str, ...], why: str) -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in MODULES.items()
        if within(name, layer)
        for imported, line in imports_of(name, path)
        if any(within(imported, banned) for banned in never)
    ]
    assert not broken, f"{why}:\n" + "\n".join(broken)


def test_admin_imports_from_bot_only_the_answering_core() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in MODULES.items()
        if within(name, "admin")
        for imported, line in imports_of(name, path)
        if within(imported, "bot") and not within(imported, "bot.answering")
    ]
    assert not broken, "\n".join(broken)


def test_only_the_composition_root_reads_the_settings() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in MODULES.items()
        if not any(within(name, reader) for reader in SETTINGS_READERS)
        for imported, line in imports_of(name, path)
        if within(imported, "bot.settings")
    ]
    assert not broken, "\n".join(broken)


def test_no_modules_import_each_other_in_a_loop() -> None:
    graph = {
        name: {imported for imported, _ in imports_of(name, path) if imported in MODULES and imported != name}
        for name, path in MODULES.items()
    }
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of two or more modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
