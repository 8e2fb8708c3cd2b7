"""The package layering holds: each layer imports only the layers above it in ``LAYERS``.

Why a test: ``store`` once imported the cascade renderer to build a summary, a circle that made
``run`` load report code and let persistence, figures and rendering grow into each other. Two
checks keep it from coming back: every module imported alone in a fresh interpreter loads no
``slmbench`` module of a lower layer (what a user's process actually pays for), and the
module-level imports, read with ``ast``, form no cycle between packages (imports inside
functions and under ``if TYPE_CHECKING`` are left out: they run later, or never).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "slmbench"

# top to bottom: a module may import its own layer and those listed before it, never after
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("slmbench", "slmbench.errors", "slmbench.records", "slmbench.paths",
              "slmbench.machine", "slmbench.secrets", "slmbench.markdown")),
    ("tasks", ("slmbench.tasks",)),
    ("scoring", ("slmbench.scoring",)),
    ("models", ("slmbench.models",)),
    ("pricing", ("slmbench.pricing",)),
    ("store", ("slmbench.store",)),
    ("analysis", ("slmbench.analysis",)),
    ("runner", ("slmbench.runner",)),
    ("reports", ("slmbench.reports",)),
    ("cli", ("slmbench.cli", "slmbench.cli_reports", "slmbench.ui", "slmbench.__main__")),
]
RANK = {prefix: i for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def layer(module: str) -> int:
    """Rank of ``module``'s layer; the package root counts only as itself, so that a new
    top-level module must be placed in ``LAYERS`` instead of passing as core."""
    if module in RANK:
        return RANK[module]
    parts = module.split(".")
    for n in range(len(parts) - 1, 1, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    raise KeyError(f"{module} is in no layer of LAYERS")


def name_of(module: str) -> str:
    return LAYERS[layer(module)][0]


def package_of(module: str) -> str:
    """The unit of the cycle check: ``slmbench.<x>`` for everything under it."""
    return ".".join(module.split(".")[:2])


def all_modules() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    # packages without an __init__ (namespace packages) are importable too
    out += [".".join(d.relative_to(REPO).parts) for d in sorted(PKG.rglob("*"))
            if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
            and not (d / "__init__.py").exists()]
    return sorted(set(out))


MODULES = all_modules()


def test_every_module_has_a_layer():
    missing = []
    for m in MODULES:
        try:
            layer(m)
        except KeyError:
            missing.append(m)
    assert not missing, f"add these to LAYERS: {missing}"


# ---------------------------------------------------------------------------------------------
# what importing a module alone loads


PROBE = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
         "print(json.dumps(sorted(m for m in sys.modules "
         "if m == 'slmbench' or m.startswith('slmbench.'))))")


def _loaded(module: str) -> tuple[str, list[str] | str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    if proc.returncode != 0:
        return module, f"import failed: {proc.stderr.strip().splitlines()[-1:]}"
    return module, json.loads(proc.stdout.strip().splitlines()[-1])


def test_each_module_alone_loads_no_lower_layer():
    # __main__ runs the CLI when imported
    targets = [m for m in MODULES if not m.endswith("__main__")]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_loaded, targets))
    problems = []
    for module, loaded in results:
        if isinstance(loaded, str):
            problems.append(f"{module}: {loaded}")
            continue
        assert module in loaded, (module, loaded)
        below = [m for m in loaded if layer(m) > layer(module)]
        if below:
            problems.append(f"{module} ({name_of(module)}) loads "
                            + ", ".join(f"{m} ({name_of(m)})" for m in below))
    assert not problems, "\n".join(problems)


def test_light_layers_load_none_of_the_heavy_ones():
    """The rules the issue names, spelled out, so a change to ``LAYERS`` cannot drop them."""
    forbidden = {
        "slmbench.store": ("slmbench.analysis", "slmbench.reports", "slmbench.runner",
                           "slmbench.cli"),
        "slmbench.analysis": ("slmbench.reports", "slmbench.runner", "slmbench.cli"),
        "slmbench.runner.run": ("slmbench.reports", "slmbench.cli"),
    }
    for module, banned in forbidden.items():
        _, loaded = _loaded(module)
        assert not isinstance(loaded, str), loaded
        assert not [m for m in loaded if m.startswith(banned)], (module, loaded)


# ---------------------------------------------------------------------------------------------
# module-level imports, read without running them


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in a function, not type-only."""
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.append(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, (ast.Try, ast.With)) or (
                    sys.version_info >= (3, 11) and isinstance(node, ast.TryStar)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return out


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    known = set(MODULES)
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[:len(here) - (node.level - 1)]
        base = ".".join(here + ([base] if base else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in known else base)
    return out


def module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        is_package = rel.name == "__init__"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {t for node in _top_level_imports(tree)
                         for t in _targets(module, is_package, node)
                         if t == "slmbench" or t.startswith("slmbench.")}
    return graph


def test_module_level_imports_respect_the_layers():
    problems = [f"{m} ({name_of(m)}) imports {t} ({name_of(t)})"
                for m, targets in sorted(module_graph().items()) for t in sorted(targets)
                if layer(t) > layer(m)]
    assert not problems, "\n".join(problems)


def test_no_lower_layer_reaches_rendering_even_inside_a_function():
    """Deferred imports are allowed between computing layers, but rendering (reports, cli)
    stays on top: a kind's report section formats with ``slmbench.markdown``."""
    top = min(RANK["slmbench.reports"], RANK["slmbench.cli"])
    problems = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        is_package = rel.name == "__init__"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        if layer(module) >= top:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                problems += [f"{module} imports {t}" for t in _targets(module, is_package, node)
                             if t.startswith("slmbench.") and layer(t) >= top]
    assert not problems, "\n".join(problems)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in module_graph().items():
        src = package_of(module)
        packages.setdefault(src, set()).update(
            package_of(t) for t in targets if package_of(t) != src)
    assert _cycle(packages) is None, " -> ".join(_cycle(packages) or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
