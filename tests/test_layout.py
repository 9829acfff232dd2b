"""The package's shape, as the style guide states it (layers are checked by import-linter).

- The root keeps only the public API, specs, labels, errors and two private helpers.
- The package imports its own modules at the top of a file; a function imports one of them
  only to keep an optional heavy dependency unloaded until it is used.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "slowfast_deploy"

# module imported inside a function -> the heavy or optional dependency that defers it
DEFERRED = {
    "slowfast_deploy.api": "OpenCV and the decoders (import slowfast_deploy needs only numpy)",
    "slowfast_deploy.model.checkpoint": "torch",
    "slowfast_deploy.model.slowfast": "torch",
    "slowfast_deploy.serve.app": "starlette (the serve extra)",
    "slowfast_deploy.serve.server": "uvicorn (the serve extra)",
    "slowfast_deploy.serve.ray_serve": "ray[serve] (the ray extra)",
}


def test_the_root_has_at_most_eight_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 8, modules


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module:
                names = [inner.module] if inner.module != "slowfast_deploy" else []
                names += [f"{inner.module}.{a.name}" for a in inner.names]
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            else:
                continue
            found += [(inner.lineno, n) for n in names if n.startswith("slowfast_deploy")]
    return found


def test_own_modules_are_imported_at_the_top_unless_they_defer_a_heavy_dependency():
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in function_level_imports(path)
        if not any(name == m or name.startswith(m + ".") for m in DEFERRED)
    ]
    assert not offending, "\n".join(offending)


def test_few_untyped_dicts_and_type_ignores():
    """Issue 20's targets: JSON of fixed shape is a TypedDict or a dataclass; ``Any`` dicts
    are left to data whose shape is not ours (a v2 request, an ASGI scope, a Ray row)."""
    texts = [p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")]
    untyped = sum(t.count("dict[str, Any]") for t in texts)
    ignores = sum(t.count("# type: ignore") for t in texts)
    assert untyped <= 30, untyped
    assert ignores <= 5, ignores


# --- issue 20's checks: one home per concept, typed schemas, short serve functions ---

SOURCES = sorted(PACKAGE.rglob("*.py"))


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in SOURCES]


def test_one_batching_queue():
    batchers = [
        f"{p.relative_to(PACKAGE)}:{node.name}"
        for p, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and re.search(r"Batch(er|Queue)$", node.name)
    ]
    assert len(batchers) <= 1, batchers


# engine/_reaper.py starts Ray's orphan reaper (a watchdog of Ray's processes, not a worker)
NOT_WORKERS = {"engine/_reaper.py"}


def test_one_worker_spawn_site():
    sites = [
        f"{p.relative_to(PACKAGE)}:{node.lineno}"
        for p, tree in _trees()
        if str(p.relative_to(PACKAGE)) not in NOT_WORKERS
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"Popen", "Process"}
    ]
    assert len(sites) == 1, sites


def test_one_reason_table():
    """Reason codes mean one thing, with one HTTP status: ``errors.REASONS``."""
    tables = [
        f"{p.relative_to(PACKAGE)}:{target.id}"
        for p, tree in _trees()
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
        and re.search(r"REASON|STATUS", target.id)
        and isinstance(node.value, ast.Dict | ast.DictComp)  # a table, not a subset
    ]
    assert len(tables) <= 1, tables


def test_no_function_in_serve_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
        for p, tree in _trees()
        if p.relative_to(PACKAGE).parts[0] == "serve"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, long
