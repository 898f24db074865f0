"""The import rules (README "Architecture"), checked on the source with `ast`, so they stay true.

Layers, top to bottom: front ends (kb/cli, kb/api, ui) → the service (the composition root) → the parts
(ingest/, retrieval, answering, index, embedders, image store, catalog, ...) → the core (types, settings,
errors, and the small pure helpers listed in CORE). A module imports only its own layer or lower ones,
`ingest/` imports only itself and the core, and nothing imports in a circle, neither module by module
nor folder by folder (the core counts as one folder of its own). Every import counts: lazy ones inside
functions and those under `if TYPE_CHECKING:` (a type is a dependency too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kb", "ingest", "ui")

# kb/spans.py (manifest encodings of section structure), kb/labels.py (tags, page labels, label cleaning),
# kb/names.py (tenant names, upload names, document ids) and kb/tokens.py
# (text and visual token counts) are small pure helpers that ingest and kb both need.
CORE = frozenset({"kb.types", "kb.settings", "kb.errors", "kb.spans", "kb.labels", "kb.tokens", "kb.names"})
FRONT = ("kb.cli", "kb.api", "ui")  # these packages, whole
# The composition root and what composes like it: modules that drive the parts for a job (ingest, ask,
# evaluate, compare) and so may import kb.service. A part that needs the service is in the wrong layer.
SERVICE = frozenset(
    {
        "kb.service",
        "kb.ingest_commit",
        "kb.ingest_prepare",
        "kb.answer.prepare",
        "kb.answer.run",
        "kb.evaluation",
        "kb.llama",
        "kb.compare.answering",
        "kb.compare_jobs.commands",
        "kb.compare_jobs.crosscheck",
    }
)
RANK = {"core": 0, "part": 1, "service": 2, "front": 3}
# Cycles being taken apart right now (issue 11, kb side). The list must match exactly: a new cycle fails, and
# so does a listed one that is gone (then delete it here). The finished state has both lists empty.
KNOWN_MODULE_CYCLES: list[list[str]] = []
KNOWN_FOLDER_CYCLES: list[list[str]] = []


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    rel: str  # the file, relative to the checked tree, for messages

    @property
    def folder(self) -> str:
        """The folder it lives in, as a dotted name; the core is one folder of its own."""
        if self.name in CORE:
            return "(core)"
        return self.name if self.is_package else self.name.rpartition(".")[0]


def layer(name: str) -> str:
    if name in CORE:
        return "core"
    if any(name == p or name.startswith(p + ".") for p in FRONT):
        return "front"
    if name in SERVICE:
        return "service"
    return "part"


def find_modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for top in packages:
        for f in sorted((root / top).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            name = ".".join(parts)
            mods[name] = Module(name, f, is_pkg, str(f.relative_to(root)))
    return mods


def _owner(name: str, mods: Mapping[str, Module]) -> str | None:
    """The module that `name` (a module, or a name inside one) belongs to; None outside the project."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: Module, mods: Mapping[str, Module]) -> dict[str, int]:
    """Project modules `mod` imports (anywhere in the file), each with the first line that does."""
    tree = ast.parse(mod.path.read_text(encoding="utf-8"), filename=str(mod.path))
    package = mod.name if mod.is_package else mod.name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target is not None and target != mod.name:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_owner(alias.name, mods), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level-1 folders
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                sub = f"{origin}.{alias.name}"  # `from pkg import module` imports that module
                add(_owner(sub, mods) if sub in mods else _owner(origin, mods), node.lineno)
    return found


def import_graph(mods: Mapping[str, Module]) -> dict[str, dict[str, int]]:
    return {name: imports_of(m, mods) for name, m in mods.items()}


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); the components with more than one node, i.e. the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def folder_graph(mods: Mapping[str, Module], graph: Mapping[str, Mapping[str, int]]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {m.folder: set() for m in mods.values()}
    for src, targets in graph.items():
        for dst in targets:
            a, b = mods[src].folder, mods[dst].folder
            if a != b:
                folders[a].add(b)
    return folders


def layer_violations(mods: Mapping[str, Module], graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    bad: list[str] = []
    for src, targets in sorted(graph.items()):
        for dst, line in sorted(targets.items()):
            ls, ld = layer(src), layer(dst)
            where = f"{mods[src].rel}:{line}"
            if RANK[ld] > RANK[ls]:
                bad.append(f"{where}: {src} ({ls}) imports {dst} ({ld}), a higher layer")
            elif src.split(".")[0] == "ingest" and dst.split(".")[0] != "ingest" and ld != "core":
                bad.append(f"{where}: {src} imports {dst}; ingest/ may import only itself and the core")
    return bad


def cycle_report(cycles: list[list[str]], graph: Mapping[str, Iterable[str]]) -> list[str]:
    lines = []
    for comp in cycles:
        members = set(comp)
        links = [f"{a} -> {b}" for a in comp for b in sorted(graph.get(a, ())) if b in members]
        lines.append(f"cycle {comp}: " + "; ".join(links))
    return lines


# -- the checks ----------------------------------------------------------------------------------------


def test_no_upward_imports_and_ingest_uses_only_the_core() -> None:
    mods = find_modules()
    assert "kb.service" in mods and "ingest.pipeline" in mods and "ui.app" in mods  # the walk found the code
    bad = layer_violations(mods, import_graph(mods))
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules() -> None:
    mods = find_modules()
    graph = {k: set(v) for k, v in import_graph(mods).items()}
    cycles = strongly_connected(graph)
    assert cycles == KNOWN_MODULE_CYCLES, "module import cycles:\n" + "\n".join(cycle_report(cycles, graph))


def test_no_import_cycles_between_folders() -> None:
    mods = find_modules()
    graph = folder_graph(mods, import_graph(mods))
    cycles = strongly_connected(graph)
    assert cycles == KNOWN_FOLDER_CYCLES, "folder import cycles:\n" + "\n".join(cycle_report(cycles, graph))


# -- the checker itself, on a small tree -------------------------------------------------------------


def _tree(tmp: Path, files: dict[str, str]) -> dict[str, Module]:
    for rel, text in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return find_modules(tmp, ("kb", "ingest", "ui"))


def test_checker_sees_lazy_relative_and_type_only_imports_and_cycles(tmp_path: Path) -> None:
    mods = _tree(
        tmp_path,
        {
            "kb/__init__.py": "",
            "kb/types.py": "",
            "kb/catalog.py": "def f():\n    from . import service\n",  # lazy + relative, upward
            "kb/service.py": "from kb import catalog\n",
            "ingest/__init__.py": "",
            "ingest/pipeline.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kb.catalog import X\n",
            "ingest/render/__init__.py": "from ..pipeline import thing\n",
            "ui/__init__.py": "",
        },
    )
    graph = import_graph(mods)
    assert graph["kb.catalog"] == {"kb.service": 2}
    assert graph["kb.service"] == {"kb.catalog": 1}
    assert graph["ingest.render"] == {"ingest.pipeline": 1}
    bad = layer_violations(mods, graph)
    assert any("kb.catalog (part) imports kb.service (service)" in b for b in bad)
    assert any("ingest.pipeline imports kb.catalog" in b for b in bad)
    assert strongly_connected({k: set(v) for k, v in graph.items()}) == [["kb.catalog", "kb.service"]]
    # folders: ingest -> ingest.render -> ingest is a cycle even though no two modules form one
    folders = folder_graph(mods, {**graph, "ingest.pipeline": {"ingest.render": 1}})
    assert ["ingest", "ingest.render"] in strongly_connected(folders)
