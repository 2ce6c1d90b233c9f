"""The package's layer order and the absence of import cycles (issue 13 §5), checked on the source itself.

Every `import` counts, also those inside functions (a lazy import is still a dependency, and the usual way a
cycle hides). A module may import modules of its own layer or of the layers below it, never above; between
top-level packages there is no cycle; extraction never imports the renderer (it reads zone data instead).
Pure and fast: it parses the source, imports nothing.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "formsvc"

# Top to bottom. A module belongs to the layer of its longest listed prefix.
LAYERS: list[list[str]] = [
    # Entry points: the app factory (API + web UI), the CLI, the build tool; they compose everything below.
    ["formsvc.api.app", "formsvc.cli", "formsvc.templates.build.__main__", "formsvc.__main__"],
    # The interfaces: API routes and web pages (the web UI's guards reuse the API's auth helpers).
    ["formsvc.api", "formsvc.web"],
    # Use cases shared by API, web and CLI.
    ["formsvc.service"],
    # Engines: reading scans and official files, rendering forms and reports.
    ["formsvc.extract", "formsvc.render", "formsvc.reports", "formsvc.criteria.importer"],
    # Rules and data made from the model: validation, rosters, zone data, DOCX building blocks, exports.
    ["formsvc.validation", "formsvc.roster", "formsvc.zonedata", "formsvc.templates", "formsvc.collation",
     "formsvc.exports"],
    # The model: what a form, a criteria set, a record, a page payload is; storage.
    ["formsvc.criteria", "formsvc.records", "formsvc.forms", "formsvc.payload", "formsvc.zones", "formsvc.layout",
     "formsvc.db", "formsvc.storage", "formsvc.schemas"],
    # Foundations.
    ["formsvc.errors", "formsvc.settings", "formsvc.text", "formsvc.private", "formsvc"],
]
# Known exceptions, each with the reason it is not fixed here. Keep this list short.
ALLOWED: set[tuple[str, str]] = {
    # The dispatcher purges expired idempotency keys of the API; moving it is part of issue 13 §7's rework.
    ("formsvc.service.dispatch", "formsvc.api.idempotency"),
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        mod = _module(path)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("formsvc"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], base]).strip(".")
                if base.startswith("formsvc"):
                    found.add(base)
                    found.update(f"{base}.{a.name}" for a in node.names)  # `from formsvc.x import module`
        graph[mod] = found
    return graph


def _layer(mod: str) -> int:
    best, layer = -1, len(LAYERS)
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best:
                best, layer = len(p), i
    return layer


def _known(graph: dict[str, set[str]], name: str) -> str | None:
    """The module `name` refers to (an imported attribute resolves to its module)."""
    while name and name not in graph:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_has_a_layer() -> None:
    assert [m for m in _imports() if _layer(m) == len(LAYERS)] == []


def _upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((src, dst) for src, names in graph.items() for name in names
                  if (dst := _known(graph, name)) and _layer(dst) < _layer(src) and (src, dst) not in ALLOWED)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = _upward(_imports())
    assert upward == [], "\n".join(f"{s} (layer {_layer(s)}) imports {d} (layer {_layer(d)})" for s, d in upward)


def test_extraction_never_imports_the_renderer() -> None:
    graph = _imports()
    found = sorted((s, n) for s, names in graph.items() if s.startswith("formsvc.extract")
                   for n in names if n.startswith("formsvc.render"))
    assert found == []


def _unit(mod: str) -> str:
    """The unit cycles are counted between: the layer's listed prefix a module falls under."""
    best = ""
    for prefixes in LAYERS:
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > len(best):
                best = p
    return best


def test_no_import_cycles_between_packages() -> None:
    assert _cycles(_imports()) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for src, names in graph.items():
        for name in names:
            dst = _known(graph, name)
            if dst and (src, dst) not in ALLOWED and _unit(src) != _unit(dst):
                edges[_unit(src)].add(_unit(dst))
    # Tarjan's strongly connected components: any component of more than one package is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_module_cycles_inside_the_interfaces() -> None:
    """api/app ↔ routes_records, web/routes ↔ criteria_admin: the cycles issue 13 found, at module level."""
    graph = _imports()
    interface = {m: {d for n in names if (d := _known(graph, n)) and d != m}
                 for m, names in graph.items() if m.startswith(("formsvc.api", "formsvc.web"))}
    pairs = sorted((a, b) for a, deps in interface.items() for b in deps
                   if b in interface and a in interface[b] and a < b)
    assert pairs == []


def test_the_checks_see_a_violation() -> None:
    """The checks are not vacuous: an upward import and a cycle, planted in a copy of the real graph, are caught."""
    graph = {m: set(d) for m, d in _imports().items()}
    graph["formsvc.render.pack"].add("formsvc.service.records")
    assert ("formsvc.render.pack", "formsvc.service.records") in _upward(graph)
    assert ["formsvc.render", "formsvc.service"] in _cycles(graph)
    assert _known(graph, "formsvc.render.zones.build_zones") == "formsvc.render.zones"
