"""The shape of the code (STYLE rules 1, 6, 10, 12; DESIGN §7): which package may import which
(LAYERS) and which third-party library a package never reaches (NEVER: the pure engine and the Batch
API's data no HTTP, S3, YAML or command-line library), both read from the AST; no import cycle of
any length; a library caller's interpreter left as it was found; modules that stay small.

Every import counts, wherever it stands: at module level, inside a function or method, under
`if TYPE_CHECKING:` or a `try:`, and `importlib.import_module` of a name written out. An import moved into a function still makes its module depend on
the other one, it is only paid for later; so it neither escapes the layer table nor breaks a cycle.
Cycles are refused both between packages (a strongly connected component of the package graph,
reported as one cycle through it) and between files (the same over the file graph, all imports
counted: the code needs no function-level import to break a cycle, so none is allowed to).
"""

from __future__ import annotations

import ast
import gc
import itertools
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

PACKAGE = ROOT / "reconciler"
DOC = ROOT / "docs" / "architecture.md"  # says the same in prose: test_the_architecture_document_states_these_tables

# Which internal package or top-level module (a "unit": the first name under reconciler.) each unit
# may import. A unit always may import itself, and every unit may import the package root
# (`reconciler/__init__.py`: only the version). A dotted entry ("state.model") allows that module
# only. The Batch API's data (`batch`) sits below both the HTTP client (`api`) and the engine.
LAYERS: dict[str, frozenset[str]] = {
    "__main__": frozenset({"cli"}),  # `python -m reconciler`: the command line, nothing else
    "cli": frozenset({  # parses, calls an operation, hands the result to a view: never the engine itself
        "operations", "render", "api", "batch", "manifests", "state", "sandbox", "settings", "profiles", "shards",
        "errors", "redaction", "diagnostics"}),
    "render": frozenset({  # the only printer: views of plans, results, statuses and errors
        "engine", "batch", "geo", "state", "diagnostics", "errors", "redaction",
        "operations.planfile", "operations.status"}),  # only the data it shows: a saved plan, a status report
    "operations": frozenset({  # the I/O around the engine; never renders (views come in as callbacks)
        "engine", "api", "batch", "manifests", "state", "geo", "errors", "redaction", "canonical", "atomic"}),
    "engine": frozenset({  # pure: pairs, diffs and plans values, so neither the loader nor a store
        "batch", "manifests.manifest", "state.model", "geo", "canonical", "redaction", "diagnostics",
        "names"}),  # names: the ownership marker is defined with the name rule
    "manifests": frozenset({  # reading, checking and formatting manifest files, the load cache
        "batch", "canonical", "names", "redaction", "diagnostics", "atomic", "strings"}),
    "sandbox": frozenset({  # the stand-in service: the data, the tiling, its env file, seeded jobs' markers
        "batch", "geo", "names", "atomic"}),
    "api": frozenset({"batch", "settings", "errors", "redaction"}),  # the HTTP client: the shapes, how to reach it
    "batch": frozenset({"geo", "redaction"}),  # the Batch API's data; geo: evalscript outputs, tiling grids
    "state": frozenset({"errors", "names", "atomic", "strings"}),  # the lockfile: model, format, stores, lease
    "geo": frozenset({"errors"}),  # tiles, grids, PU estimates, evalscripts, GeoPackages
    "shards": frozenset({  # reconciler.toml's shards, contained in the repository like manifests
        "manifests.files", "settings", "names", "errors"}),
    "settings": frozenset({"profiles", "errors"}),  # flags, environment, profile → settings; not reconciler.toml
    "profiles": frozenset({"errors"}),  # sentinelhub-py's config.toml
    "errors": frozenset({"diagnostics"}),  # the one error hierarchy (an invalid manifest carries diagnostics)
    "canonical": frozenset({  # a create body's canonical form: drops the service's defaults, hides secrets
        "batch", "redaction"}),
    "names": frozenset(),  # the name rule
    "redaction": frozenset(),  # what is secret and how it is hidden
    "atomic": frozenset(),  # a file written whole or not at all
    "strings": frozenset(),  # equal short strings held once (what the lockfile and the manifests read)
    "diagnostics": frozenset(),  # findings about user input, as values
    "__init__": frozenset(),  # the version
}
ROOT_UNIT = "__init__"
HTTP_CLIENT = frozenset({"requests", "urllib3", "oauthlib", "requests_oauthlib"})
S3, YAML, COMMAND_LINE = frozenset({"boto3", "botocore"}), frozenset({"ruamel"}), frozenset({"click"})
# Third-party libraries a unit never imports: not in any block of its files, nor through the internal
# modules it imports (importing the engine must not load requests).
NEVER: dict[str, frozenset[str]] = {
    "engine": HTTP_CLIENT | S3 | YAML | COMMAND_LINE,  # pure
    "batch": HTTP_CLIENT | S3 | YAML | COMMAND_LINE,  # pure data, below the client
    "geo": HTTP_CLIENT | S3 | YAML | COMMAND_LINE,  # pure
    "manifests": HTTP_CLIENT | S3 | COMMAND_LINE,  # local files only
    "state": HTTP_CLIENT | YAML | COMMAND_LINE,  # S3 and local files
    "api": S3 | YAML | COMMAND_LINE,  # HTTP only
    "operations": COMMAND_LINE,  # callable without the command line
    "sandbox": HTTP_CLIENT | YAML | COMMAND_LINE,  # a server (flask), not a client of one
}


@dataclass(frozen=True)
class Import:
    """One import statement's dependency: `file` (relative to the tree's parent) imports `module`."""

    file: str
    line: int
    module: str  # absolute and dotted; an internal one names the module file it reaches
    nested: bool  # inside a function, class, conditional or try, not at module level

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}" + (" (inside a block)" if self.nested else "")


def _modules(package: Path) -> dict[str, Path]:
    """Dotted name → file, for every module of the package (a package's name is its __init__.py)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def collect_imports(package: Path) -> list[Import]:
    """Every import of every file under `package`, at any depth, relative ones resolved."""
    modules = _modules(package)
    found = []
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for statement in ast.parse(path.read_text(), str(path)).body:
            nested = isinstance(statement, _BLOCKS)
            for node in ast.walk(statement):
                for module in _imported(node, here, modules):
                    found.append(Import(str(path.relative_to(package.parent)), node.lineno, module, nested))
    return found


_BLOCKS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.Try, ast.TryStar, ast.With,
           ast.AsyncWith, ast.For, ast.AsyncFor, ast.While, ast.Match)


def _imported(node: ast.AST, here: str, modules: Mapping[str, Path]) -> Iterable[str]:
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and (
            isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
            or isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")):
        yield str(node.args[0].value)  # importlib.import_module("reconciler.x"): an import all the same
    elif isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the importing file's package, one level up per extra dot
            anchor = here.split(".")[:len(here.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        # `from pkg import mod` imports the module; `from mod import name, other`, mod (once)
        yield from dict.fromkeys(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)


def unit_of(module: str) -> str:
    """The package or top-level module a dotted name belongs to ("__init__" for the root itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_of(file: str) -> str:
    parts = Path(file).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal(imports: Iterable[Import]) -> list[Import]:
    return [i for i in imports if i.module == "reconciler" or i.module.startswith("reconciler.")]


def layer_violations(imports: Iterable[Import], layers: Mapping[str, frozenset[str]]) -> list[str]:
    """The internal imports the table does not allow, as `file:line imports module (unit → unit …)`."""
    wrong = []
    for imp in internal(imports):
        source, target = unit_of(module_of(imp.file)), unit_of(imp.module)
        named = imp.module.partition(".")[2]
        if source == target or target == ROOT_UNIT or any(
                named == entry or named.startswith(entry + ".") for entry in layers.get(source, ())):
            continue
        wrong.append(f"{imp}  ({source} → {target} is not in the table)")
    return wrong


def library_violations(imports: Iterable[Import], modules: Mapping[str, Path],
                       never: Mapping[str, frozenset[str]]) -> list[str]:
    """Each way a unit of `never` reaches a library it must not import: an import in any block of
    one of its files, or of a file it imports, named with the chain of modules that leads there."""
    imports = list(imports)
    graph = file_graph(imports, modules)
    by_module: dict[str, list[Import]] = defaultdict(list)
    for imp in imports:
        by_module[module_of(imp.file)].append(imp)
    wrong = set()
    for start in sorted(m for m in modules if unit_of(m) in never):
        refused, path_to, todo = never[unit_of(start)], {start: [start]}, [start]
        while todo:
            module = todo.pop()
            for imp in by_module[module]:
                if imp.module.split(".")[0] in refused:
                    wrong.add(f"{' → '.join(path_to[module])}: {imp}")
            parents = [".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)]
            for following in sorted(graph[module] | set(parents)):  # importing a.b.c runs a and a.b too
                if following not in path_to:
                    path_to[following] = [*path_to[module], following]
                    todo.append(following)
    return sorted(wrong)


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one node (Tarjan's
    algorithm, iterative), as [a, b, …, a]; an empty list when the graph is acyclic."""
    graph = {node: sorted(set(targets) - {node}) for node, targets in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while (member := stack.pop()) != node:
                        on_stack.discard(member)
                        component.append(member)
                    on_stack.discard(node)
                    if component:
                        components.append({node, *component})
    return [_cycle_through(min(c), c, graph) for c in components]


def _cycle_through(start: str, component: set[str], graph: Mapping[str, list[str]]) -> list[str]:
    """The shortest way from `start` back to itself inside its component (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph.get(node, ()):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt in component and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def package_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in internal(imports):
        graph[unit_of(module_of(imp.file))].add(unit_of(imp.module))
    return graph


def file_graph(imports: Iterable[Import], modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the modules it names (an import of a missing name counts for its nearest module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in internal(imports):
        graph[module_of(imp.file)].add(_nearest(imp.module, modules))
    return graph


def _nearest(module: str, modules: Mapping[str, Path]) -> str:
    while module not in modules and "." in module:
        module = module.rpartition(".")[0]
    return module


def _explained(cycle: list[str], imports: Iterable[Import], of: Callable[[str], str]) -> str:
    """A cycle with the import that makes each of its steps."""
    steps = []
    for a, b in itertools.pairwise(cycle):
        first = next(i for i in internal(imports) if of(module_of(i.file)) == a and of(i.module) == b)
        steps.append(f"    {a} → {b}: {first}")
    return " → ".join(cycle) + "\n" + "\n".join(steps)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return collect_imports(PACKAGE)


def test_every_package_has_one_row_in_the_layer_table():
    modules = _modules(PACKAGE)
    units = {unit_of(module) for module in modules}
    named = {entry for allowed in LAYERS.values() for entry in allowed} | NEVER.keys()
    unknown = sorted(e for e in named if f"reconciler.{e}" not in modules)
    assert (sorted(units - LAYERS.keys()), sorted(LAYERS.keys() - units), unknown) == ([], [], [])


def test_every_import_follows_the_layer_table(imports):
    wrong = layer_violations(imports, LAYERS)
    assert not wrong, f"{len(wrong)} import(s) the layer table does not allow:\n" + "\n".join(wrong)


def test_no_package_reaches_a_library_it_must_not_import(imports):
    """The pure engine and the Batch API's data above all: no HTTP, S3, YAML or command-line library,
    in any function of theirs or of what they import."""
    wrong = library_violations(imports, _modules(PACKAGE), NEVER)
    assert not wrong, f"{len(wrong)} way(s) into a library the table refuses:\n" + "\n".join(wrong)


def test_the_architecture_document_states_these_tables():
    """docs/architecture.md shows both tables to readers; it says what they say (per package:
    a dotted entry of LAYERS counts as its package there)."""
    if not DOC.exists():
        pytest.skip("no docs/architecture.md")
    section = re.split(r"\n## ", DOC.read_text().split("\n## Allowed dependencies\n", 1)[1])[0]
    layers, never = {}, {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) == 2 and "`" in cells[1] or cells[1:] == ["none"]:
            layers[cells[0].strip("`")] = frozenset(re.findall(r"`([^`]+)`", cells[1]))
        elif len(cells) == 2:
            for unit in re.findall(r"`([^`]+)`", cells[0]):
                never[unit] = frozenset(name.strip() for name in cells[1].split(","))
    assert layers == {unit: frozenset(e.split(".")[0] for e in allowed) for unit, allowed in LAYERS.items()
                      if unit != ROOT_UNIT}
    assert never == NEVER


def test_no_import_cycle_between_packages(imports):
    found = cycles(package_graph(imports))
    assert not found, "import cycles between packages:\n" + "\n".join(_explained(c, imports, unit_of) for c in found)


def test_no_import_cycle_between_files(imports):
    modules = _modules(PACKAGE)
    found = cycles(file_graph(imports, modules))
    assert not found, "import cycles between files:\n" + "\n".join(
        _explained(c, imports, lambda module: _nearest(module, modules)) for c in found)


def test_the_checks_see_imports_in_functions_and_cycles_of_three(tmp_path):
    """The checks run on a tree made to break them, so they cannot pass by seeing nothing."""
    package = tmp_path / "reconciler"
    for folder in ("a", "b", "c"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a" / "x.py").write_text("def f():\n    from reconciler.b import y\n    return y\n")
    (package / "b" / "y.py").write_text("import os\nif os.name:\n    import reconciler.c.z\n")
    (package / "c" / "z.py").write_text("from ..a import x\nfrom . import w\nclass K:\n    import requests\n")
    (package / "c" / "w.py").write_text("")
    (package / "d").mkdir()
    (package / "d" / "v.py").write_text("import importlib\nV = importlib.import_module('reconciler.c.w')\n")
    found = collect_imports(package)
    assert {(i.file, i.line, i.module, i.nested) for i in found} == {
        ("reconciler/a/x.py", 2, "reconciler.b.y", True),
        ("reconciler/b/y.py", 1, "os", False),
        ("reconciler/b/y.py", 3, "reconciler.c.z", True),
        ("reconciler/c/z.py", 1, "reconciler.a.x", False),
        ("reconciler/c/z.py", 2, "reconciler.c.w", False),
        ("reconciler/c/z.py", 4, "requests", True),
        ("reconciler/d/v.py", 1, "importlib", False),
        ("reconciler/d/v.py", 2, "reconciler.c.w", False),
    }
    assert cycles(package_graph(found)) == [["a", "b", "c", "a"]]
    assert cycles(file_graph(found, _modules(package))) == [
        ["reconciler.a.x", "reconciler.b.y", "reconciler.c.z", "reconciler.a.x"]]
    assert cycles({"p": {"q"}, "q": {"r"}, "r": set(), "s": {"s"}}) == []  # a chain; importing itself is no cycle
    assert layer_violations(found, {"a": frozenset({"b"}), "b": frozenset({"c.w"}), "c": frozenset({"a"})}) == [
        "reconciler/b/y.py:3 imports reconciler.c.z (inside a block)  (b → c is not in the table)",
        "reconciler/d/v.py:2 imports reconciler.c.w  (d → c is not in the table)"]
    assert library_violations(found, _modules(package), {"a": frozenset({"requests"})}) == [
        "reconciler.a.x → reconciler.b.y → reconciler.c.z: reconciler/c/z.py:4 imports requests (inside a block)"]


def test_an_in_process_run_leaves_the_interpreter_as_it_found_it(run_cli, tmp_path):
    import shutil

    from reconciler.manifests.loader import load

    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    assert run_cli("validate", "manifests")[0] == 0
    for _ in range(3):
        assert load(["manifests"]).manifests
    assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before


def test_the_console_script_tunes_the_collector_only_for_its_run(monkeypatch, tmp_path):
    from reconciler.cli import console

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["reconciler", "schema"])
    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    with pytest.raises(SystemExit) as exited:
        console()
    assert exited.value.code == 0 and (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before


def test_no_interpreter_tricks_anywhere():
    """Not in the package, the benchmarks or the scripts (prose may name them)."""
    found = subprocess.run(["git", "grep", "-n", "-E", r"gc\.(freeze|disable)|os\._exit", "--", ".", ":!tests", ":!*.md"],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert found.stdout == ""


def test_modules_stay_under_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
